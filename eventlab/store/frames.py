"""The log as data: DataFrames and Arrow tables out of a store, and SQL over it.

Frames start from the store's own ``read_arrow`` (each store reads a range of
its log natively), and payloads are flattened in Arrow: the JSON ``data``
column becomes one column per leaf, named by its dotted path
(``address.city``). Payloads Arrow's JSON reader cannot hold as columns go
through DuckDB's ``json_transform`` instead. Fields a row does not have are
missing (NaN/NA). ``metadata`` stays one JSON text column. SQL runs in the
store's DuckDB database (``connection``): its own, or its local mirror.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("n-1", [el.NewEvent({"text": "hi", "tag": {"k": 1}}, type="Noted")])
>>> df = store.to_df()
>>> list(df.columns)
['position', 'stream_id', 'version', 'type', 'recorded_at', 'event_id', 'metadata', 'tag.k', 'text']
>>> int(df.loc[0, "tag.k"])
1
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from ..errors import InvalidInputError
from ..events import EventRegistry
from .arrow import UTC_MICROS
from .names import TABLE, literal, quote
from .rows import check_position, type_names
from .scratch import scratch_cursor


class CaseFilter(Protocol):
    """What narrows a log to some of its cases (``eventlab.Filter``): SQL over the
    ``events`` view selecting (at least) the ``stream_id`` of each case to keep."""

    def cases_sql(self) -> str: ...


class LogSource(Protocol):
    """What frames and exports need of a store (every ``EventStore`` has it): its type
    registry, its log as Arrow, and its log in a DuckDB database for SQL."""

    registry: EventRegistry

    def read_arrow(self, from_position: int = 1, to_position: int | None = None, *,
                   stream_id: str | None = None, types: Iterable[Any] | None = None,
                   ) -> pa.Table: ...

    def _duckdb(self) -> contextlib.AbstractContextManager[Any]: ...


#: The columns every frame starts with; payload fields follow in name order.
ENVELOPE = ("position", "stream_id", "version", "type", "recorded_at", "event_id", "metadata")
_INT_LEAVES = {"UBIGINT": "BIGINT", "UINTEGER": "BIGINT", "INTEGER": "BIGINT"}
_KEPT = "_eventlab_kept_cases"
_ENVELOPE_SQL = ("position, stream_id, version, type, recorded_at, "
                 "event_id::varchar as event_id, metadata")


# -- a DuckDB connection over any store ---------------------------------------------------

@contextlib.contextmanager
def connection(store: LogSource, filter: CaseFilter | None = None,
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor in which the store's log is the table ``eventlab_events``, times
    in UTC (each store says how, in its ``_duckdb``).

    With a ``filter``, the log seen through this cursor (the table, so the views
    ``events`` and ``events_flat`` too) holds only the cases the filter keeps.
    """
    with store._duckdb() as cursor:
        cursor.execute("set TimeZone = 'UTC'")
        if filter is None:
            yield cursor
            return
        _narrow(cursor, filter)
        try:
            yield cursor
        finally:
            cursor.execute(f"drop view if exists temp.main.{TABLE}; "
                           f"drop table if exists temp.main.{_KEPT}")


def _narrow(cursor: duckdb.DuckDBPyConnection, filter: CaseFilter) -> None:
    """Shadow the log's table, in this cursor only, by the rows of the kept cases.

    A temporary view is found before the database's own table, and the views
    over the table then read it; the kept cases are chosen from the whole log
    before the shadow exists.
    """
    if not callable(getattr(filter, "cases_sql", None)):
        raise InvalidInputError(
            f"filter= takes an eventlab.Filter, got {type(filter).__name__}")
    try:
        cursor.execute(f"create or replace temp table {_KEPT} as {filter.cases_sql()}")
    except duckdb.Error as exc:
        raise InvalidInputError(f"{filter!r} failed: {exc}") from None
    database = cursor.execute("select current_database()").fetchall()[0][0]
    cursor.execute(f"create or replace temp view {TABLE} as select * from "
                   f"{quote(database)}.main.{TABLE} "
                   f"where stream_id in (select stream_id from {_KEPT})")


@contextlib.contextmanager
def over_arrow(table: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor in which ``table`` (rows of ``read_arrow``) is ``eventlab_events``."""
    with scratch_cursor() as cursor:
        cursor.register(TABLE, table)
        yield cursor


def _between(log: pa.Table, since: datetime | str | None,
             until: datetime | str | None) -> pa.Table:
    """The rows of ``log`` recorded from ``since`` to ``until`` (both inclusive)."""
    times = log.column("recorded_at")
    keep = None
    for given, name, compare in ((since, "since", pc.greater_equal),
                                 (until, "until", pc.less_equal)):
        if given is not None:
            bound = pa.scalar(moment(given, name), UTC_MICROS)
            test = compare(times, bound)
            keep = test if keep is None else pc.and_(keep, test)
    return log if keep is None else log.filter(keep)


def moment(value: datetime | date | str, name: str) -> datetime:
    """A time given as a datetime, a date or text pandas can read (``"2024-05-01 12:00"``);
    without a zone, UTC."""
    if not isinstance(value, (datetime, date, str)):
        raise InvalidInputError(
            f"{name} must be a datetime, a date or a date/time text, got {type(value).__name__}")
    try:
        moment = pd.Timestamp(value).to_pydatetime()
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"{name}: cannot read {value!r} as a time ({exc})") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# -- flattening payloads ---------------------------------------------------------------

def _leaves(structure: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(structure, dict) and structure:
        for key, value in structure.items():
            yield from _leaves(value, (*path, key))
    elif path:
        yield path, structure


def _clean(structure: Any) -> Any:
    """The inferred structure with types pandas handles well (no unsigned ints)."""
    if isinstance(structure, dict):
        return {k: _clean(v) for k, v in structure.items()} if structure else "JSON"
    if isinstance(structure, list):
        return [_clean(structure[0])] if structure else ["JSON"]
    if structure == "NULL":
        return "VARCHAR"
    return _INT_LEAVES.get(structure, structure)


def column_names(paths: Sequence[tuple[str, ...]]) -> list[str]:
    """Names for payload columns, one per leaf path, in the given order.

    A name is the dotted path (an empty key reads ``_``), prefixed with ``data.``
    where it would shadow an envelope column. SQL engines and Parquet readers
    compare column names without case, so a name already taken in another case
    gets ``_2``, ``_3``, ... after it.

    >>> column_names([("",), ("A",), ("a",), ("type",), ("who", "name")])
    ['_', 'A', 'a_2', 'data.type', 'who.name']
    """
    taken = {name.lower() for name in ENVELOPE}
    names = []
    for path in paths:
        name = ".".join(key or "_" for key in path)
        lowered = name.lower()
        if lowered in ENVELOPE or lowered == "data" or lowered.startswith("data."):
            name = "data." + name           # never shadow an envelope column
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate.lower())
        names.append(candidate)
    return names


def _sorted_leaves(structure: Any) -> list[tuple[tuple[str, ...], Any]]:
    return sorted(_leaves(structure), key=lambda item: ".".join(item[0]))


def _awkward_paths(paths: Sequence[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The paths DuckDB's ``json_transform`` cannot name: those with an empty key, or
    a key that another key of the same object matches without case."""
    keys: dict[tuple[str, ...], list[str]] = {}
    for path in paths:
        for depth, key in enumerate(path):
            found = keys.setdefault(path[:depth], [])
            if key not in found:
                found.append(key)
    lowered = {parent: [k.lower() for k in found] for parent, found in keys.items()}
    return {path for path in paths if any(
        not key or lowered[path[:depth]].count(key.lower()) > 1
        for depth, key in enumerate(path))}


def flat_select(con: duckdb.DuckDBPyConnection) -> str:
    """SQL selecting the envelope plus one column per payload leaf from the log's table.

    It has no ORDER BY: a scan returns rows in the order they were stored, which
    is position order; ``to_arrow`` checks that and sorts only when it is not.
    """
    found = con.execute(f"select json_group_structure(data::json) from {TABLE}").fetchall()
    text = found[0][0] if found else None
    structure = _clean(json.loads(text)) if text else {}
    if not isinstance(structure, dict) or not structure or structure == "JSON":
        return f"select {_ENVELOPE_SQL} from {TABLE}"
    leaves = _sorted_leaves(structure)
    awkward = _awkward_paths([path for path, _ in leaves])
    plain: dict[str, Any] = {}
    columns = []
    for (path, kind), name in zip(leaves, column_names([p for p, _ in leaves]), strict=True):
        if path in awkward:   # read from its own JSON pointer instead
            pointer = "/" + "/".join(k.replace("~", "~0").replace("/", "~1") for k in path)
            columns.append(f"json_transform(data -> {literal(pointer)}, "
                           f"{literal(json.dumps(kind))}) as {quote(name)}")
            continue
        node = plain
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = kind
        columns.append("p." + ".".join(quote(k) for k in path) + " as " + quote(name))
    shape = literal(json.dumps(plain or {"_": "JSON"}))
    return (f"select {_ENVELOPE_SQL}, {', '.join(columns)} from (select *, "
            f"json_transform(data, {shape}) as p from {TABLE})")


def _flatten_in_arrow(log: pa.Table) -> pa.Table | None:
    """Envelope plus payload columns, the payloads parsed once by Arrow's JSON reader.

    One pass over the JSON instead of DuckDB's two (infer a structure, then
    extract it). Returns None when Arrow cannot hold the payloads as columns
    (a field that is an object in one event and text in another, say); the
    DuckDB path handles those.
    """
    table = log.select(list(ENVELOPE))
    data = log.column("data").combine_chunks()
    if len(data) == 0:
        return table
    # Stored payloads are compact JSON objects (no raw newlines), so joining the
    # column with newlines in C gives the line-delimited input Arrow parses in parallel.
    rows = pa.LargeListArray.from_arrays(pa.array([0, len(data)], pa.int64()),
                                         data.cast(pa.large_string()))
    joined = pc.binary_join(rows, pa.scalar("\n", pa.large_string()))
    try:
        parsed = pa_json.read_json(pa.BufferReader(joined[0].as_buffer()))
    except pa.ArrowException:
        return None
    leaf_fields = list(_leaves_of(parsed.schema))  # in the order flatten() lays them out
    if parsed.num_rows != table.num_rows or any(
            pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
            or pa.types.is_null(f.type) for _, f in leaf_fields):
        return None  # text Arrow took for times, or columns with no value: DuckDB's way
    paths = [path for path, _ in leaf_fields]
    while any(pa.types.is_struct(f.type) for f in parsed.schema):
        parsed = parsed.flatten()
    leaves = sorted(zip(paths, parsed.columns, strict=True), key=lambda item: ".".join(item[0]))
    for name, (_, column) in zip(column_names([p for p, _ in leaves]), leaves, strict=True):
        table = table.append_column(name, column)
    return table


def _leaves_of(schema: pa.Schema) -> Iterator[tuple[tuple[str, ...], pa.Field]]:
    """Each leaf field with its key path, depth first: the column order of a full
    ``flatten()``."""
    stack = [((f.name,), f) for f in reversed(schema)]
    while stack:
        path, field = stack.pop()
        if pa.types.is_struct(field.type):
            stack.extend(((*path, child.name), child) for child in reversed(list(field.type)))
        else:
            yield path, field


def _types_mapper(dtype: pa.DataType) -> Any:
    if pa.types.is_integer(dtype):
        return pd.Int64Dtype()
    if pa.types.is_boolean(dtype):
        return pd.BooleanDtype()
    return None


# -- the store API (EventStore.to_df & co. delegate here) ------------------------------------

def to_arrow(store: LogSource, stream_id: str | None = None, types: Iterable[Any] | None = None,
             from_position: int | None = None, to_position: int | None = None,
             since: datetime | str | None = None, until: datetime | str | None = None,
             filter: CaseFilter | None = None) -> pa.Table:
    """The log (or a slice of it) as an Arrow table: envelope plus flattened payload;
    with a ``filter``, only the events of the cases it keeps."""
    names = type_names(store.registry, types)
    if from_position is not None:
        check_position("from_position", from_position)
    log = store.read_arrow(from_position or 1, to_position, stream_id=stream_id, types=names)
    log = _between(log, since, until)
    if filter is not None:
        log = only_cases(log, store, filter)
    table = _flatten_in_arrow(log)
    if table is None:
        with over_arrow(log) as con:
            table = con.sql(flat_select(con)).to_arrow_table()
    positions = table.column("position").to_numpy()
    if len(positions) > 1 and not bool((positions[1:] > positions[:-1]).all()):
        table = table.sort_by("position")
    index = table.schema.get_field_index("recorded_at")
    return table.set_column(index, "recorded_at", table.column(index).cast(UTC_MICROS))


def only_cases(log: pa.Table, store: LogSource, filter: CaseFilter) -> pa.Table:
    """The rows of ``log`` (``read_arrow``'s, from ``store``) of the cases ``filter`` keeps."""
    with connection(store, filter) as con:
        kept = con.sql(f"select stream_id from {_KEPT}").to_arrow_table().column(0)
    return log.filter(pc.is_in(log.column("stream_id"), value_set=kept.combine_chunks()))


def to_df(store: LogSource, stream_id: str | None = None, types: Iterable[Any] | None = None,
          from_position: int | None = None, to_position: int | None = None,
          since: datetime | str | None = None, until: datetime | str | None = None,
          filter: CaseFilter | None = None) -> pd.DataFrame:
    """One row per event: ``position, stream_id, version, type, recorded_at`` (UTC),
    ``event_id`` (text), ``metadata`` (JSON text), then one column per payload field.

    Integer and boolean payload fields use pandas' nullable dtypes, so a field an
    event lacks is ``<NA>`` without turning the other values into floats.
    """
    table = to_arrow(store, stream_id, types, from_position, to_position, since, until, filter)
    frame = table.to_pandas(types_mapper=_types_mapper, self_destruct=True, split_blocks=True)
    del table
    return frame.astype({"position": "int64", "version": "int64"})


def sql(store: LogSource, query: str, params: Sequence[Any] | dict[str, Any] | None = None,
        filter: CaseFilter | None = None) -> pd.DataFrame:
    """Run SQL over the view ``events`` (``data`` and ``metadata`` as JSON), or over
    ``events_flat`` (the ``to_df`` columns: one per payload field) when named; with a
    ``filter``, both hold only the cases it keeps."""
    if not isinstance(query, str):
        raise InvalidInputError(f"the query must be SQL text, got {type(query).__name__}")
    with connection(store, filter) as con:
        if "events_flat" in query.lower():
            con.execute("create or replace temp view events_flat as " + flat_select(con))
        try:
            relation = con.sql(query, params=params)
        except duckdb.Error as exc:
            raise InvalidInputError(f"the query failed: {exc}") from None
        if relation is None:           # a statement that returns nothing
            return pd.DataFrame()
        return relation.to_arrow_table().to_pandas(types_mapper=_types_mapper)
