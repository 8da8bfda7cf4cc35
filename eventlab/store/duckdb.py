"""The DuckDB event store: a file (or memory) holding the log, snapshots and checkpoints.

One process may hold a file read-write; within it, every writer shares one lock,
so global positions are handed out in commit order and a catch-up reader can
never see position 13 before 12. Stream versions are cached under that lock,
which makes an append one INSERT statement.

>>> import eventlab as el
>>> store = el.connect()          # in memory
>>> store.head()
0
>>> store.close()
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain, pairwise
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    EventlabError,
    InvalidInputError,
    ReadOnlyStoreError,
    StoreClosedError,
    StoreLockedError,
)
from .arrow import UTC_MICROS_PY, conform
from .base import EventStore
from .names import TABLE
from .rows import MAX_INT, Pending, StoredRow, StreamMoved

_COLUMNS = ("position, stream_id, version, type, data, metadata, event_id, "
            "recorded_at, schema_version")
_SCHEMA = (
    f"""create table if not exists {TABLE} (
        position bigint not null,
        stream_id varchar not null,
        version bigint not null,
        type varchar not null,
        data varchar not null,
        metadata varchar not null default '{{}}',
        event_id uuid not null,
        recorded_at timestamptz not null,
        schema_version integer not null default 1,
        unique (stream_id, version))""",
    f"create index if not exists {TABLE}_stream on {TABLE} (stream_id)",
    """create table if not exists eventlab_snapshots (
        stream_id varchar not null, key varchar not null, version bigint not null,
        state varchar not null, taken_at timestamptz not null,
        primary key (stream_id, key))""",
    """create table if not exists eventlab_checkpoints (
        name varchar primary key, position bigint not null, state varchar,
        updated_at timestamptz not null)""",
    "create table if not exists eventlab_meta (key varchar primary key, value varchar)",
    f"""create or replace view events as
        select position, stream_id, version, type, data::json as data,
               metadata::json as metadata, event_id, recorded_at
        from {TABLE}""",
)
#: Bumped whenever ``_SCHEMA`` changes: a file whose stored version matches skips setup.
SCHEMA_VERSION = "2"
# what reads select: UUIDs as text and times as epoch microseconds, which Python
# turns into objects many times faster than from DuckDB's or Arrow's own types
_ARROW_COLUMNS = _COLUMNS.replace("event_id", "event_id::varchar as event_id")
_FETCH_COLUMNS = _COLUMNS.replace("event_id", "event_id::varchar").replace(
    "recorded_at", "epoch_us(recorded_at)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SMALL_READ = 200          # streams up to this many events are fetched as plain rows
_ROW_PARAMS = "(?, ?, ?, ?, ?, ?, coalesce(?::uuid, uuid()), ?, ?)"
_MAX_VALUES_ROWS = 64      # above this, inserts go through one Arrow table
_READ_BATCH = 65_536
# Within 2**32 seconds of 1970 (years 1833-2106) a float of seconds converts back to
# the exact microsecond (checked on millions of values); outside it, it may not.
_FLOAT_EXACT_US = 2**32 * 10**6


class _FileState:
    """What every store object on one database in this process shares."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.versions: dict[str, int] = {}
        self.head = 0
        self.users = 0
        self.generation = 0   # bumped by every delete: cached states before it are stale
        self.listeners: list[Callable[[int], None]] = []  # every store object's subscribers
        self.listeners_lock = threading.Lock()


log = logging.getLogger("eventlab.store")
_files: dict[str, _FileState] = {}
# Reentrant: a store collected while the lock is held releases its share under it.
_files_lock = threading.RLock()
# Opens of files run one at a time: DuckDB's catalog refuses two schema setups at once.
_open_lock = threading.Lock()
_memory_ids = itertools.count(1)


def _release(key: str, state: _FileState, db: duckdb.DuckDBPyConnection,
             cursors: weakref.WeakSet) -> None:
    """Let go of a store's share of its database (on close, or when it is collected).

    Every cursor the store handed out is closed too: DuckDB keeps a file open
    (and locked to other processes) while any connection to it lives.
    """
    with _files_lock:
        state.users -= 1
        if state.users == 0 and _files.get(key) is state:
            del _files[key]
    for cursor in list(cursors):
        with contextlib.suppress(duckdb.Error):
            cursor.interrupt()   # a read under way in another thread stops now
        _close(cursor)
    _close(db)


def _close(connection: duckdb.DuckDBPyConnection) -> None:
    """Close a connection that another thread may be using at this moment.

    DuckDB refuses to close a connection in the middle of a call; an
    interrupted call ends within milliseconds, so try again for a little while.
    """
    deadline = time.monotonic() + 5.0
    while True:
        try:
            connection.close()
            return
        except duckdb.Error as exc:
            if time.monotonic() > deadline:
                log.warning("could not close a DuckDB connection: %s", exc)
                return
            time.sleep(0.005)


def _lock_error(path: str, exc: Exception, read_only: bool) -> EventlabError:
    text = str(exc)
    if path != ":memory:" and os.path.realpath(path) in _files:
        return StoreLockedError(
            f"{path} is already open in this process with another mode (read-write and "
            "read-only cannot be mixed in one process): use the store you have, or close "
            f"it (store.close()) first. DuckDB said: {text}")
    if "lock" in text.lower() or "different configuration" in text:
        holder = ""
        if "PID" in text:
            holder = " (" + text[text.index("PID"):].split(")")[0].rstrip(".") + ")"
        # While one process writes a DuckDB file, no other may open it, not even to read;
        # only read-only openers share. So a read-only open that fails faces a writer.
        also = "" if read_only else (
            " If that process only reads the file (it opened it with read_only=True), "
            f"el.connect({path!r}, read_only=True) can share it.")
        return StoreLockedError(
            f"{path} is in use by another process{holder}. While a process writes a "
            "DuckDB file, no other process may open it, not even to read: close the "
            "other kernel or process (store.close() there), or copy the file and open "
            f"the copy.{also} DuckDB said: {text}")
    return EventlabError(f"cannot open {path}: {text}")


class DuckDBEventStore(EventStore):
    """An event store in a DuckDB database file, or in memory when ``path`` is None."""

    def __init__(self, path: str | os.PathLike[str] | None = None, read_only: bool = False,
                 registry: Any = None) -> None:
        super().__init__(registry)
        self.path = None if path in (None, ":memory:") else os.fspath(path)
        self.read_only = read_only
        self._key = (os.path.realpath(self.path) if self.path
                     else f"memory:{next(_memory_ids)}")
        self._cursors: weakref.WeakSet = weakref.WeakSet()
        with _open_lock:
            try:
                self._db = duckdb.connect(self.path or ":memory:", read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException,
                    duckdb.InvalidInputException) as exc:
                raise _lock_error(self.path or ":memory:", exc, read_only) from None
            try:
                self._set_up(first=self._key not in _files)
            except BaseException:
                self._db.close()
                raise
            with _files_lock:
                state = _files.get(self._key)
                if state is None:
                    state = _files[self._key] = _FileState()
                    state.head = self._stored_head()
                state.users += 1
        self._state = state
        self._finalizer = weakref.finalize(self, _release, self._key, state, self._db,
                                           self._cursors)
        # subscribers hear of writes made through any store object on this database
        self._listeners, self._listeners_lock = state.listeners, state.listeners_lock

    def _set_up(self, first: bool) -> None:
        """Create the tables and views, unless the file already has this schema version."""
        db = self._db
        if self.path is not None and db.execute(
                "select path from duckdb_databases() where database_name = current_database()"
        ).fetchall() in ([], [(None,)]):
            # DuckDB opens a CSV or Parquet file as a database held in memory, with the
            # file as a table: what would be written there would be lost on close.
            raise InvalidInputError(
                f"{self.path} is not a DuckDB database but a data file DuckDB can read (a "
                "CSV or Parquet log?); nothing written to it would be kept. Open a store on "
                f"a .duckdb file and import the log into it: el.import_log(store, "
                f"{self.path!r})")
        if self.read_only:
            if not db.execute("select 1 from information_schema.tables where table_name = ?",
                              [TABLE]).fetchall():
                raise EventlabError(f"{self.path} holds no eventlab event log")
            return
        if not first:
            return   # another store object of this process set the file up
        current = db.execute(
            "select value from eventlab_meta where key = 'schema'").fetchall() if db.execute(
            "select 1 from information_schema.tables where table_name = 'eventlab_meta'"
        ).fetchall() else []
        if current == [(SCHEMA_VERSION,)]:
            return
        for statement in _SCHEMA:
            db.execute(statement).fetchall()
        db.execute("insert or replace into eventlab_meta values ('schema', ?)",
                   [SCHEMA_VERSION]).fetchall()

    # -- connections ------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor: each read gets its own, so threads never share one.

        The store keeps track of it, so ``close()`` closes it too."""
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")
        cursor = self._db.cursor()
        self._cursors.add(cursor)
        return cursor

    def _writer(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")
        if self.read_only:
            raise ReadOnlyStoreError(
                f"{self.path} was opened with read_only=True; open it without to write")
        return self._db

    def _stored_head(self) -> int:
        row = self._cursor().execute(
            f"select greatest(coalesce((select max(position) from {TABLE}), 0), "
            "coalesce((select value::bigint from eventlab_meta where key = 'head_floor'), 0))"
        ).fetchall()
        return int(row[0][0])

    # -- writing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        self._writer()   # refuses a closed or read-only store
        with self._state.lock:
            yield

    def _versions(self, stream_ids: list[str]) -> dict[str, int]:
        if len(stream_ids) == 1:
            return {stream_ids[0]: self._version(stream_ids[0])}
        self._cache_versions(stream_ids)   # many streams: one query for all of them
        versions = self._state.versions
        return {s: versions[s] for s in stream_ids}

    def _insert(self, plan: list[tuple[str, int, list[Pending]]]) -> int:
        state = self._state
        count = sum(len(batch) for _, _, batch in plan)
        try:
            _insert_rows(self._db, state.head, plan, count)
        except (duckdb.ConstraintException, duckdb.TransactionException) as exc:
            state.versions.clear()   # whatever moved, the next check reads it afresh
            raise StreamMoved(plan[0][0]) from exc
        for stream_id, before, batch in plan:
            state.versions[stream_id] = before + len(batch)
        state.head += count
        return state.head

    def _insert_table(self, table: pa.Table) -> int:
        """Insert checked ``append_batch`` rows with one INSERT ... SELECT: positions
        follow the row order, versions continue each stream."""
        state, db, count = self._state, self._db, table.num_rows
        table = table.append_column("_n", pa.array(range(count), pa.int64()))
        db.register("_eventlab_bulk", table)
        try:
            db.execute(
                f"""insert into {TABLE} ({_COLUMNS})
                select ? + b._n + 1, b.stream_id, coalesce(v.version, 0)
                           + row_number() over (partition by b.stream_id order by b._n),
                       b.type, b.data, coalesce(b.metadata, '{{}}'),
                       coalesce(b.event_id::uuid, gen_random_uuid()),
                       coalesce(b.recorded_at, ?::timestamptz), b.schema_version
                from _eventlab_bulk b left join (
                    select stream_id, max(version) as version from {TABLE}
                    where stream_id in (select stream_id from _eventlab_bulk)
                    group by stream_id) v using (stream_id)
                order by b._n""",
                [state.head, datetime.now(UTC)]).fetchall()
        except (duckdb.ConstraintException, duckdb.TransactionException) as exc:
            state.versions.clear()
            raise StreamMoved(table.column("stream_id")[0].as_py()) from exc
        finally:
            db.unregister("_eventlab_bulk")
        for stream_id in pc.unique(table.column("stream_id")).to_pylist():
            state.versions.pop(stream_id, None)
        state.head += count
        return state.head

    def _copy_arrow(self, table: pa.Table, head: int) -> None:
        """Insert rows read from another store (``LOG_SCHEMA``) as they are, positions
        included, and take ``head`` as the log's head."""
        with self._writing():
            db = self._db
            db.register("_eventlab_copy", table)
            try:
                db.execute(f"insert into {TABLE} ({_COLUMNS}) select * replace "
                           "(event_id::uuid as event_id) from _eventlab_copy").fetchall()
            finally:
                db.unregister("_eventlab_copy")
            self._state.versions.clear()
            self._state.head = max(self._state.head, head)

    def _clear_log(self) -> None:
        """Remove every event (a mirror starting over); positions start again at 1."""
        with self._writing():
            self._db.execute(f"delete from {TABLE}").fetchall()
            self._db.execute("delete from eventlab_meta where key = 'head_floor'").fetchall()
            self._state.versions.clear()
            self._state.head = 0

    def _version(self, stream_id: str) -> int:
        """The stream's version, from the cache when this process knows it."""
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")
        cached = self._state.versions.get(stream_id)
        if cached is not None:
            return cached
        if self.read_only:
            return self._query_version(stream_id)
        # Filled under the writers' lock, so a slow read can never overwrite the
        # version an append has just set.
        with self._state.lock:
            cached = self._state.versions.get(stream_id)
            if cached is None:
                cached = self._state.versions[stream_id] = self._query_version(stream_id)
            return cached

    def _query_version(self, stream_id: str) -> int:
        row = self._cursor().execute(
            f"select coalesce(max(version), 0) from {TABLE} where stream_id = ?",
            [stream_id]).fetchone()
        return int(row[0])

    def _cache_versions(self, stream_ids: list[str]) -> None:
        """Fill the version cache for many streams at once (the caller holds the lock)."""
        versions = self._state.versions
        missing = list({s for s in stream_ids if s not in versions})
        if not missing:
            return
        versions.update({s: 0 for s in missing})
        versions.update(self._cursor().execute(
            f"select stream_id, max(version) from {TABLE} "
            "where stream_id in (select unnest(?::varchar[])) group by stream_id",
            [missing]).fetchall())

    def _find_ids(self, event_ids: list[str]) -> dict[str, tuple[str, int]]:
        cursor = self._cursor()
        try:
            if len(event_ids) <= _MAX_VALUES_ROWS:
                rows = cursor.execute(
                    f"select event_id::varchar, stream_id, version from {TABLE} "
                    "where event_id in (select unnest(?::uuid[]))", [event_ids]).fetchall()
            else:   # many ids (a log imported again): join them as an Arrow column
                cursor.register("_eventlab_ids", pa.table({"id": pa.array(event_ids,
                                                                          pa.string())}))
                rows = cursor.execute(
                    f"select event_id::varchar, stream_id, version from {TABLE} "
                    "where event_id in (select id::uuid from _eventlab_ids)").fetchall()
        finally:
            cursor.close()
        return {event_id: (stream_id, version) for event_id, stream_id, version in rows}

    # -- reading ----------------------------------------------------------------------

    def _read_stream_rows(self, stream_id: str, from_version: int,
                          to_version: int | None) -> list[StoredRow]:
        query, params = _stream_query(_FETCH_COLUMNS, stream_id, from_version, to_version)
        # No ORDER BY: sorting costs DuckDB about a millisecond even for three rows.
        # Rows come back in insertion order, which is version order; checked below.
        expected = (to_version or self._version(stream_id)) - from_version + 1
        if expected <= _SMALL_READ:  # plain rows beat Arrow's fixed cost for a few events
            found = self._cursor().execute(query, params).fetchall()
            rows = [(p, s, v, t, d, m, e, _EPOCH + timedelta(microseconds=us), sv)
                    for p, s, v, t, d, m, e, us, sv in found]
        else:
            table = self._cursor().sql(query, params=params).to_arrow_table()
            rows = list(zip(*_columns(table), strict=True))
        if any(a[2] > b[2] for a, b in pairwise(rows)):
            rows.sort(key=lambda r: r[2])
        return rows

    def _read_payloads(self, stream_id: str, from_version: int,
                       to_version: int | None) -> list[tuple[str, str, int]]:
        query, params = _stream_query("version, type, data, schema_version", stream_id,
                                      from_version, to_version)
        table = self._cursor().sql(query, params=params).to_arrow_table()
        versions = table.column(0).to_pylist()
        rows = list(zip(*(table.column(i).to_pylist() for i in (1, 2, 3)), strict=True))
        if any(a > b for a, b in pairwise(versions)):
            rows = [row for _, row in sorted(zip(versions, rows, strict=True))]
        return rows

    def _read_all_rows(self, from_position: int, limit: int | None,
                       types: list[str] | None) -> Iterator[StoredRow]:
        batches = self._read_all_columns(from_position, limit, types)
        # chain and zip run in C: no Python frame is resumed per row, only per batch
        return chain.from_iterable(zip(*columns, strict=True) for columns in batches)

    def _read_all_columns(self, from_position: int, limit: int | None,
                          types: list[str] | None) -> Iterator[list[list[Any]]]:
        """The log from ``from_position`` on, as column lists, one slice of positions at a time.

        One query per slice of ``_READ_BATCH`` positions: a single ordered query
        over the log would sort, and hold, all of it before the first row came
        back. Rows are stored in position order, so each slice's query skips the
        rest of the table by its row groups' position ranges.
        """
        by_type = "" if types is None else " and type in (select unnest(?::varchar[]))"
        more = [] if types is None else [types]
        # No ORDER BY: rows come back in the order they were stored, which is
        # position order; _in_order checks that, and sorts only when it is not.
        query = (f"select {_FETCH_COLUMNS} from {TABLE} where position between ? and ?"
                 f"{by_type}")
        position, left = from_position, limit
        while left is None or left > 0:
            last = min(position + _READ_BATCH - 1, MAX_INT)
            cursor = self._cursor()
            try:
                sliced = (query if left is None or left >= _READ_BATCH
                          else f"{query} order by position limit {left}")
                table = cursor.sql(sliced, params=[position, last, *more]).to_arrow_table()
                if table.num_rows == 0:   # a gap left by deletes, or the end of the log
                    (found,) = cursor.execute(
                        f"select min(position) from {TABLE} where position > ?{by_type}",
                        [last, *more]).fetchone()
                    if found is None:
                        return
                    position = found
                    continue
            finally:
                cursor.close()
            table = _in_order(table)
            if left is not None:
                left -= table.num_rows
            yield _columns(table)
            if last == MAX_INT:
                return
            position = last + 1

    def head(self) -> int:
        if self.read_only:
            return self._stored_head()
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")
        return self._state.head

    @property
    def generation(self) -> int:
        return self._state.generation

    def stream_ids(self) -> list[str]:
        rows = self._cursor().execute(
            f"select stream_id from {TABLE} group by stream_id order by min(position)"
        ).fetchall()
        return [r[0] for r in rows]

    def _delete(self, stream_id: str) -> int:
        db = self._db
        db.execute("begin").fetchall()
        try:
            count = db.execute(f"delete from {TABLE} where stream_id = ?",
                               [stream_id]).fetchone()[0]
            db.execute("delete from eventlab_snapshots where stream_id = ?",
                       [stream_id]).fetchall()
            # positions are never reused, even when the newest events were deleted
            db.execute("insert or replace into eventlab_meta values ('head_floor', ?)",
                       [str(self._state.head)]).fetchall()
            db.execute("commit").fetchall()
        except BaseException:
            db.execute("rollback").fetchall()
            raise
        self._state.versions.pop(stream_id, None)
        self._state.generation += 1
        return int(count)

    # -- snapshots and checkpoints ------------------------------------------------------

    def _put_snapshot(self, stream_id: str, key: str, version: int, state: str) -> None:
        self._db.execute("insert or replace into eventlab_snapshots values (?, ?, ?, ?, ?)",
                         [stream_id, key, version, state, datetime.now(UTC)]).fetchall()

    def _get_snapshot(self, stream_id: str, key: str) -> tuple[int, str] | None:
        row = self._cursor().execute(
            "select version, state from eventlab_snapshots where stream_id = ? and key = ?",
            [stream_id, key]).fetchone()
        return (int(row[0]), row[1]) if row else None

    def _put_checkpoint(self, name: str, position: int, state: str | None) -> None:
        self._db.execute("insert or replace into eventlab_checkpoints values (?, ?, ?, ?)",
                         [name, position, state, datetime.now(UTC)]).fetchall()

    def _get_checkpoint(self, name: str) -> tuple[int, str | None] | None:
        row = self._cursor().execute(
            "select position, state from eventlab_checkpoints where name = ?",
            [name]).fetchone()
        return (int(row[0]), row[1]) if row else None

    # -- the log as Arrow and SQL -------------------------------------------------------

    def _read_arrow(self, from_position: int, to_position: int | None,
                    stream_id: str | None, types: list[str] | None) -> pa.Table:
        query = (f"select {_ARROW_COLUMNS} from {TABLE} where position >= ?")
        params: list[Any] = [from_position]
        if to_position is not None:
            query += " and position <= ?"
            params.append(to_position)
        if stream_id is not None:
            query += " and stream_id = ?"
            params.append(stream_id)
        if types is not None:
            query += " and type in (select unnest(?::varchar[]))"
            params.append(types)
        cursor = self._cursor()
        try:
            # No ORDER BY: rows come back in the order they were stored (position order)
            return conform(_in_order(cursor.sql(query, params=params).to_arrow_table()))
        finally:
            cursor.close()

    def _sql_store(self) -> DuckDBEventStore:
        return self

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        from .sqlsession import SqlSession

        with self._writing():
            db = self._db
            session = SqlSession(self, db)
            db.execute("begin").fetchall()
            try:
                yield session
            except BaseException:
                db.execute("rollback").fetchall()
                raise
            db.execute("commit").fetchall()

    # -- lifetime ----------------------------------------------------------------------

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection, for SQL of your own (read with care)."""
        return self._cursor()

    def _release(self) -> None:
        self._finalizer()

    @contextlib.contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self._cursor()   # the store's own database answers
        try:
            yield cursor
        finally:
            cursor.close()

    def __repr__(self) -> str:
        where = self.path or ":memory:"
        mode = ", read_only=True" if self.read_only else ""
        return f"DuckDBEventStore({where!r}{mode})"


def _insert_rows(db: duckdb.DuckDBPyConnection, head: int,
                 plan: list[tuple[str, int, list[Pending]]], count: int) -> None:
    """Insert each ``(stream_id, version before, events)`` in one statement."""
    if count <= _MAX_VALUES_ROWS:
        params: list[Any] = []
        position = head
        for stream_id, version, batch in plan:
            for p in batch:
                position += 1
                version += 1
                params += (position, stream_id, version, p.type, p.data, p.metadata,
                           p.event_id, p.recorded_at, p.schema)
        values = ", ".join([_ROW_PARAMS] * count)
        db.execute(f"insert into {TABLE} ({_COLUMNS}) values {values}", params).fetchall()
        return
    db.register("_eventlab_batch", _arrow_batch(head, plan, count))
    try:
        db.execute(f"insert into {TABLE} ({_COLUMNS}) select position, stream_id, "
                   "version, type, data, metadata, coalesce(event_id::uuid, uuid()), "
                   "recorded_at, schema_version from _eventlab_batch").fetchall()
    finally:
        db.unregister("_eventlab_batch")


def _arrow_batch(head: int, plan: list[tuple[str, int, list[Pending]]], count: int) -> pa.Table:
    """The rows of a big append as Arrow columns; values shared by all rows are not
    converted once per row (times and ids are the slow ones to convert)."""
    events = [p for _, _, batch in plan for p in batch]
    first = events[0]

    def column(values: list[Any], same: Any, kind: pa.DataType) -> pa.Array:
        if all(v is same for v in values):
            return pa.repeat(pa.scalar(same, kind), count)
        return pa.array(values, kind)

    return pa.table({
        "position": pa.array(range(head + 1, head + count + 1), pa.int64()),
        "stream_id": pa.concat_arrays([pa.repeat(pa.scalar(sid, pa.string()), len(batch))
                                       for sid, _, batch in plan]),
        "version": pa.concat_arrays([pa.array(range(before + 1, before + len(batch) + 1),
                                              pa.int64()) for _, before, batch in plan]),
        "type": column([p.type for p in events], first.type, pa.string()),
        "data": pa.array([p.data for p in events], pa.string()),
        "metadata": column([p.metadata for p in events], first.metadata, pa.string()),
        "event_id": column([p.event_id for p in events], None, pa.string()),
        "recorded_at": column([p.recorded_at for p in events], first.recorded_at, UTC_MICROS_PY),
        "schema_version": column([p.schema for p in events], first.schema, pa.int32()),
    })


def _stream_query(columns: str, stream_id: str, from_version: int,
                  to_version: int | None) -> tuple[str, list[Any]]:
    query = f"select {columns} from {TABLE} where stream_id = ? and version >= ?"
    params: list[Any] = [stream_id, from_version]
    if to_version is not None:
        query += " and version <= ?"
        params.append(to_version)
    return query, params


def _in_order(table: pa.Table) -> pa.Table:
    """The table sorted by its first column (position), if it is not already."""
    positions = table.column(0)
    if table.num_rows > 1 and not pc.all(pc.greater(positions[1:], positions[:-1])).as_py():
        return table.sort_by([(table.column_names[0], "ascending")])
    return table


def _columns(table: pa.Table | pa.RecordBatch) -> list[list[Any]]:
    """Selected columns as Python lists, times (epoch microseconds) as UTC datetimes."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    times = columns[7]
    if not times:
        return columns
    bounds = pc.min_max(table.column(7))
    if bounds["min"].as_py() >= -_FLOAT_EXACT_US and bounds["max"].as_py() <= _FLOAT_EXACT_US:
        from_timestamp = datetime.fromtimestamp   # the fastest way, and exact in this range
        columns[7] = [from_timestamp(us / 1e6, UTC) for us in times]
    else:
        epoch, delta = _EPOCH, timedelta     # exact for every year from 1 to 9999
        columns[7] = [epoch + delta(0, 0, us) for us in times]
    return columns
