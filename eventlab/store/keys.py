"""Per-subject keys kept next to the log: each store's key table, ``eventlab_keys``.

Field encryption (``eventlab.shredding``) seals a subject's fields with a key
of its own, and forgets the subject by deleting that key. The keys live where
the store keeps its events: the same DuckDB file, the same PostgreSQL schema,
the same in-memory store. So every process that opens the log finds them, a
copy of the file carries them, and nothing else has to be deployed and backed
up beside the store.

A key is written *unconfirmed* before the append that first uses it, and
confirmed once that append has returned; an append that raises discards the
keys it made. Writers only take confirmed keys, so no writer, in any process,
builds on a key that a failing append is about to discard. Readers use any key
they find; a subject may hold more than one key (two writers met it first at
once), and forgetting it deletes them all.

Deleting a row does not take its bytes out of a database file, so a forget
does more than ``DELETE`` (measured: a deleted key stays readable in the file):

* DuckDB file: the table is rewritten twice, with a ``CHECKPOINT`` after
  each: the first frees the blocks that held the key, the second writes over
  them. In memory there is no file to clean.
* PostgreSQL: ``VACUUM FULL`` rewrites the table into a new file (a plain
  ``VACUUM`` left the last row of a page in place). The write-ahead log keeps
  the inserted key until its segment is recycled, and archives keep it as long
  as they are kept. A transaction open in another session during the forget
  keeps the deleted row version alive, and ``VACUUM FULL`` copies it along.

A forget also moves the log's ``generation``, as a delete does, so every cache
of decoded states (repositories, time travel) drops what it decrypted.

>>> from eventlab import InMemoryEventStore
>>> keys = key_table(InMemoryEventStore())
>>> keys.create([("k1", "ada", b"0" * 32)])
>>> keys.current(["ada"])            # not confirmed yet: no writer takes it
{}
>>> keys.confirm(["k1"])
>>> keys.current(["ada"])["ada"][0], keys.subjects()
('k1', ['ada'])
>>> keys.forget("ada", [])
1
>>> keys.secrets(["k1"])
{}
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidInputError
from .base import EventStore
from .duckdb import DuckDBEventStore
from .memory import InMemoryEventStore
from .names import META, SNAPSHOTS, quote

KEYS = "eventlab_keys"
_COLUMNS = "key_id, subject, secret, confirmed, created_at"


class KeyTable(ABC):
    """The keys of one store: ``(key_id, subject, secret)`` rows, confirmed or not."""

    #: True when only this process writes the table (memory, DuckDB): a writer may then
    #: keep the keys it found until the log's generation moves.
    local = True

    def __init__(self, store: EventStore) -> None:
        self.store = store

    @abstractmethod
    def create(self, rows: list[tuple[str, str, bytes]]) -> None:
        """Store new keys ``(key_id, subject, secret)``, unconfirmed."""

    @abstractmethod
    def confirm(self, key_ids: list[str]) -> None:
        """Mark keys as in use: writers may take them from now on."""

    @abstractmethod
    def discard(self, key_ids: list[str]) -> None:
        """Delete unconfirmed keys an append made and did not use."""

    @abstractmethod
    def current(self, subjects: list[str]) -> dict[str, tuple[str, bytes]]:
        """Each subject's oldest confirmed key ``(key_id, secret)``; subjects without one
        are left out."""

    @abstractmethod
    def secrets(self, key_ids: list[str] | None) -> dict[str, bytes]:
        """The secrets of those keys (``None``: of every key) that still exist."""

    @abstractmethod
    def subjects(self) -> list[str]:
        """Every subject holding a key, in order of its first key."""

    @abstractmethod
    def forget(self, subject: str, streams: list[str]) -> int:
        """Delete the subject's keys, and the snapshots of ``streams``, for good; move the
        log's generation; return how many keys were deleted."""


def key_table(store: EventStore) -> KeyTable:
    """The key table of ``store`` (created in its database when missing)."""
    if isinstance(store, InMemoryEventStore):
        return _MemoryKeys(store)
    if isinstance(store, DuckDBEventStore):
        return _DuckDBKeys(store)
    from .postgres import PostgresEventStore  # psycopg only when it is used

    if isinstance(store, PostgresEventStore):
        return _PostgresKeys(store)
    raise InvalidInputError(f"{store!r} keeps no key table: field encryption works on "
                            "the in-memory, DuckDB and PostgreSQL stores")


# -- in memory -------------------------------------------------------------------------------

class _Key:
    __slots__ = ("confirmed", "secret", "seq", "subject")

    def __init__(self, subject: str, secret: bytes, seq: int) -> None:
        self.subject, self.secret, self.seq, self.confirmed = subject, secret, seq, False


# a store's keys live as long as the store object does, like its events
_memory: weakref.WeakKeyDictionary[InMemoryEventStore, dict[str, _Key]] = (
    weakref.WeakKeyDictionary())
_memory_lock = threading.Lock()
_sequence = itertools.count()


class _MemoryKeys(KeyTable):
    def __init__(self, store: InMemoryEventStore) -> None:
        super().__init__(store)
        with _memory_lock:
            self._keys = _memory.setdefault(store, {})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, _Key]]:
        with self.store._writing():   # the store's own lock
            self.store._check_open()
            yield self._keys

    def create(self, rows: list[tuple[str, str, bytes]]) -> None:
        with self._locked() as keys:
            for key_id, subject, secret in rows:
                keys[key_id] = _Key(subject, secret, next(_sequence))

    def confirm(self, key_ids: list[str]) -> None:
        with self._locked() as keys:
            for key_id in key_ids:
                if key_id in keys:
                    keys[key_id].confirmed = True

    def discard(self, key_ids: list[str]) -> None:
        with self._locked() as keys:
            for key_id in key_ids:
                if key_id in keys and not keys[key_id].confirmed:
                    del keys[key_id]

    def current(self, subjects: list[str]) -> dict[str, tuple[str, bytes]]:
        wanted, found = set(subjects), {}
        with self._locked() as keys:
            for key_id, key in keys.items():
                if key.confirmed and key.subject in wanted:
                    first = found.get(key.subject)
                    if first is None or key.seq < first[0]:
                        found[key.subject] = (key.seq, key_id, key.secret)
        return {s: (key_id, secret) for s, (_, key_id, secret) in found.items()}

    def secrets(self, key_ids: list[str] | None) -> dict[str, bytes]:
        with self._locked() as keys:
            if key_ids is None:
                return {k: key.secret for k, key in keys.items()}
            return {k: keys[k].secret for k in key_ids if k in keys}

    def subjects(self) -> list[str]:
        with self._locked() as keys:
            ordered = sorted(keys.values(), key=lambda key: key.seq)
        return list(dict.fromkeys(key.subject for key in ordered))

    def forget(self, subject: str, streams: list[str]) -> int:
        store = self.store
        with self._locked() as keys:
            gone = [k for k, key in keys.items() if key.subject == subject]
            for key_id in gone:
                del keys[key_id]
            if gone:
                for found in [k for k in store._snapshots if k[0] in streams]:
                    del store._snapshots[found]
                store.generation += 1
        return len(gone)


# -- DuckDB ----------------------------------------------------------------------------------

def _duckdb_table(name: str) -> str:
    return (f"create table if not exists {name} (key_id varchar primary key, "
            "subject varchar not null, secret blob not null, "
            "confirmed boolean not null default false, created_at timestamptz not null)")


class _DuckDBKeys(KeyTable):
    store: DuckDBEventStore

    def __init__(self, store: DuckDBEventStore) -> None:
        super().__init__(store)
        if not store.read_only:   # a reader of a file without keys finds none
            with store._writing():
                store._db.execute(_duckdb_table(KEYS)).fetchall()

    def _write(self, query: str, params: Any = None) -> None:
        with self.store._writing():
            self.store._db.execute(query, params).fetchall()

    def _read(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        import duckdb

        cursor = self.store._cursor()
        try:
            return cursor.execute(query, params).fetchall()
        except duckdb.CatalogException:   # a read-only file that never held a key
            return []
        finally:
            cursor.close()

    def create(self, rows: list[tuple[str, str, bytes]]) -> None:
        now = datetime.now(UTC)
        self._write(f"insert into {KEYS} ({_COLUMNS}) select unnest(?), unnest(?), "
                    "unnest(?::blob[]), false, ?",
                    [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], now])

    def confirm(self, key_ids: list[str]) -> None:
        self._write(f"update {KEYS} set confirmed = true "
                    "where key_id in (select unnest(?::varchar[]))", [key_ids])

    def discard(self, key_ids: list[str]) -> None:
        self._write(f"delete from {KEYS} where not confirmed "
                    "and key_id in (select unnest(?::varchar[]))", [key_ids])

    def current(self, subjects: list[str]) -> dict[str, tuple[str, bytes]]:
        # one subject (most appends) is a plain comparison: a list costs DuckDB more
        where, params = (("subject = ?", subjects) if len(subjects) == 1 else
                         ("subject in (select unnest(?::varchar[]))", [subjects]))
        rows = self._read(
            f"select subject, key_id, secret from {KEYS} where confirmed and {where} "
            "qualify row_number() over (partition by subject order by created_at, key_id) = 1",
            params)
        return {s: (k, bytes(secret)) for s, k, secret in rows}

    def secrets(self, key_ids: list[str] | None) -> dict[str, bytes]:
        if key_ids is None:
            rows = self._read(f"select key_id, secret from {KEYS}")
        elif len(key_ids) == 1:
            rows = self._read(f"select key_id, secret from {KEYS} where key_id = ?", key_ids)
        else:
            rows = self._read(f"select key_id, secret from {KEYS} "
                              "where key_id in (select unnest(?::varchar[]))", [key_ids])
        return {k: bytes(secret) for k, secret in rows}

    def subjects(self) -> list[str]:
        return [s for (s,) in self._read(
            f"select subject from {KEYS} group by subject order by min(created_at)")]

    def forget(self, subject: str, streams: list[str]) -> int:
        store = self.store
        with store._writing():
            db = store._db
            db.execute("begin").fetchall()
            try:
                (count,) = db.execute(f"delete from {KEYS} where subject = ?",
                                      [subject]).fetchone()
                db.execute(f"delete from {SNAPSHOTS} where stream_id in "
                           "(select unnest(?::varchar[]))", [streams]).fetchall()
                db.execute("commit").fetchall()
            except BaseException:
                db.execute("rollback").fetchall()
                raise
            if count and store.path is not None:
                db.execute("checkpoint").fetchall()
                for _ in range(2):   # the first frees the key's blocks, the second reuses them
                    self._rewrite()
            if count:
                store._state.generation += 1
        return int(count)

    def _rewrite(self) -> None:
        """Copy the key table into a new one, drop the old, and checkpoint."""
        db, fresh = self.store._db, f"{KEYS}_next"
        db.execute("begin").fetchall()
        try:
            db.execute(_duckdb_table(fresh)).fetchall()
            db.execute(f"insert into {fresh} select {_COLUMNS} from {KEYS}").fetchall()
            db.execute(f"drop table {KEYS}").fetchall()
            db.execute(f"alter table {fresh} rename to {KEYS}").fetchall()
            db.execute("commit").fetchall()
        except BaseException:
            db.execute("rollback").fetchall()
            raise
        db.execute("checkpoint").fetchall()


# -- PostgreSQL ------------------------------------------------------------------------------

class _PostgresKeys(KeyTable):
    local = False   # other processes write it too

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        schema = quote(store.schema)
        self._table = f"{schema}.{KEYS}"
        self._meta, self._snapshots = f"{schema}.{META}", f"{schema}.{SNAPSHOTS}"
        if not store.read_only and self._rows("select to_regclass(%s)",
                                              [self._table]) == [(None,)]:
            with store._using() as conn, conn.transaction():
                # processes setting up at once queue here, as the store's own setup does
                conn.execute("select pg_advisory_xact_lock(hashtextextended('eventlab setup', 0))")
                conn.execute(
                    f"create table if not exists {self._table} (key_id text primary key, "
                    "subject text not null, secret bytea not null, "
                    "confirmed boolean not null default false, created_at timestamptz not null)")
                conn.execute(f"create index if not exists {KEYS}_subject "
                             f"on {self._table} (subject)")

    def _rows(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self.store._using() as conn:
            try:
                cursor = conn.execute(query, params)
            except psycopg.errors.UndefinedTable:   # read only, and no key ever made
                return []
            return cursor.fetchall() if cursor.description else []

    def _write(self, query: str, params: Any = ()) -> None:
        with self.store._writing():
            self._rows(query, params)

    def create(self, rows: list[tuple[str, str, bytes]]) -> None:
        self._write(f"insert into {self._table} ({_COLUMNS}) select k, s, x, false, now() "
                    "from unnest(%s::text[], %s::text[], %s::bytea[]) as r(k, s, x)",
                    [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]])

    def confirm(self, key_ids: list[str]) -> None:
        self._write(f"update {self._table} set confirmed = true where key_id = any(%s)",
                    [key_ids])

    def discard(self, key_ids: list[str]) -> None:
        self._write(f"delete from {self._table} where not confirmed and key_id = any(%s)",
                    [key_ids])

    def current(self, subjects: list[str]) -> dict[str, tuple[str, bytes]]:
        rows = self._rows(
            f"select distinct on (subject) subject, key_id, secret from {self._table} "
            "where confirmed and subject = any(%s) order by subject, created_at, key_id",
            [subjects])
        return {s: (k, bytes(secret)) for s, k, secret in rows}

    def secrets(self, key_ids: list[str] | None) -> dict[str, bytes]:
        if key_ids is None:
            rows = self._rows(f"select key_id, secret from {self._table}")
        else:
            rows = self._rows(f"select key_id, secret from {self._table} "
                              "where key_id = any(%s)", [key_ids])
        return {k: bytes(secret) for k, secret in rows}

    def subjects(self) -> list[str]:
        return [s for (s,) in self._rows(
            f"select subject from {self._table} group by subject order by min(created_at)")]

    def forget(self, subject: str, streams: list[str]) -> int:
        store = self.store
        with store._writing(), store._using() as conn:
            with conn.transaction():
                count = conn.execute(f"delete from {self._table} where subject = %s",
                                     [subject]).rowcount
                if count:
                    conn.execute(f"delete from {self._snapshots} where stream_id = any(%s)",
                                 [streams])
                    (store._generation,) = conn.execute(
                        f"update {self._meta} set value = value + 1 "
                        "where key = 'generation' returning value").fetchone()
                    conn.execute("select pg_notify(%s, '0')", [store._channel])
            if count:   # a new file for the table: the old one, with the key, goes
                conn.execute(f"vacuum full {self._table}")
        return count
