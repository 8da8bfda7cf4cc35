"""SQL sessions: SQL over a store's log in one transaction, with tables kept beside it.

What SQL projections are built on, on every store: the session's database holds
the log as the view ``events`` (``data`` and ``metadata`` as JSON), up to
``head``, and the tables a session creates stay there for the next one. On a
DuckDB store that database is the store's own (a file store keeps the tables in
its file, next to the log); on other stores it is the store's local mirror,
which lives as long as the store object. No append lands in that database while
a session is open, and everything a session did, its checkpoints included,
commits at its end or not at all.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [el.NewEvent({"n": 2}, type="T")])
>>> with store.sql_session() as session:
...     _ = session.execute("create table totals as select sum((data->>'n')::int)::int as n "
...                         "from events")
...     session.save_checkpoint("sql:totals", session.head)
>>> store.sql("select n from totals").n.tolist()
[2]
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ..errors import EventlabError
from .rows import check_position


class SqlError(EventlabError):
    """A statement of a SQL session failed; the message is the database's."""


class SqlSession:
    """One transaction over a store's log; see the module docstring."""

    def __init__(self, store: Any, connection: duckdb.DuckDBPyConnection) -> None:
        self._store = store
        self._connection = connection
        #: the log's head when the session began: ``events`` holds every position up to it
        self.head: int = store.head()

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement; return the rows it gives (none for most DDL and DML)."""
        try:
            relation = self._connection.execute(query, params)
            return relation.fetchall() if relation.description else []
        except duckdb.Error as exc:
            raise SqlError(str(exc)) from exc

    def arrow(self, query: str, params: Any = None) -> pa.Table:
        """Run a query; return its result as an Arrow table."""
        try:
            return self._connection.execute(query, params).to_arrow_table()
        except duckdb.Error as exc:
            raise SqlError(str(exc)) from exc

    def has_table(self, name: str) -> bool:
        """True when a table of that name (compared without case) exists."""
        return bool(self.execute(
            "select 1 from information_schema.tables where lower(table_name) = lower(?) "
            "and table_schema = 'main'", [name]))

    def checkpoint(self, name: str) -> int | None:
        """The position stored under ``name`` in this database, if any."""
        found = self._store._get_checkpoint(name)
        return None if found is None else found[0]

    def save_checkpoint(self, name: str, position: int, reset: bool = False) -> None:
        """Store ``position`` under ``name``, committed with the session's other work."""
        check_position("position", position)
        self._store.save_checkpoint(name, position, None, reset=reset)
