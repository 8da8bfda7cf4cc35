"""Conformance checking: replay every case of a log through a decider, the process model.

The model is any decider (an ``el.Aggregate``: ``initial_state``/``apply``/``handle``):
your own aggregate, or Declare-style rules built with ``el.rules``. Each case
(stream) is replayed event by event, in version order:

1. ``handle(state, event)`` is asked about the recorded event as if it were a
   command (so the model is a decider over events, not the aggregate that
   takes your commands). Raising a ``DomainError`` marks a **deviation**; its
   message says why. What it returns is ignored.
2. ``apply(state, event)`` then folds the event in, deviating or not, so the
   replay goes on and later deviations are found too.
3. At the end of the case, ``finish(state)`` is called when the decider has
   one; a ``DomainError`` raised there is a deviation of the case as a whole
   (something that never happened, e.g. an ``a`` never followed by a ``b``).

**What ``handle``, ``apply`` and ``finish`` see** is what every replay of the
log hands an aggregate (``el.history``, ``TimeTravel``): the domain event
(``RecordedEvent.data``; a ``dict`` for a type with no class, such as an
imported log's activities). A model whose class sets ``wants_recorded = True``
gets the whole ``RecordedEvent`` instead (``type``, ``data``, ``metadata``,
``recorded_at``), here and in time travel alike; ``el.rules`` do.

**Fitness** is the share of a case's steps that conform. The steps are its
events, plus its end when the decider has ``finish``; a step conforms when no
deviation is reported on it (several on one step count once). It lies in
[0, 1]: 1 for a case with no deviation.

A ``DomainError`` that is a ``Deviation`` names its rule; the ``rule`` of any
other is its class name, or the decider's name for a bare ``DomainError``. Any
other exception is a bug in the model, not a deviation: it stops the check with
a ``RuleError`` (an ``ApplyError``) naming the case, the event and the rule.

>>> import eventlab as el
>>> class NoRefundUnpaid(el.Aggregate):
...     wants_recorded = True                  # these events have no class: read .type
...     def initial_state(self):
...         return False                       # paid yet?
...     def apply(self, paid, event):
...         return paid or event.type == "pay"
...     def handle(self, paid, event):
...         if event.type == "refund" and not paid:
...             raise el.DomainError("refund before any payment")
...         return []
>>> store = el.InMemoryEventStore()
>>> _ = store.append("c1", [el.NewEvent({}, type="pay"), el.NewEvent({}, type="refund")])
>>> _ = store.append("c2", [el.NewEvent({}, type="refund"), el.NewEvent({}, type="pay")])
>>> result = conformance(store, NoRefundUnpaid())
>>> result.cases.values.tolist()
[['c1', 2, 0, 1.0], ['c2', 2, 1, 0.5]]
>>> result.deviations[["stream_id", "version", "type", "message"]].values.tolist()
[['c2', 1, 'refund', 'refund before any payment']]
>>> result
<Conformance NoRefundUnpaid: 2 cases, 1 conforming (50.0%), mean fitness 0.750, 1 deviation>
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .aggregate import Aggregate, replayed
from .envelope import RecordedEvent
from .errors import ApplyError, DomainError, InvalidInputError
from .store.rows import recorded_events

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .events import EventRegistry
    from .filters import Filter
    from .store.base import EventStore

CASE_COLUMNS = ("stream_id", "events", "deviations", "fitness")
DEVIATION_COLUMNS = ("stream_id", "position", "version", "type", "rule", "message", "at_end")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- what a model raises ------------------------------------------------------------------

class Deviation(DomainError):
    """A rule's verdict that an event (or the end of a case) breaks it; names the rule.

    >>> Deviation("'b' happened without 'a' before it", rule="precedes('a', 'b')").rule
    "precedes('a', 'b')"
    """

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.message, self.rule = message, rule

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.rule))


class Deviations(DomainError):
    """Several deviations on one step, each naming its rule (a combined rule set's)."""

    def __init__(self, deviations: Sequence[Deviation]) -> None:
        self.deviations = list(deviations)
        super().__init__("; ".join(f"{d.rule}: {d.message}" for d in self.deviations))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.deviations,))


class RuleError(ApplyError):
    """The model failed on an event (a bug in it, not a deviation); names the case,
    the event and the rule."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_rule_error, (self.where, self.cause, self.stream_id, self.version,
                                       self.position, self.type))


def _rebuild_rule_error(where: str, cause: BaseException, stream_id: str | None,
                        version: int | None, position: int | None, type_: str | None
                        ) -> RuleError:
    return RuleError(where, cause, stream_id=stream_id, version=version, position=position,
                     type=type_)


def deviations_of(error: DomainError, model: str) -> list[Deviation]:
    """A ``DomainError`` as deviations, each naming a rule: its own (``Deviation``),
    its class name, or ``model`` for a bare ``DomainError``."""
    if isinstance(error, Deviations):
        return list(error.deviations)
    if isinstance(error, Deviation):
        return [error if error.rule is not None else Deviation(error.message, model)]
    rule = model if type(error) is DomainError else type(error).__name__
    return [Deviation(str(error), rule)]


def model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) else type(model).__name__


def check_model(model: Any, what: str = "rules") -> Any:
    """``model``, when it is a decider instance; a clear error otherwise."""
    if isinstance(model, type):
        raise InvalidInputError(
            f"{what} must be a decider instance; got the class {model.__name__}: "
            f"pass {model.__name__}()")
    missing = [m for m in ("initial_state", "apply", "handle")
               if not callable(getattr(model, m, None))]
    if missing:
        raise InvalidInputError(
            f"{what} must be a decider (an el.Aggregate with initial_state, apply and "
            f"handle), or rules from el.rules; {model!r:.60} has no {', '.join(missing)}")
    return model


def failure(exc: BaseException, where: str, event: RecordedEvent | None,
            stream_id: str) -> RuleError:
    """A ``RuleError`` naming the case and the event (a member rule's, when it named one)."""
    if isinstance(exc, RuleError):
        where, exc = exc.where, exc.cause
    if event is None:
        return RuleError(f"{where} (the end of the case)", exc, stream_id=stream_id)
    return RuleError(where, exc, stream_id=stream_id, version=event.version,
                     position=event.position, type=event.type)


# -- the replay ---------------------------------------------------------------------------

class _Replay(Aggregate):
    """One case through the model, folded by ``Aggregate.fold``: each step asks the
    model's ``handle`` first, keeps its deviations, then applies the event."""

    def __init__(self, model: Any, stream_id: str) -> None:
        self.model, self.stream_id = model, stream_id
        self.model_name = model_name(model)
        self.found: list[tuple[RecordedEvent | None, list[Deviation]]] = []

    def initial_state(self) -> Any:
        return self.model.initial_state()

    def apply(self, state: Any, event: RecordedEvent) -> Any:
        shown = replayed(self.model, event)
        try:
            self.model.handle(state, shown)
        except DomainError as exc:
            self.found.append((event, deviations_of(exc, self.model_name)))
        except Exception as exc:
            raise failure(exc, f"{self.model_name}.handle", event, self.stream_id) from exc
        try:
            return self.model.apply(state, shown)
        except Exception as exc:
            raise failure(exc, f"{self.model_name}.apply", event, self.stream_id) from exc

    def finish(self, state: Any) -> None:
        finish = getattr(self.model, "finish", None)
        if not callable(finish):
            return
        try:
            finish(state)
        except DomainError as exc:
            self.found.append((None, deviations_of(exc, self.model_name)))
        except Exception as exc:
            raise failure(exc, f"{self.model_name}.finish", None, self.stream_id) from exc


def replay(model: Any, stream_id: str, events: Sequence[RecordedEvent]
           ) -> list[tuple[RecordedEvent | None, list[Deviation]]]:
    """The deviations of one case: ``(event, deviations)`` per deviating step, the
    end of the case as ``(None, deviations)``."""
    run = _Replay(model, stream_id)
    state = run.fold(events, stream_id=stream_id, first_version=events[0].version)
    run.finish(state)
    return run.found


# -- reading the log ----------------------------------------------------------------------

def _log(store: EventStore, filter: Filter | None) -> pa.Table:
    """The stored rows (``read_arrow``), of the cases ``filter`` keeps."""
    from .store.frames import only_cases

    table = store.read_arrow()
    return table if filter is None else only_cases(table, store, filter)


def _times(column: Any) -> list[datetime]:
    """UTC datetimes from a timestamp column (exact, faster than ``to_pylist``)."""
    import pyarrow as pa

    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [_EPOCH + timedelta(microseconds=m) for m in micros]


def cases_of(table: pa.Table, registry: EventRegistry
             ) -> Iterator[tuple[str, list[RecordedEvent]]]:
    """Rows of ``read_arrow`` (position order) as ``RecordedEvent``s, one case (stream)
    at a time, in the order of the cases' first events.

    Each case's events are made just before it is handed out, so few objects are
    alive at once (a whole log of events and dicts would keep the garbage
    collector busy).
    """
    columns = [table.column(n).to_pylist() for n in
               ("position", "stream_id", "version", "type", "data", "metadata", "event_id")]
    columns += [_times(table.column("recorded_at")), table.column("schema_version").to_pylist()]
    rows = list(zip(*columns, strict=True))
    cases: dict[str, list[int]] = {}
    for i, stream_id in enumerate(columns[1]):
        found = cases.get(stream_id)
        if found is None:
            cases[stream_id] = [i]
        else:
            found.append(i)
    for stream_id, indexes in cases.items():
        yield stream_id, list(recorded_events(registry, [rows[i] for i in indexes]))


# -- the result ---------------------------------------------------------------------------

@dataclass
class Conformance:
    """How a log conforms to a model.

    ``cases``: one row per case (``stream_id, events, deviations, fitness``) in
    the log's order; ``deviations``: one row per deviation (``stream_id,
    position, version, type, rule, message, at_end``; ``position``,
    ``version`` and ``type`` are missing for a deviation of the end of a case).
    """

    model: str
    cases: pd.DataFrame
    deviations: pd.DataFrame
    #: the rules the model is made of, when it says (``el.rules``): ``by_rule`` lists
    #: each, with no deviation too
    rules: tuple[str, ...] = ()

    @property
    def conforming(self) -> int:
        """How many cases have no deviation."""
        return int((self.cases["deviations"] == 0).sum())

    @property
    def fitness(self) -> float:
        """The mean fitness of the cases (NaN when there are none)."""
        return float(self.cases["fitness"].mean())

    def by_rule(self) -> pd.DataFrame:
        """Per rule: its deviations and the cases with one; most broken first (rules of
        ``el.rules`` that nothing broke too, with 0)."""
        import pandas as pd

        grouped = self.deviations.groupby("rule", sort=False)
        frame = grouped.agg(deviations=("message", "size"), cases=("stream_id", "nunique"))
        unbroken = [name for name in self.rules if name not in frame.index]
        frame = pd.concat([frame, pd.DataFrame({"deviations": 0, "cases": 0},
                                               index=pd.Index(unbroken, name="rule"))])
        frame = frame.astype("int64")
        frame.index.name = "rule"
        return frame.sort_values("deviations", ascending=False, kind="stable").reset_index()

    def __repr__(self) -> str:
        n, devs = len(self.cases), len(self.deviations)
        if not n:
            return f"<Conformance {self.model}: 0 cases>"
        return (f"<Conformance {self.model}: {n} case{'s' * (n != 1)}, {self.conforming} "
                f"conforming ({self.conforming / n:.1%}), mean fitness {self.fitness:.3f}, "
                f"{devs} deviation{'s' * (devs != 1)}>")


def _fitness(events: int, found: list[tuple[RecordedEvent | None, list[Deviation]]],
             checks_end: bool) -> float:
    steps = events + checks_end
    return 1.0 - len(found) / steps


def _frames(rows: list[tuple[str, int, int, float]], deviations: list[tuple[Any, ...]]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    cases = pd.DataFrame(rows, columns=list(CASE_COLUMNS)).astype(
        {"stream_id": "object", "events": "int64", "deviations": "int64",
         "fitness": "float64"})
    found = pd.DataFrame(deviations, columns=list(DEVIATION_COLUMNS)).astype(
        {"stream_id": "object", "position": "Int64", "version": "Int64", "type": "object",
         "rule": "object", "message": "object", "at_end": "bool"})
    return cases, found


def conformance(store: EventStore, rules: Any, filter: Filter | None = None) -> Conformance:
    """Replay each case of ``store`` (the cases ``filter`` keeps) through the decider
    ``rules``; see the module doc for what it sees and how fitness is counted.

    The log is read once, as Arrow, and each case replayed in memory.
    """
    model = check_model(rules)
    name = model_name(model)
    checks_end = callable(getattr(model, "finish", None))
    rows: list[tuple[str, int, int, float]] = []
    deviations: list[tuple[Any, ...]] = []
    for stream_id, events in cases_of(_log(store, filter), store.registry):
        found = replay(model, stream_id, events)
        count = 0
        for event, broken in found:
            count += len(broken)
            for d in broken:
                if event is None:
                    deviations.append((stream_id, None, None, None, d.rule, d.message, True))
                else:
                    deviations.append((stream_id, event.position, event.version, event.type,
                                       d.rule, d.message, False))
        rows.append((stream_id, len(events), count, _fitness(len(events), found, checks_end)))
    cases, found_frame = _frames(rows, deviations)
    return Conformance(name, cases, found_frame, tuple(getattr(model, "rule_names", ())))


__all__ = ["Conformance", "Deviation", "Deviations", "RuleError", "conformance"]
