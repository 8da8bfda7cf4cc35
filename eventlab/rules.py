"""Declare-style rules: small deciders that say how a process must go, combined with ``&``.

- ``precedes(a, b)``: ``b`` may happen only if ``a`` happened before it in the case;
- ``responds(a, b)``: every ``a`` is followed, later in the case, by a ``b``
  (checked at the end of the case);
- ``not_coexist(a, b)``: ``a`` and ``b`` never both in one case (the deviation is
  reported once, at the first event that brings the second one in);
- ``four_eyes(a, b, by="org:resource")``: ``a`` and ``b`` are not done by the
  same person (reported at each event that pairs them).

Activities are event type names. Each rule is an ``el.Aggregate`` over
``RecordedEvent``s (``wants_recorded = True``): ``handle(state, event)`` raises
a ``Deviation`` naming the rule when the event breaks it, else returns
``[event]``; ``apply`` folds the event in; ``finish(state)`` raises for what
never happened. ``r1 & r2`` is a ``RuleSet``: every member applies, each keeps
its own state, and all deviations of one event are reported together, each
naming its rule. A rule set is a decider too, so ``el.analytics.conformance``,
``el.given`` and ``AggregateRoot`` take it like any aggregate; one of your own
aggregates may join it (``precedes("a", "b") & MyProcess()``) and is shown
events as ``conformance`` would show it.

``four_eyes`` reads ``by`` from the event's payload (``data``: the XES importer
puts an event's attributes such as ``org:resource`` there), then from its
``metadata`` (where an append's ``{"user": ...}`` goes). An ``a`` or ``b`` event
without it is a deviation, since nothing shows two people were involved;
``missing="ignore"`` skips such events instead.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("c1", [el.NewEvent({}, type="submit"), el.NewEvent({}, type="approve")])
>>> _ = store.append("c2", [el.NewEvent({}, type="approve")])
>>> model = precedes("submit", "approve") & responds("submit", "approve")
>>> model
precedes('submit', 'approve') & responds('submit', 'approve')
>>> result = el.analytics.conformance(store, model)
>>> result.deviations[["stream_id", "version", "rule", "message"]].values.tolist()
[['c2', 1, "precedes('submit', 'approve')", "'approve' happened without 'submit' before it"]]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .aggregate import Aggregate, replayed
from .conformance import (
    Deviation,
    Deviations,
    RuleError,
    check_model,
    deviations_of,
    model_name,
)
from .envelope import RecordedEvent
from .errors import DomainError, InvalidInputError

_ABSENT: Any = object()


class _Combining(Aggregate):
    """What rules and rule sets share: they read ``RecordedEvent``s and combine with
    ``&`` (with each other, or with any decider) into a ``RuleSet``."""

    wants_recorded: ClassVar[bool] = True

    def __and__(self, other: Any) -> RuleSet:
        return RuleSet(self, other) if isinstance(other, Aggregate) else NotImplemented

    def __rand__(self, other: Any) -> RuleSet:
        return RuleSet(other, self) if isinstance(other, Aggregate) else NotImplemented


class Rule(_Combining):
    """One constraint between two activities ``a`` and ``b``; a decider over recorded events.

    Subclasses say what a step breaks (``broken``), how it changes the state
    (``step``) and what the end of a case breaks (``broken_at_end``).
    """

    kind: ClassVar[str] = "rule"

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = _activity(self.kind, "a", a), _activity(self.kind, "b", b)
        if a == b:
            raise InvalidInputError(f"{self.kind}: name two different activities, got {a!r} "
                                    "twice")
        #: the event types the rule looks at; other events leave it as it is
        self.activities: frozenset[str] = frozenset((self.a, self.b))

    # -- what a subclass says ---------------------------------------------------------
    def broken(self, state: Any, event: RecordedEvent) -> str | None:
        """Why ``event`` breaks the rule in ``state``, or None."""
        return None

    def step(self, state: Any, event: RecordedEvent) -> Any:
        """The state after ``event`` (one of the rule's activities)."""
        return state

    def broken_at_end(self, state: Any) -> str | None:
        """Why a case ending in ``state`` breaks the rule, or None."""
        return None

    # -- the decider ------------------------------------------------------------------
    def handle(self, state: Any, event: RecordedEvent) -> list[Any]:
        if event.type in self.activities:
            why = self.broken(state, event)
            if why is not None:
                raise Deviation(why, self.name)
        return [event]

    def apply(self, state: Any, event: RecordedEvent) -> Any:
        return self.step(state, event) if event.type in self.activities else state

    def finish(self, state: Any) -> None:
        """Raise a ``Deviation`` when a case ending in ``state`` breaks the rule."""
        why = self.broken_at_end(state)
        if why is not None:
            raise Deviation(why, self.name)

    @property
    def name(self) -> str:
        return f"{self.kind}({self.a!r}, {self.b!r})"

    @property
    def rule_names(self) -> tuple[str, ...]:
        return (self.name,)

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash(self.name)



class Precedes(Rule):
    """``b`` only after an ``a``; the state is whether an ``a`` happened yet."""

    kind = "precedes"

    def initial_state(self) -> bool:
        return False

    def broken(self, seen_a: bool, event: RecordedEvent) -> str | None:
        if event.type == self.b and not seen_a:
            return f"{self.b!r} happened without {self.a!r} before it"
        return None

    def step(self, seen_a: bool, event: RecordedEvent) -> bool:
        return seen_a or event.type == self.a


class Responds(Rule):
    """Every ``a`` answered by a later ``b``; the state is whether an ``a`` waits for one."""

    kind = "responds"

    def initial_state(self) -> bool:
        return False

    def step(self, waiting: bool, event: RecordedEvent) -> bool:
        return event.type == self.a

    def broken_at_end(self, waiting: bool) -> str | None:
        return f"{self.a!r} was not followed by {self.b!r}" if waiting else None


class NotCoexist(Rule):
    """Never ``a`` and ``b`` in one case; the state is which of them happened."""

    kind = "not_coexist"

    def initial_state(self) -> frozenset[str]:
        return frozenset()

    def broken(self, seen: frozenset[str], event: RecordedEvent) -> str | None:
        other = self.b if event.type == self.a else self.a
        if other in seen and event.type not in seen:
            return (f"{event.type!r} happened in a case that already had {other!r}; "
                    f"{self.a!r} and {self.b!r} must not both happen")
        return None

    def step(self, seen: frozenset[str], event: RecordedEvent) -> frozenset[str]:
        return seen if event.type in seen else seen | {event.type}


class FourEyes(Rule):
    """``a`` and ``b`` by different people; the state is who did each, as
    ``(people who did a, people who did b)``."""

    kind = "four_eyes"

    def __init__(self, a: str, b: str, by: str = "org:resource",
                 missing: str = "deviation") -> None:
        super().__init__(a, b)
        if not isinstance(by, str) or not by:
            raise InvalidInputError(
                f"four_eyes: by= names the field that says who did an event (in its payload "
                f"or metadata), e.g. 'org:resource'; got {by!r}")
        if missing not in ("deviation", "ignore"):
            raise InvalidInputError(
                f"four_eyes: missing= is 'deviation' or 'ignore', got {missing!r}")
        self.by, self.missing = by, missing
        self.label = by.rpartition(":")[2] or by

    @property
    def name(self) -> str:
        return f"four_eyes({self.a!r}, {self.b!r}, by={self.by!r})"

    def initial_state(self) -> tuple[frozenset[Any], frozenset[Any]]:
        return (frozenset(), frozenset())

    def broken(self, people: tuple[frozenset[Any], frozenset[Any]],
               event: RecordedEvent) -> str | None:
        who = field(event, self.by)
        if who is _ABSENT:
            if self.missing == "ignore":
                return None
            return (f"{event.type!r} has no {self.by!r}, so who did it is unknown and "
                    f"{self.a!r} and {self.b!r} cannot be shown to be done by two people")
        others = people[1] if event.type == self.a else people[0]
        if who in others:
            return f"{self.a!r} and {self.b!r} done by the same {self.label} {who!r}"
        return None

    def step(self, people: tuple[frozenset[Any], frozenset[Any]], event: RecordedEvent
             ) -> tuple[frozenset[Any], frozenset[Any]]:
        who = field(event, self.by)
        if who is _ABSENT:
            return people
        done_a, done_b = people
        if event.type == self.a:
            return people if who in done_a else (done_a | {who}, done_b)
        return people if who in done_b else (done_a, done_b | {who})


def field(event: RecordedEvent, name: str) -> Any:
    """An event's value for ``name``: from its payload, else its metadata (a dotted
    name also finds a nested payload field); ``_ABSENT`` when neither has it (or it
    is null). Unhashable values are compared by their text.

    >>> e = RecordedEvent(1, "c", 1, "T", {"org:resource": "112"}, {"user": "ada"}, None, None)
    >>> field(e, "org:resource"), field(e, "user"), field(e, "nobody") is _ABSENT
    ('112', 'ada', True)
    """
    data = event.data
    value = data.get(name, _ABSENT) if isinstance(data, dict) else getattr(data, name, _ABSENT)
    if value is _ABSENT and "." in name and isinstance(data, dict):
        value = data
        for part in name.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
    if value is _ABSENT or value is None:
        value = event.metadata.get(name, _ABSENT) if event.metadata else _ABSENT
    if value is None:
        return _ABSENT
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class RuleSet(_Combining):
    """Several deciders checked together: each keeps its own state (the set's state is
    the tuple of theirs), and the deviations of one event are raised together as
    ``Deviations``, each naming its rule.

    Members are rules from this module or any other decider; ``&`` flattens nested
    sets. Events go only to the rules whose ``activities`` they are, and to
    every member that has none (your own aggregates).
    """

    def __init__(self, *members: Any) -> None:
        flat: list[Any] = []
        for member in members:
            if isinstance(member, RuleSet):
                flat.extend(member.members)
            else:
                flat.append(check_model(member, "a rule"))
        self.members: tuple[Any, ...] = tuple(flat)
        self._names = tuple(model_name(m) for m in flat)
        self._routes: dict[str, tuple[int, ...]] = {}

    def _route(self, type_name: str) -> tuple[int, ...]:
        """The members an event of this type concerns (cached per type)."""
        route = self._routes.get(type_name)
        if route is None:
            route = self._routes[type_name] = tuple(
                i for i, m in enumerate(self.members)
                if not isinstance(m, Rule) or type_name in m.activities)
        return route

    def initial_state(self) -> tuple[Any, ...]:
        return tuple(m.initial_state() for m in self.members)

    def handle(self, state: tuple[Any, ...], event: RecordedEvent) -> list[Any]:
        found: list[Deviation] = []
        members = self.members
        for i in self._route(event.type):
            try:
                members[i].handle(state[i], replayed(members[i], event))
            except DomainError as exc:
                found.extend(deviations_of(exc, self._names[i]))
            except Exception as exc:
                raise RuleError(f"{self._names[i]}.handle", exc) from exc
        if found:
            raise found[0] if len(found) == 1 else Deviations(found)
        return [event]

    def apply(self, state: tuple[Any, ...], event: RecordedEvent) -> tuple[Any, ...]:
        route = self._route(event.type)
        if not route:
            return state
        states, members = list(state), self.members
        for i in route:
            try:
                states[i] = members[i].apply(
                    state[i], replayed(members[i], event))
            except Exception as exc:
                raise RuleError(f"{self._names[i]}.apply", exc) from exc
        return tuple(states)

    def finish(self, state: tuple[Any, ...]) -> None:
        """Raise the deviations of the end of a case, from every member with ``finish``."""
        found: list[Deviation] = []
        for i, member in enumerate(self.members):
            finish = getattr(member, "finish", None)
            if finish is None:
                continue
            try:
                finish(state[i])
            except DomainError as exc:
                found.extend(deviations_of(exc, self._names[i]))
            except Exception as exc:
                raise RuleError(f"{self._names[i]}.finish", exc) from exc
        if found:
            raise found[0] if len(found) == 1 else Deviations(found)

    @property
    def name(self) -> str:
        return " & ".join(self._names)

    @property
    def rule_names(self) -> tuple[str, ...]:
        """The names of the rules of ``el.rules`` in the set (each deviation names one)."""
        return tuple(n for m, n in zip(self.members, self._names, strict=True)
                     if isinstance(m, Rule))

    def __repr__(self) -> str:
        return self.name

    def __iter__(self) -> Iterator[Any]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)



def _activity(kind: str, which: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{kind}: activities are event type names (non-empty text); {which} is {value!r}")
    return value


def precedes(a: str, b: str) -> Precedes:
    """``b`` may happen only if ``a`` happened before it in the case."""
    return Precedes(a, b)


def responds(a: str, b: str) -> Responds:
    """Every ``a`` must be followed later in the case by a ``b`` (checked at its end)."""
    return Responds(a, b)


def not_coexist(a: str, b: str) -> NotCoexist:
    """``a`` and ``b`` never both in one case; reported at the second one to appear."""
    return NotCoexist(a, b)


def four_eyes(a: str, b: str, by: str = "org:resource", missing: str = "deviation"
              ) -> FourEyes:
    """``a`` and ``b`` must not be done by the same person, ``by`` naming the payload
    (or metadata) field that says who; ``missing="ignore"`` skips events without it."""
    return FourEyes(a, b, by, missing)


__all__ = ["FourEyes", "NotCoexist", "Precedes", "Responds", "Rule", "RuleSet",
           "four_eyes", "not_coexist", "precedes", "responds"]
