"""eventlab: event sourcing you can see.

A small event-sourcing core (events, aggregates, a repository, an event-store
contract with DuckDB, PostgreSQL and in-memory stores) plus notebook helpers.

>>> import eventlab as el
>>> store = el.connect()
>>> store.head()
0
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .aggregate import Aggregate, AggregateRoot
from .envelope import ANY, NO_STREAM, STREAM_EXISTS, ExpectedVersion, NewEvent, RecordedEvent
from .errors import (
    ApplyError,
    ConcurrencyError,
    DomainError,
    EventlabError,
    ReactionError,
    ReadOnlyStoreError,
    SerializationError,
    StoreClosedError,
    StoreLockedError,
)
from .events import REGISTRY, EventRegistry, InvalidEventError, register, upcaster
from .reactions import Command, Reaction, ReactionFailed, ReactionRetried
from .repository import Repository
from .store import DuckDBEventStore, EventStore, InMemoryEventStore, InvalidInputError, connect
from .testing import given

__version__ = "0.1.0"

# Read-side helpers live in their own modules and load on first use, so that
# `import eventlab` stays fast and pulls in neither pandas nor matplotlib.
_LAZY = {
    "Projection": "projection",
    "Projector": "projection",
    "SqlProjection": "projection",
    "project_history": "projection",
    "Subscription": "subscription",
    "Reactor": "reactor",
    "causation": "chains",
    "Filter": "filters",
    "state_at": "timetravel",
    "history": "timetravel",
    "diff": "timetravel",
    "what_if": "timetravel",
    "import_log": "importers",
    "copy": "copying",
    "encrypt_fields": "shredding",
    "FieldEncryption": "shredding",
    "info": "loginfo",
    "PostgresEventStore": "store.postgres",
    "analytics": None,
    "datasets": None,
    "notebook": None,
    "rules": None,
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'eventlab' has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:
        return import_module(f".{name}", __name__)
    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "ANY", "NO_STREAM", "REGISTRY", "STREAM_EXISTS", "Aggregate", "AggregateRoot",
    "ApplyError", "Command", "ConcurrencyError", "DomainError", "DuckDBEventStore",
    "EventRegistry", "EventStore", "EventlabError", "ExpectedVersion", "InMemoryEventStore",
    "InvalidEventError", "InvalidInputError", "NewEvent", "Reaction", "ReactionError",
    "ReactionFailed", "ReactionRetried", "ReadOnlyStoreError", "RecordedEvent", "Repository",
    "SerializationError", "StoreClosedError", "StoreLockedError", "connect", "given",
    "register", "upcaster", *_LAZY,
]
