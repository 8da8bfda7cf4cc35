"""Time travel: an aggregate's state at any version or moment, its history, diffs, what-ifs.

``state_at``, ``history`` and ``what_if`` work on the cached ``Timeline`` of the
stream (``eventlab.timelines``): sparse checkpoints plus compact per-version
columns (type, time, position), the events themselves read from the store on
demand, so a slider can scrub a stream of a million events without holding it.
``diff`` (``eventlab.diffs``) says what changed between two states.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("acc-1", [Opened("ada"), Deposited(10), Deposited(5)])
>>> el.state_at(store, Account(), "acc-1", version=2).balance
10.0
>>> el.diff(el.state_at(store, Account(), "acc-1", version=2),
...         el.state_at(store, Account(), "acc-1", version=3))
Diff(balance: 10.0 -> 15.0, transactions: 1 -> 2)
>>> el.history(store, Account(), "acc-1")[["version", "type", "balance"]].values.tolist()
[[1, 'Opened', 0.0], [2, 'Deposited', 10.0], [3, 'Deposited', 15.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .aggregate import Aggregate, replayed
from .diffs import MISSING, Change, Diff, diff, state_frame, state_record, state_row
from .envelope import NewEvent, RecordedEvent
from .errors import ApplyError, InvalidInputError
from .timelines import HISTORY_BLOCK, Timeline, Types, timeline

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore


# -- the public functions ---------------------------------------------------------------

def state_at(store: EventStore, aggregate: Aggregate, stream_id: str,
             version: int | None = None, *, at: datetime | None = None) -> Any:
    """The stream's state after ``version``, or after the last event recorded by ``at``.

    Give one of ``version`` and ``at`` (neither: the latest state). ``at`` uses
    ``recorded_at``; a naive datetime is taken as UTC.
    """
    if version is not None and at is not None:
        raise InvalidInputError("give version= or at=, not both")
    line = timeline(store, aggregate, stream_id)
    if at is not None:
        version = line.version_at(at)
    return line.state_at(version)


def history(store: EventStore, aggregate: Aggregate, stream_id: str) -> pd.DataFrame:
    """One row per event of the stream, with the state after it.

    Columns: ``version``, ``position``, ``type``, ``recorded_at``, then the
    state's dataclass fields, dict keys, or one ``state`` column (a state
    column named like an envelope column gets a ``state_`` prefix).
    """
    return timeline(store, aggregate, stream_id).history()


class WhatIf:
    """An edited replay next to the real one (nothing is written to the store).

    ``actual_state`` and ``alternative_state`` are the two final states, and
    ``diff`` compares them; ``actual_length`` and ``alternative_length`` count
    the events of each. ``actual`` and ``alternative`` are history frames
    (the alternative has ``original_version`` and ``edit``: kept, inserted or
    replaced); they, and ``events`` (the edited stream's payloads), are built
    when first asked for, so a what-if on a long stream costs only the fold
    from its first edit.
    """

    def __init__(self, stream_id: str, actual_state: Any, alternative_state: Any,
                 lengths: tuple[int, int],
                 replay: Callable[[], tuple[pd.DataFrame, pd.DataFrame, list[Any]]]) -> None:
        self.stream_id = stream_id
        self.actual_state, self.alternative_state = actual_state, alternative_state
        self.actual_length, self.alternative_length = lengths
        self._replay = replay

    @functools.cached_property
    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame, list[Any]]:
        return self._replay()

    @property
    def actual(self) -> pd.DataFrame:
        return self._frames[0]

    @property
    def alternative(self) -> pd.DataFrame:
        return self._frames[1]

    @property
    def events(self) -> list[Any]:
        return self._frames[2]

    @property
    def diff(self) -> Diff:
        return diff(self.actual_state, self.alternative_state)

    def __repr__(self) -> str:
        return (f"<WhatIf {self.stream_id!r}: {self.actual_length} events actual, "
                f"{self.alternative_length} alternative; {self.diff!r}>")


def what_if(store: EventStore, aggregate: Aggregate, stream_id: str, *,
            drop: Iterable[int] = (), insert: Mapping[int, Sequence[Any]] | None = None,
            replace: Mapping[int, Any] | None = None) -> WhatIf:
    """Replay an edited copy of a stream: drop versions, insert events, replace some.

    ``insert={after_version: [events]}`` (0 inserts before the first event);
    ``replace={version: event}``. Versions refer to the stored stream, which is
    read in blocks. The final states are folded at once, from the state before
    the first edit; the history frames wait until they are asked for.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Account, Deposited, Opened
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("acc-1", [Opened("ada"), Deposited(10), Deposited(5)])
    >>> w = el.what_if(store, Account(), "acc-1", drop=[2], insert={3: [Deposited(1)]})
    >>> w.alternative_state.balance, dict(w.diff)["balance"]
    (6.0, Change(old=15.0, new=6.0))
    >>> w.alternative["edit"].tolist()
    ['kept', 'kept', 'inserted']
    """
    line = timeline(store, aggregate, stream_id)
    current = line.refresh()
    drop_set, insert, replace = set(drop), dict(insert or {}), dict(replace or {})
    for label, versions, low in (("drop", drop_set, 1), ("replace", replace, 1),
                                 ("insert after", insert, 0)):
        for v in versions:
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= current:
                raise InvalidInputError(
                    f"what_if on stream {stream_id!r}: cannot {label} version {v!r}; "
                    f"the stream has versions 1 to {current}")
    both = drop_set & set(replace)
    if both:
        raise InvalidInputError(
            f"what_if on stream {stream_id!r}: version(s) {sorted(both)} are both dropped "
            "and replaced")

    def edited(after: int) -> Iterator[tuple[Any, int | None, str]]:
        """The edited stream from just after stored version ``after``."""
        yield from ((e, None, "inserted") for e in insert.get(after, ()))
        for first in range(after + 1, current + 1, HISTORY_BLOCK):
            for event in line.events_between(first, min(first + HISTORY_BLOCK - 1, current)):
                v = event.version
                if v in replace:
                    yield replace[v], v, "replaced"
                elif v not in drop_set:
                    yield event, v, "kept"
                yield from ((e, None, "inserted") for e in insert.get(v, ()))

    def fold(state: Any, version: int, item: tuple[Any, int | None, str]) -> tuple[Any, Any, str]:
        event = item[0]
        data = event.data if isinstance(event, (NewEvent, RecordedEvent)) else event
        kind = event.type if isinstance(event, RecordedEvent) else _type_name(store, data)
        try:
            return aggregate.apply(state, replayed(aggregate, event)
                                   if isinstance(event, RecordedEvent) else data), data, kind
        except Exception as exc:
            raise ApplyError(f"{aggregate.name}.apply (what-if)", exc, stream_id=stream_id,
                             version=version, type=kind) from exc

    # The edited stream equals the stored one up to the first edit: start there.
    same_until = min([v - 1 for v in (*drop_set, *replace)] + list(insert), default=current)
    state = line.state_at(same_until)
    for version, item in enumerate(edited(same_until), start=same_until + 1):
        state = fold(state, version, item)[0]

    def replay() -> tuple[pd.DataFrame, pd.DataFrame, list[Any]]:
        import pandas as pd

        initial = line.state_at(0)
        state, rows, frames, events = initial, [], [], []
        for version, item in enumerate(edited(0), start=1):
            state, data, kind = fold(state, version, item)
            events.append(data)
            rows.append(state_row({"version": version, "original_version": item[1],
                                   "type": kind, "edit": item[2]}, state))
            if len(rows) == HISTORY_BLOCK:
                frames.append(pd.DataFrame(rows))
                rows = []
        frames += [pd.DataFrame(rows)] if rows else []
        alternative = state_frame(pd, frames, ("version", "original_version", "type", "edit"),
                                  initial)
        if len(alternative):
            alternative["original_version"] = alternative["original_version"].astype("Int64")
        return line.history(), alternative, events

    lengths = (current, current - len(drop_set) + sum(len(e) for e in insert.values()))
    return WhatIf(stream_id, line.state_at(current), state, lengths, replay)


def _type_name(store: EventStore, data: Any) -> str:
    return type(data).__name__ if isinstance(data, dict) else store.registry.name_of_class(
        type(data))


__all__ = ["MISSING", "Change", "Diff", "Timeline", "Types", "WhatIf", "diff", "history",
           "state_at", "state_record", "timeline", "what_if"]
