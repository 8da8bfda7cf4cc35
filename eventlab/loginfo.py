"""What a log holds, at a glance: ``el.info(store)``, which ``eventlab info`` prints.

Streams, events, event types (with how many of each), the time span and the
last position, from any store (SQL over its ``events`` view, as the analytics do).

>>> import eventlab as el
>>> from datetime import datetime, UTC
>>> def at(day, type):
...     return el.NewEvent({}, type=type, recorded_at=datetime(2024, 5, day, tzinfo=UTC))
>>> store = el.InMemoryEventStore()
>>> _ = store.append("c1", [at(1, "open"), at(2, "close")])
>>> _ = store.append("c2", [at(3, "open")])
>>> facts = el.info(store)
>>> facts.streams, facts.events, facts.types, facts.head
(2, 3, 2, 3)
>>> facts.by_type
{'open': 2, 'close': 1}
>>> print(facts)
2 streams, 3 events, 2 types; the log ends at position 3
from 2024-05-01 00:00:00+00:00 to 2024-05-03 00:00:00+00:00
type   events
open        2
close       1
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store.base import EventStore


@dataclass(frozen=True)
class LogInfo:
    """The facts ``info`` gives about a log.

    ``head`` is the last position ever written: more than ``events`` once a
    stream was deleted (positions are never reused). ``first`` and ``last`` are the
    earliest and latest ``recorded_at`` (``None`` for an empty log). ``by_type``
    counts the events of each type, the most frequent first (ties by name).
    """

    streams: int
    events: int
    head: int
    first: datetime | None
    last: datetime | None
    by_type: dict[str, int]

    @property
    def types(self) -> int:
        """How many event types the log holds."""
        return len(self.by_type)

    def __str__(self) -> str:
        lines = [f"{self.streams} streams, {self.events} events, {self.types} types; "
                 f"the log ends at position {self.head}"]
        if self.events:
            lines.append(f"from {self.first} to {self.last}")
            names = max(len("type"), *(len(t) for t in self.by_type))
            counts = max(len("events"), *(len(str(n)) for n in self.by_type.values()))
            lines.append(f"{'type':<{names}}  {'events':>{counts}}")
            lines += [f"{t:<{names}}  {n:>{counts}}" for t, n in self.by_type.items()]
        return "\n".join(lines)


def info(store: EventStore) -> LogInfo:
    """Streams, events, types, time span and last position of ``store``'s log."""
    totals = store.sql("select count(distinct stream_id) as streams, count(*) as events, "
                       "min(recorded_at) as first, max(recorded_at) as last "
                       "from events").iloc[0]
    counts = store.sql("select type, count(*) as n from events "
                       "group by type order by n desc, type")
    return LogInfo(streams=int(totals["streams"]), events=int(totals["events"]),
                   head=store.head(), first=_moment(totals["first"]),
                   last=_moment(totals["last"]),
                   by_type={str(t): int(n) for t, n in zip(counts["type"], counts["n"],
                                                           strict=True)})


def _moment(value: Any) -> datetime | None:
    """A pandas timestamp (or missing value) from a query as a plain ``datetime``."""
    import pandas as pd

    if pd.isna(value):
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
