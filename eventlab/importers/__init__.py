"""Import real event logs (XES, CSV, Parquet, OCEL 2.0, DataFrames) into a store, all or nothing.

Each case becomes a stream (``stream_prefix + case``), each activity an event
type, and the timestamp the event's ``recorded_at`` (UTC). An OCEL 2.0 log
(JSON, XML or SQLite) has no cases but objects: ``object_type=`` picks the
type whose objects become the streams (see ``ocel``). Events are appended
in time order (ties keep the file's order), so within a case they follow the
timestamps. Every row is checked before anything is written; a bad one raises
``LogImportError`` naming the line and column. Line numbers count as a person
reads the file: in a CSV the header is line 1, so the first row is line 2; in
XES the line of the ``<event>`` tag; in a DataFrame or Parquet table "row N"
counts rows from 1.

Importing the same log again is a safe retry: events get deterministic ids
(see ``identity``), events the store already holds are not written again,
and the summary's ``written`` says how many were new.

>>> import eventlab as el
>>> store = el.connect()
>>> el.import_log(store, "data/running-example/running-example.xes")  # doctest: +SKIP
ImportSummary(cases=6, events=42, activities=8, written=42)
>>> el.import_log(store, "data/running-example/running-example.xes")  # doctest: +SKIP
ImportSummary(cases=6, events=42, activities=8, written=0)
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ..errors import ConcurrencyError
from . import identity
from .errors import LogImportError
from .stored import drop_stored

if TYPE_CHECKING:
    from ..store.base import EventStore

__all__ = ["ImportSummary", "LogImportError", "import_log"]


@dataclass(frozen=True, repr=False)
class ImportSummary:
    """What an import read: how many cases (streams), events and activities (types);
    ``written``, how many of the events it wrote (fewer when some were stored
    by an earlier import of the same log); and for an OCEL log ``left_out``, how
    many of its events relate to no object of the chosen type and were not imported
    (shown only when there are some).

    >>> s = ImportSummary(cases=6, events=42, activities=8, written=0)
    >>> s.already_stored
    42
    >>> ImportSummary(cases=2, events=5, activities=3, written=5, left_out=8)
    ImportSummary(cases=2, events=5, activities=3, written=5, left_out=8)
    """

    cases: int
    events: int
    activities: int
    written: int
    left_out: int = 0

    def __repr__(self) -> str:
        shown = (f"cases={self.cases}, events={self.events}, activities={self.activities}, "
                 f"written={self.written}")
        if self.left_out:
            shown += f", left_out={self.left_out}"
        return f"ImportSummary({shown})"

    @property
    def already_stored(self) -> int:
        """Events of the log the store already held (from an earlier import of it)."""
        return self.events - self.written


def import_log(store: EventStore, source: Any, case: str | None = None,
               activity: str | None = None, timestamp: str | None = None,
               attributes: Collection[str] | None = None, stream_prefix: str = "",
               object_type: str | None = None,
               timezone: str | tzinfo | None = None) -> ImportSummary:
    """Import a log into ``store``: a path (``.xes``, ``.xes.gz``, ``.csv``, ``.parquet``,
    a directory of Parquet files, or an OCEL 2.0 log: ``.jsonocel``, ``.xmlocel``,
    ``.sqlite``) or a pandas DataFrame / Arrow table.

    ``case``, ``activity`` and ``timestamp`` name the columns of a table (found
    by common names such as ``case:concept:name``/``case_id``, ``concept:name``/
    ``activity``, ``time:timestamp``/``timestamp`` otherwise). ``attributes``
    limits which other columns (or XES or OCEL event attributes) go into the payload.

    An OCEL 2.0 log needs ``object_type``, the object type whose objects become
    the streams (an import without it names the log's object types): each
    event goes to the stream of every object of that type it relates to, and
    ``left_out`` counts the events related to none. ``timezone`` (an IANA name
    such as ``"Europe/Berlin"``) is the zone of OCEL times written without an
    offset; UTC when not given. See ``eventlab.importers.ocel``.

    >>> import pandas as pd, eventlab as el
    >>> log = pd.DataFrame({"case_id": ["c1", "c1"], "activity": ["open", "close"],
    ...                     "timestamp": ["2024-01-01 09:00", "2024-01-01 10:00"]})
    >>> store = el.InMemoryEventStore()
    >>> el.import_log(store, log)
    ImportSummary(cases=1, events=2, activities=2, written=2)
    >>> el.import_log(store, log).written    # the same rows again: nothing new
    0
    >>> el.import_log(store, "data/ocel20-p2p-example/ocel20_example.jsonocel",
    ...               object_type="Purchase Order")   # doctest: +SKIP
    ImportSummary(cases=2, events=5, activities=3, written=5, left_out=8)
    """
    bar = _Progress()
    try:
        path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        if path is not None and not path.exists():
            raise LogImportError(f"{path} does not exist")
        form = None if path is None else _ocel_form(path)
        if path is not None and form is not None:
            batch, summary = _read_ocel(path, object_type, timezone, attributes,
                                        stream_prefix, (case, activity, timestamp), bar)
            where = path.name
        else:
            where = "the table" if path is None else path.name
            for option, value in (("object_type", object_type), ("timezone", timezone)):
                if value is not None:
                    raise LogImportError(
                        f"{option}= is for OCEL 2.0 logs (.jsonocel, .xmlocel, .sqlite), and "
                        f"{where} is not one: its cases are the values of a column (case=)")
            batch, summary = _read_log(store, source, path, case, activity, timestamp,
                                       attributes, stream_prefix, bar)
        bar.stage("writing")
        return _write(store, batch, summary, where)
    finally:
        bar.close()


def _ocel_form(path: Path) -> str | None:
    from .ocel import form_of

    return form_of(path)


def _read_ocel(path: Path, object_type: str | None, timezone: str | tzinfo | None,
               attributes: Collection[str] | None, prefix: str,
               mapped: tuple[str | None, ...], bar: _Progress) -> tuple[pa.Table, ImportSummary]:
    """The checked batch of an OCEL 2.0 log flattened onto ``object_type``."""
    from . import ocel

    given = [f"{n}=" for n, v in zip(("case", "activity", "timestamp"), mapped, strict=True)
             if v is not None]
    if given:
        raise LogImportError(
            f"{path.name} is an OCEL 2.0 log: {', '.join(given)} name columns of a table; "
            "an OCEL log's streams are the objects of one type: pass object_type=...")
    bar.start(path.stat().st_size, f"reading {path.name}")
    log = ocel.read_ocel(path, timezone, bar.update)
    if object_type is None:
        raise LogImportError(
            f"{path.name} is an OCEL 2.0 log: name the object type whose objects become "
            f"the streams with object_type=...; its object types: {log.describe_types()}")
    rows, left_out = ocel.flatten(log, object_type, attributes)
    bar.stage("checking")
    mapping = {"case": "object", "activity": "type", "timestamp": "time",
               "object_type": object_type}
    namespace = identity.import_namespace("ocel", prefix, mapping, attributes)
    batch, summary = _checked(rows, mapping, "event", path.name, prefix, namespace,
                              by_content=False)
    return batch, replace(summary, left_out=left_out)


def _read_log(store: EventStore, source: Any, path: Path | None, case: str | None,
              activity: str | None, timestamp: str | None,
              attributes: Collection[str] | None, stream_prefix: str,
              bar: _Progress) -> tuple[pa.Table, ImportSummary]:
    """The checked batch of an XES, CSV or Parquet file, or of a table."""
    from . import tabular

    digest = None
    if path is not None:
        name = path.name.lower()
        if name.endswith((".xes", ".xes.gz")):
            from .xes import read_xes

            bar.start(path.stat().st_size, f"reading {path.name}")
            digest = identity.content_digest()   # hashed as it is parsed
            rows = read_xes(path, attributes, bar.update, digest)
            mapping = {"case": "trace concept:name", "activity": "concept:name",
                       "timestamp": "time:timestamp"}
            unit, where = "line", path.name
        elif name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            rows, mapping = tabular.prepare(tabular.read_csv(path), path.name, 2, case,
                                            activity, timestamp, attributes)
            unit, where = "line", path.name
        elif path.is_dir() or name.endswith((".parquet", ".pq")):
            rows, mapping = tabular.prepare(tabular.read_parquet(path), path.name, 1, case,
                                            activity, timestamp, attributes)
            unit, where = "row", path.name
        else:
            raise LogImportError(
                f"{path.name}: unknown kind of log; use .xes, .xes.gz, .csv, .parquet, "
                "a directory of Parquet files, or an OCEL 2.0 log (.jsonocel, .xmlocel, "
                ".sqlite)")
    else:
        table = _as_table(source)
        rows, mapping = tabular.prepare(table, "the table", 1, case, activity, timestamp,
                                        attributes)
        unit, where = "row", "the table"
    bar.stage("checking")
    if digest is not None:
        source_key = identity.digest_key(digest)
    else:
        source_key = "table" if path is None else identity.file_key(path)
    namespace = identity.import_namespace(source_key, stream_prefix, mapping, attributes)
    if path is not None and not path.is_dir():
        namespace = _earlier_namespace(store, path, stream_prefix, mapping, attributes,
                                       namespace)
    return _checked(rows, mapping, unit, where, stream_prefix, namespace,
                    by_content=path is None)


def _write(store: EventStore, batch: pa.Table, summary: ImportSummary,
           where: str) -> ImportSummary:
    """Append what of ``batch`` the store does not hold yet, in one transaction."""
    batch = drop_stored(store, batch, where)
    before = store.head()
    try:
        store.append_batch(batch)
    except ConcurrencyError as exc:
        raise LogImportError(
            f"{where}: stream {exc.stream_id!r} already holds some of its events, "
            "but not as its first ones in the same order; was another version of "
            "this log imported? nothing was imported") from None
    return replace(summary, written=store.head() - before)


def _earlier_namespace(store: EventStore, path: Path, prefix: str, mapping: dict[str, str],
                       attributes: Collection[str] | None, namespace: uuid.UUID) -> uuid.UUID:
    """The namespace a gzipped file was imported under by eventlab 0.1 (which knew it by
    its compressed bytes), when the store holds that import; else ``namespace``."""
    old_key = identity.compressed_key(path)
    if old_key is None:
        return namespace
    old = identity.import_namespace(old_key, prefix, mapping, attributes)
    return old if store.locate([uuid.uuid5(old, "0")]) else namespace


def _as_table(source: Any) -> pa.Table:
    import pandas as pd

    from .tabular import from_frame

    if isinstance(source, pd.DataFrame):
        return from_frame(source)
    if isinstance(source, pa.Table):
        return source
    raise LogImportError(
        f"cannot import a {type(source).__name__}: pass a path or a pandas DataFrame")


def _checked(rows: pa.Table, mapping: dict[str, str], unit: str, where: str,
             prefix: str, namespace: uuid.UUID,
             by_content: bool) -> tuple[pa.Table, ImportSummary]:
    """Check every row in one DuckDB scan, then sort into the batch to append.

    Each event gets its id here (see ``identity``): the row's own ``event_id``
    when it has one, else ``uuid5(namespace, row number)``, or for a table
    (``by_content``) ``uuid5(namespace, its content and row number)``.
    """
    if rows.num_rows == 0:
        raise LogImportError(f"{where} holds no events; nothing was imported")
    has_ids = "event_id" in rows.column_names
    rows = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.register("_rows", rows)
        id_check = ("when event_id is not null and try_cast(event_id as uuid) is null "
                    "then 'event_id'" if has_ids else "")
        bad = con.execute(f"""
            select line, problem, value from (
                select line, case when problem = 'event_id' then event_id
                                  else "timestamp"::varchar end as value, problem from (
                    select line, "timestamp", {'event_id' if has_ids else 'null'} as event_id,
                    case
                        when "case" is null or "case" = '' then 'case'
                        when activity is null or activity = '' then 'activity'
                        when "timestamp" is null then 'timestamp'
                        when try_cast("timestamp" as timestamptz) is null then 'bad timestamp'
                        when not isfinite("timestamp"::timestamptz)
                            or "timestamp"::timestamptz < '0001-01-01 00:00:00+00'::timestamptz
                            or "timestamp"::timestamptz >= '10000-01-01 00:00:00+00'::timestamptz
                            then 'time out of range'
                        {id_check}
                        end as problem
                    from _rows))
            where problem is not null order by line limit 1""").fetchall()
        if not bad and has_ids:
            bad = con.execute("""
                select line, 'same event_id', event_id from (
                    select line, event_id, count(*) over (
                        partition by event_id::uuid order by line
                        rows between unbounded preceding and current row) as seen
                    from _rows where event_id is not null)
                where seen > 1 order by line limit 1""").fetchall()
        if bad:
            line, problem, value = bad[0]
            if problem == "bad timestamp":
                detail = (f"column {mapping['timestamp']!r}: cannot read {value!r} "
                          "as a timestamp")
            elif problem == "time out of range":
                detail = (f"column {mapping['timestamp']!r}: {value!r} is outside years "
                          "1-9999 (UTC), which no reader can give back")
            elif problem == "event_id":
                detail = f"column 'event_id': {value!r} is not a UUID"
            elif problem == "same event_id":
                detail = f"column 'event_id': {value!r} is the id of an earlier row too"
            else:
                detail = f"column {mapping[problem]!r} is empty (the {problem})"
            raise LogImportError(f"{where}, {unit} {line}: {detail}; nothing was imported")
        batch = con.sql(_batch_query(has_ids, bool(prefix), by_content),
                        params=[prefix, namespace.bytes]).to_arrow_table()
        counts = con.execute(
            'select count(distinct "case"), count(*), count(distinct activity) from _rows'
        ).fetchall()[0]
    finally:
        con.close()
    summary = ImportSummary(int(counts[0]), int(counts[1]), int(counts[2]), written=0)
    return batch, summary


def _batch_query(has_ids: bool, prefixed: bool, by_content: bool) -> str:
    """The query sorting checked rows into the batch to append, ids included.

    Parameters: the stream prefix, then the namespace's 16 bytes.
    """
    if by_content:
        name = ("concat_ws(chr(31), \"case\", activity, \"timestamp\"::varchar, data, "
                "coalesce(metadata, ''), __row::varchar)")
    else:
        name = "__row::varchar"
    derived = identity.sha1_sql("$2::blob", name)
    if has_ids:
        kept = "lower(event_id::uuid::varchar)"
        if prefixed:   # a copy under new stream ids must not share the original's ids
            copied = identity.sha1_sql("$2::blob", f"'id:' || {kept}")
            digest = f"case when event_id is null then {derived} else {copied} end"
            event_id = identity.uuid_from_sha1_sql("__h")
        else:
            digest = f"case when event_id is null then {derived} end"
            event_id = f"coalesce({kept}, {identity.uuid_from_sha1_sql('__h')})"
    else:
        digest, event_id = derived, identity.uuid_from_sha1_sql("__h")
    return f"""
        select $1 || "case" as stream_id, activity as type, data, metadata,
               "timestamp"::timestamptz as recorded_at, {event_id} as event_id
        from (select *, {digest} as __h from _rows)
        order by recorded_at, ord"""


class _Progress:
    """The import's progress bar (``eventlab.progress``), shown only when the import takes
    more than a second: bytes read while reading, then the stage; in a notebook it
    ends on "imported <name>: 100% ... done" (or where it stopped, on an error)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._began = time.monotonic()
        self._name = "the table"

    def start(self, total: int, text: str, delay: float | None = None) -> None:
        from ..progress import Progress

        self._name = text.removeprefix("reading ") if total else self._name
        self._bar = Progress(total or None, text, unit="B", unit_scale=True, delay=delay,
                             finished=f"imported {self._name}")

    @property
    def update(self) -> Callable[[int], None]:
        def advance(done: int) -> None:
            if self._bar is not None:
                self._bar.advance_to(done)

        return advance

    def stage(self, text: str) -> None:
        from ..progress import DELAY

        if self._bar is None and time.monotonic() - self._began > DELAY:
            self.start(0, text, delay=0.0)
        if self._bar is not None:
            self._bar.describe(f"{text} {self._name}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()         # done, unless an error is on its way out
