"""Event stores: the contract, a DuckDB store, a PostgreSQL store and a pure-Python one."""

from __future__ import annotations

import os
from typing import Any

from .base import EventStore, InvalidInputError
from .duckdb import DuckDBEventStore
from .memory import InMemoryEventStore
from .urls import describe, is_url, redact


def connect(path: str | os.PathLike[str] | None = None, read_only: bool = False,
            registry: Any = None, *, schema: str | None = None) -> EventStore:
    """Open an event store: DuckDB in memory (the default) or in a file, or PostgreSQL.

    ``path`` is a DuckDB file, or a ``postgresql://user:password@host/db`` URL,
    whose log lives in ``schema`` (default ``public``, or the URL's ``?schema=``;
    created when missing).

    >>> store = connect()
    >>> store.path is None
    True
    >>> store.close()
    """
    if is_url(path):
        try:
            from .postgres import PostgresEventStore
        except ImportError as exc:   # psycopg is an optional extra
            raise InvalidInputError(
                "a PostgreSQL store needs psycopg: pip install 'eventlab[postgres]' "
                f"({exc})") from None
        return PostgresEventStore(path, schema=schema, read_only=read_only,
                                  registry=registry)
    if schema is not None:
        raise InvalidInputError("schema= is for PostgreSQL URLs; a DuckDB file holds one log")
    return DuckDBEventStore(path, read_only=read_only, registry=registry)


__all__ = ["DuckDBEventStore", "EventStore", "InMemoryEventStore", "InvalidInputError",
           "connect", "describe", "is_url", "redact"]
