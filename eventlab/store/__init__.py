"""Event stores: the contract, a DuckDB store and a pure-Python one."""

from .base import EventStore, InvalidInputError
from .duckdb import DuckDBEventStore, connect
from .memory import InMemoryEventStore

__all__ = ["DuckDBEventStore", "EventStore", "InMemoryEventStore", "InvalidInputError",
           "connect"]
