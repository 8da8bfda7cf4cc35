"""Causation chains: which event caused which, across streams, as a DataFrame.

Reactors write ``causation_id`` and ``correlation_id`` into each event's
metadata (``eventlab.reactions``). ``causation(store, event_id)`` gives the
whole chain an event belongs to, from any member of it, in causal order (the
log's order: a cause is always written before its effects).

The same metadata is plain SQL; a chain followed back from one event:

.. code-block:: sql

    with recursive chain(event_id, cause) as (
        select event_id, metadata->>'causation_id' from events where event_id = ?
        union all
        select e.event_id, e.metadata->>'causation_id'
        from events e join chain c on e.event_id::varchar = c.cause)
    select * from chain

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a", [el.NewEvent({}, type="Asked")])
>>> asked = next(store.read_all())
>>> meta = {"causation_id": str(asked.event_id), "correlation_id": str(asked.event_id)}
>>> _ = store.append("b", [el.NewEvent({}, type="Answered", metadata=meta)])
>>> el.causation(store, asked.event_id)[["stream_id", "type", "depth"]].values.tolist()
[['a', 'Asked', 0], ['b', 'Answered', 1]]
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .errors import EventlabError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore

#: The columns ``causation`` returns, in order.
COLUMNS = ["position", "stream_id", "version", "type", "event_id", "causation_id",
           "correlation_id", "reactor", "depth", "recorded_at", "data"]

_CHAIN = """
with member as (
    select coalesce(metadata->>'correlation_id', event_id::varchar) as first
    from events where event_id = ?::uuid)
select position, stream_id, version, type, event_id::varchar as event_id,
       metadata->>'causation_id' as causation_id,
       coalesce(metadata->>'correlation_id', event_id::varchar) as correlation_id,
       metadata->>'reactor' as reactor,
       recorded_at, data::varchar as data
from events, member
where event_id::varchar = member.first or metadata->>'correlation_id' = member.first
order by position
"""


def causation(store: EventStore, event_id: uuid.UUID | str) -> pd.DataFrame:
    """The chain ``event_id`` belongs to: one row per event, causes before effects.

    Columns: ``position, stream_id, version, type, event_id, causation_id,
    correlation_id, reactor, depth, recorded_at, data`` (the payload as JSON
    text). ``depth`` counts the causes between an event and the chain's first.
    """
    try:
        text = str(uuid.UUID(str(event_id)))
    except ValueError:
        raise InvalidInputError(f"event_id must be a UUID, got {event_id!r}") from None
    chain = store.sql(_CHAIN, [text])
    if chain.empty:
        raise EventlabError(f"no event with id {text} in {store!r}")
    chain["depth"] = _depths(chain["event_id"].tolist(), chain["causation_id"].tolist())
    return chain[COLUMNS]


def _depths(event_ids: list[str], causes: list[Any]) -> list[int]:
    """How many causes lie between each event and the chain's first, from the ids."""
    depth: dict[str, int] = {}
    for event_id, cause in zip(event_ids, causes, strict=True):
        depth[event_id] = depth.get(cause, -1) + 1 if isinstance(cause, str) else 0
    return [depth[e] for e in event_ids]


__all__ = ["COLUMNS", "causation"]
