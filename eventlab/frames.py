"""The log as data: DataFrames and Arrow tables out of a store, batches of rows into one.

Reading goes through DuckDB for both stores (the in-memory store is loaded into
a temporary in-memory DuckDB store first), and payloads are flattened there:
``json_transform`` turns the JSON ``data`` column into a struct whose leaves
become columns named by their dotted path (``address.city``). Fields a row does
not have are missing (NaN/NA). ``metadata`` stays one JSON text column.

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
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .events import dumps
from .store.base import InvalidInputError, Pending, _type_names, check_stream_id

if TYPE_CHECKING:
    from .store.base import EventStore

#: The columns every frame starts with; payload fields follow in name order.
ENVELOPE = ("position", "stream_id", "version", "type", "recorded_at", "event_id", "metadata")
_TABLE = "eventlab_events"
_UTC = pa.timestamp("us", tz="UTC")
_PY_UTC = pa.timestamp("us", tz="+00:00")   # converts to datetime.timezone.utc
_INT_LEAVES = {"UBIGINT": "BIGINT", "UINTEGER": "BIGINT", "INTEGER": "BIGINT"}


# -- a DuckDB connection over any store ---------------------------------------------------

@contextlib.contextmanager
def connection(store: EventStore) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor in which the store's log is the table ``eventlab_events``.

    A DuckDB store answers from its own database; any other store is copied into
    a temporary in-memory DuckDB store for the duration of the block.
    """
    from .store.duckdb import DuckDBEventStore

    if isinstance(store, DuckDBEventStore):
        cursor = store._cursor()
        temp = None
    else:
        temp = DuckDBEventStore()
        temp.copy_rows(store._read_all_rows(1, None, None))
        cursor = temp._cursor()
    cursor.execute("set TimeZone = 'UTC'")
    try:
        yield cursor
    finally:
        cursor.close()
        if temp is not None:
            temp.close()


def _filters(store: EventStore, stream_id: str | None, types: Iterable[Any] | None,
             from_position: int | None, to_position: int | None,
             since: datetime | str | None, until: datetime | str | None,
             ) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if stream_id is not None:
        clauses.append("stream_id = ?")
        params.append(check_stream_id(stream_id))
    names = _type_names(store.registry, types)
    if names is not None:
        clauses.append("type in (select unnest(?::varchar[]))")
        params.append(names)
    if from_position is not None:
        clauses.append("position >= ?")
        params.append(int(from_position))
    if to_position is not None:
        clauses.append("position <= ?")
        params.append(int(to_position))
    if since is not None:
        clauses.append("recorded_at >= ?::timestamptz")
        params.append(_moment(since))
    if until is not None:
        clauses.append("recorded_at <= ?::timestamptz")
        params.append(_moment(until))
    return (" where " + " and ".join(clauses) if clauses else ""), params


def _moment(value: datetime | str) -> datetime:
    moment = pd.Timestamp(value).to_pydatetime()
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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def flat_select(con: duckdb.DuckDBPyConnection, where: str = "",
                params: Sequence[Any] = ()) -> str:
    """SQL selecting the envelope plus one column per payload leaf from ``eventlab_events``.

    It has no ORDER BY: a scan returns rows in the order they were stored, which
    is position order; ``to_arrow`` checks that and sorts only when it is not.
    """
    found = con.execute(f"select json_group_structure(data::json) from {_TABLE}{where}",
                        list(params)).fetchall()
    text = found[0][0] if found else None
    structure = _clean(json.loads(text)) if text else {}
    envelope = ("position, stream_id, version, type, recorded_at, "
                "event_id::varchar as event_id, metadata")
    if not isinstance(structure, dict) or not structure or structure == "JSON":
        return f"select {envelope} from {_TABLE}{where}"
    columns = []
    for path, _ in sorted(_leaves(structure), key=lambda item: ".".join(item[0])):
        name = ".".join(path)
        if name in ENVELOPE or name == "data" or name.startswith("data."):
            name = "data." + name         # never shadow an envelope column
        columns.append("p." + ".".join(_quote(k) for k in path) + " as " + _quote(name))
    shape = json.dumps(structure).replace("'", "''")
    return (f"select {envelope}, {', '.join(columns)} from (select *, "
            f"json_transform(data, '{shape}') as p from {_TABLE}{where})")


def _flatten_in_arrow(con: duckdb.DuckDBPyConnection, where: str,
                      params: Sequence[Any]) -> pa.Table | None:
    """Envelope plus payload columns, the payloads parsed once by Arrow's JSON reader.

    One pass over the JSON instead of DuckDB's two (infer a structure, then
    extract it). Returns None when Arrow cannot hold the payloads as columns
    (a field that is an object in one event and text in another, say); the
    DuckDB path handles those.
    """
    envelope = ("position, stream_id, version, type, recorded_at, "
                "event_id::varchar as event_id, metadata")
    table = con.sql(f"select {envelope}, data from {_TABLE}{where}",
                    params=list(params)).to_arrow_table()
    data = table.column("data").combine_chunks()
    table = table.drop_columns(["data"])
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
    if parsed.num_rows != table.num_rows or any(
            pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
            or pa.types.is_null(f.type) for f in _leaf_fields(parsed.schema)):
        return None  # text Arrow took for times, or columns with no value: DuckDB's way
    while any(pa.types.is_struct(f.type) for f in parsed.schema):
        parsed = parsed.flatten()
    for name in sorted(parsed.column_names):
        column_name = name
        if name in ENVELOPE or name == "data" or name.startswith("data."):
            column_name = "data." + name     # never shadow an envelope column
        table = table.append_column(column_name, parsed.column(name))
    return table


def _leaf_fields(schema: pa.Schema) -> Iterator[pa.Field]:
    stack = list(schema)
    while stack:
        field = stack.pop()
        if pa.types.is_struct(field.type):
            stack.extend(field.type)
        else:
            yield field


def _types_mapper(dtype: pa.DataType) -> Any:
    if pa.types.is_integer(dtype):
        return pd.Int64Dtype()
    if pa.types.is_boolean(dtype):
        return pd.BooleanDtype()
    return None


# -- the store API (EventStore.to_df & co. delegate here) ------------------------------------

def to_arrow(store: EventStore, stream_id: str | None = None, types: Iterable[Any] | None = None,
             from_position: int | None = None, to_position: int | None = None,
             since: datetime | str | None = None, until: datetime | str | None = None,
             ) -> pa.Table:
    """The log (or a slice of it) as an Arrow table: envelope plus flattened payload."""
    where, params = _filters(store, stream_id, types, from_position, to_position, since, until)
    with connection(store) as con:
        table = _flatten_in_arrow(con, where, params)
        if table is None:
            table = con.sql(flat_select(con, where, params), params=params).to_arrow_table()
    positions = table.column("position").to_numpy()
    if len(positions) > 1 and not bool((positions[1:] > positions[:-1]).all()):
        table = table.sort_by("position")
    index = table.schema.get_field_index("recorded_at")
    return table.set_column(index, "recorded_at", table.column(index).cast(_UTC))


def to_df(store: EventStore, stream_id: str | None = None, types: Iterable[Any] | None = None,
          from_position: int | None = None, to_position: int | None = None,
          since: datetime | str | None = None, until: datetime | str | None = None,
          ) -> pd.DataFrame:
    """One row per event: ``position, stream_id, version, type, recorded_at`` (UTC),
    ``event_id`` (text), ``metadata`` (JSON text), then one column per payload field.

    Integer and boolean payload fields use pandas' nullable dtypes, so a field an
    event lacks is ``<NA>`` without turning the other values into floats.
    """
    table = to_arrow(store, stream_id, types, from_position, to_position, since, until)
    frame = table.to_pandas(types_mapper=_types_mapper, self_destruct=True, split_blocks=True)
    del table
    return frame.astype({"position": "int64", "version": "int64"})


def sql(store: EventStore, query: str, params: Sequence[Any] | dict[str, Any] | None = None,
        ) -> pd.DataFrame:
    """Run SQL over the view ``events`` (``data`` and ``metadata`` as JSON), or over
    ``events_flat`` (the ``to_df`` columns: one per payload field) when named."""
    with connection(store) as con:
        if "events_flat" in query.lower():
            con.execute("create or replace temp view events_flat as " + flat_select(con))
        try:
            relation = con.sql(query, params=params)
        except duckdb.Error as exc:
            raise InvalidInputError(f"the query failed: {exc}") from None
        if relation is None:           # a statement that returns nothing
            return pd.DataFrame()
        return relation.to_arrow_table().to_pandas(types_mapper=_types_mapper)


def export_parquet(store: EventStore, path: str | os.PathLike[str],
                   partition_by: Sequence[str] | str | None = ("type",),
                   overwrite: bool = False) -> Path:
    """Write the ``to_df`` columns as Hive-partitioned Parquet (``type=Opened/...``).

    DuckDB, pandas, Polars, Spark and Dask read the directory as one table; so
    does ``el.import_log``. An existing non-empty directory needs ``overwrite=True``.
    """
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise InvalidInputError(
                f"{target} is not empty; pass overwrite=True to replace its contents")
        shutil.rmtree(target)
    parts = [partition_by] if isinstance(partition_by, str) else list(partition_by or ())
    unknown = [p for p in parts if p not in ENVELOPE]
    if unknown:
        raise InvalidInputError(f"partition_by must name envelope columns, got {unknown}")
    with connection(store) as con:
        query = flat_select(con)
        options = "format parquet"
        if parts:
            options += ", partition_by (" + ", ".join(_quote(p) for p in parts) + ")"
            options += ", overwrite_or_ignore true"
            target.mkdir(parents=True, exist_ok=True)
            destination = str(target)
        else:
            target.mkdir(parents=True, exist_ok=True)
            destination = str(target / "events.parquet")
        quoted = destination.replace("'", "''")
        con.execute(f"copy ({query} order by position) to '{quoted}' ({options})")
    return target


# -- batches of rows in ----------------------------------------------------------------------

def batch_table(rows: Any) -> pa.Table:
    """Check and normalise rows to append: an Arrow table with ``stream_id, type, data,
    metadata, event_id, recorded_at`` (text, text, JSON text, JSON text, text or null,
    UTC timestamp or null). Raises ``InvalidInputError`` naming the first bad row."""
    table = _as_arrow(rows)
    names = set(table.column_names)
    missing = [c for c in ("stream_id", "type", "data") if c not in names]
    if missing:
        raise InvalidInputError(
            f"a batch needs the columns stream_id, type and data; missing {missing}")
    n = table.num_rows
    columns = {
        "stream_id": _text(table, "stream_id"),
        "type": _text(table, "type"),
        "data": _json_column(table, "data"),
        "metadata": (_json_column(table, "metadata") if "metadata" in names
                     else pa.nulls(n, pa.string())),
        "event_id": (_text(table, "event_id") if "event_id" in names
                     else pa.nulls(n, pa.string())),
        "recorded_at": (_timestamps(table, "recorded_at") if "recorded_at" in names
                        else pa.nulls(n, _UTC)),
    }
    out = pa.table(columns)
    _check(out)
    return out


def batch_groups(rows: Any) -> list[tuple[str, list[Pending]]]:
    """Rows to append as runs of one stream: ``[(stream_id, [Pending, ...]), ...]``.

    Consecutive rows of a stream form one run, so writing the runs in turn keeps
    the rows' order both globally and within each stream.
    """
    table = batch_table(rows)
    table = table.set_column(5, "recorded_at", table.column(5).cast(_PY_UTC))
    now = datetime.now(UTC)
    groups: list[tuple[str, list[Pending]]] = []
    for stream_id, type_, data, meta, event_id, at in zip(
            *(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True):
        if not groups or groups[-1][0] != stream_id:
            groups.append((stream_id, []))
        groups[-1][1].append(Pending(type_, data, meta or "{}", event_id, at or now, 1))
    return groups


def _as_arrow(rows: Any) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if isinstance(rows, pd.DataFrame):
        frame = rows.reset_index(drop=True)
        for name in ("data", "metadata"):
            if name in frame.columns and frame[name].dtype == object:
                frame = frame.assign(**{name: _encode_objects(frame[name], name)})
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidInputError(f"the batch cannot be read as a table: {exc}") from None
    raise InvalidInputError(
        f"a batch is a pandas DataFrame or a pyarrow Table, got {type(rows).__name__}")


def _encode_objects(values: pd.Series, name: str) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values, start=1):
        if value is None or (isinstance(value, float) and value != value):
            out.append(None)
        elif isinstance(value, (str, bytes)):
            out.append(value.decode() if isinstance(value, bytes) else value)
        elif isinstance(value, dict):
            out.append(dumps(value, f"row {row}: {name}"))
        else:
            raise InvalidInputError(
                f"row {row}: {name} must be a dict or JSON text, got {type(value).__name__}")
    return out


def _text(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            or pa.types.is_null(column.type)):
        raise InvalidInputError(f"column {name!r} must hold text, got {column.type}")
    return column.cast(pa.string())


def _json_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = table.column(name)
    if pa.types.is_struct(column.type) or pa.types.is_map(column.type):
        con = duckdb.connect()
        try:
            con.register("_values", pa.table({"v": column}))
            column = con.sql("select to_json(v)::varchar as v from _values").to_arrow_table()[0]
        finally:
            con.close()
    return _text(pa.table({name: column}), name)


def _timestamps(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        return column.cast(_UTC)
    if pa.types.is_null(column.type):
        return column.cast(_UTC)
    raise InvalidInputError(f"column {name!r} must hold timestamps, got {column.type}")


def _check(table: pa.Table) -> None:
    """Find the first bad row with one DuckDB scan; name it (1-based) and say why."""
    con = duckdb.connect()
    try:
        con.register("_batch", table.append_column(
            "n", pa.array(range(1, table.num_rows + 1), pa.int64())))
        bad = con.execute("""
            select n, stream_id, case
                when stream_id is null or stream_id = '' then 'stream_id is empty'
                when type is null or type = '' then 'type is empty'
                when data is null then 'data is empty'
                when not json_valid(data) then 'data is not valid JSON'
                when json_type(data::json) <> 'OBJECT' then 'data is not a JSON object'
                when metadata is not null and not json_valid(metadata)
                    then 'metadata is not valid JSON'
                when metadata is not null and json_type(metadata::json) <> 'OBJECT'
                    then 'metadata is not a JSON object'
                when event_id is not null and try_cast(event_id as uuid) is null
                    then 'event_id is not a UUID'
                end as problem
            from _batch
            where problem is not null order by n limit 1""").fetchall()
    finally:
        con.close()
    if bad:
        row, stream_id, problem = bad[0]
        where = f" (stream {stream_id!r})" if stream_id else ""
        raise InvalidInputError(f"row {row}{where}: {problem}")
