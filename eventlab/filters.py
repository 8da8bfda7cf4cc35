"""Case filters: "only the cases that..." for every analytic, plot, frame and view.

A ``Filter`` keeps whole cases (streams), never parts of one, so a kept case is
always seen from its first event to its last. Its criteria are:

- ``time=(a, b)``: cases whose every event lies in ``[a, b)`` ("contained");
  either end may be ``None``;
- ``starts_with`` / ``ends_with``: the type of a case's first / last event is
  this name (or one of these names);
- ``min_events`` / ``max_events``: bounds on a case's length;
- ``streams``: these stream ids only;
- ``where``: a SQL condition over the ``events`` view; a case is kept when at
  least one of its events meets it;
- ``variants_top=k``: cases of the ``k`` most frequent variants (ties go to the
  variant seen first), counted among the cases the other criteria keep.

``a & b`` applies ``a``, then ``b`` to what ``a`` kept. For every criterion but
``variants_top`` that is simply the cases both keep.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("c1", [el.NewEvent({}, type="open"), el.NewEvent({}, type="close")])
>>> _ = store.append("c2", [el.NewEvent({}, type="open")])
>>> complete = Filter(ends_with="close")
>>> store.to_df(filter=complete)["stream_id"].unique().tolist()
['c1']
>>> (Filter(starts_with="open") & Filter(max_events=1)).stream_ids(store)
['c2']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError
from .store.frames import moment
from .store.names import literal

if TYPE_CHECKING:
    from .store.base import EventStore

Moment = datetime | str | None

# Per case: what the criteria look at. ``first`` orders variants as analytics does.
_CASES = """select stream_id, count(*) as events, min(recorded_at) as first_at,
       max(recorded_at) as last_at, arg_min(type, version) as first_type,
       arg_max(type, version) as last_type, min(position) as first
from events group by stream_id"""


class Filter:
    """Which cases (streams) to keep; see the module doc for each criterion.

    >>> Filter(starts_with="open", min_events=2)
    Filter(starts_with=['open'], min_events=2)
    """

    def __init__(self, *, time: tuple[Moment, Moment] | None = None,
                 starts_with: str | Sequence[str] | None = None,
                 ends_with: str | Sequence[str] | None = None,
                 min_events: int | None = None, max_events: int | None = None,
                 variants_top: int | None = None, streams: str | Sequence[str] | None = None,
                 where: str | None = None) -> None:
        given: dict[str, Any] = {
            "streams": _names("streams", streams),
            "time": _period(time),
            "starts_with": _names("starts_with", starts_with),
            "ends_with": _names("ends_with", ends_with),
            "min_events": _count("min_events", min_events),
            "max_events": _count("max_events", max_events),
            "where": _condition(where),
            "variants_top": _count("variants_top", variants_top),
        }
        # variants_top last: it ranks what the other criteria of this filter keep
        self.steps: tuple[tuple[str, Any], ...] = tuple(
            (name, value) for name, value in given.items() if value is not None)

    def __and__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        combined = Filter()
        combined.steps = self.steps + other.steps
        return combined

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and self.steps == other.steps

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        shown = [f"{name}={_shown(value)}" for name, value in self.steps]
        return f"Filter({', '.join(shown)})"

    def cases_sql(self) -> str:
        """SQL over the ``events`` view selecting each kept case: its ``stream_id`` and
        ``first``, the position of its first event."""
        parts = [f"kept_0 as ({_CASES})"]
        for step, (name, value) in enumerate(self.steps, start=1):
            before = f"kept_{step - 1}"
            parts.append(f"kept_{step} as ({_step_sql(name, value, before)})")
        return f"with {', '.join(parts)} select stream_id, first from kept_{len(self.steps)}"

    def stream_ids(self, store: EventStore) -> list[str]:
        """The ids of the cases this filter keeps, in the log's order."""
        from .store.frames import sql

        query = f"select stream_id from ({self.cases_sql()}) order by first"
        return sql(store, query)["stream_id"].tolist()


def _step_sql(name: str, value: Any, before: str) -> str:
    """A select of the cases of ``before`` that criterion ``name`` keeps."""
    keep = f"select * from {before}"
    if name == "streams" or name in ("starts_with", "ends_with"):
        column = {"streams": "stream_id", "starts_with": "first_type",
                  "ends_with": "last_type"}[name]
        return f"{keep} where {column} in ({', '.join(literal(v) for v in value)})"
    if name == "time":
        start, end = value
        tests = ([f"first_at >= {_timestamp(start)}"] if start is not None else []) + \
                ([f"last_at < {_timestamp(end)}"] if end is not None else [])
        return f"{keep} where {' and '.join(tests) or 'true'}"
    if name == "min_events":
        return f"{keep} where events >= {value}"
    if name == "max_events":
        return f"{keep} where events <= {value}"
    if name == "where":
        return (f"{keep} where stream_id in (select stream_id from events "
                f"where ({value}))")
    # variants_top: rank the variants of the cases kept so far, keep the best ``value``;
    # a variant is a list of small type numbers, which DuckDB groups faster than text
    return f"""{keep} where stream_id in (
        with numbered as (select type, (row_number() over ())::integer as number
                          from (select distinct type from events)),
        sequences as (select stream_id, list(number order by version) as variant,
                             min(position) as first
                      from events join numbered using (type) semi join {before} using (stream_id)
                      group by stream_id),
        best as (select variant from sequences group by variant
                 order by count(*) desc, min(first) limit {value})
        select stream_id from sequences semi join best using (variant))"""


def _timestamp(value: datetime) -> str:
    return f"{literal(value.isoformat())}::timestamptz"


def _names(field: str, value: str | Collection[str] | None) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Collection) or not all(isinstance(n, str) for n in names):
        raise InvalidInputError(f"{field} must be a name or a list of names, got {value!r:.60}")
    names = sorted(names) if isinstance(names, (set, frozenset)) else names
    if not names:
        raise InvalidInputError(f"{field} must name at least one value, got an empty list")
    return list(names)


def _count(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{field} must be a whole number >= 0, got {value!r}")
    return value


def _period(value: tuple[Moment, Moment] | None) -> tuple[datetime | None, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InvalidInputError(
            f"time must be a pair (start, end), e.g. ('2011-01-01', '2011-07-01'); "
            f"got {value!r:.60}")
    start, end = (None if v is None else moment(v, f"time[{i}]") for i, v in enumerate(value))
    if start is not None and end is not None and end <= start:
        raise InvalidInputError(f"time=({value[0]!r}, {value[1]!r}): the end is not after "
                                "the start, so no case could be kept")
    return (start, end)


def _condition(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"where must be a SQL condition over the events view, e.g. "
            f"\"type = 'Refund'\"; got {value!r:.60}")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join("None" if v is None else repr(v.isoformat()) for v in value) + ")"
    return repr(value)
