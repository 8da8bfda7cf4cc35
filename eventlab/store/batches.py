"""Batches of rows to append (``append_batch``, imports): checked, then normalised.

A batch is a pandas DataFrame or an Arrow table with the columns ``stream_id``,
``type`` and ``data`` (JSON text or dicts), and optionally ``metadata``,
``event_id``, ``recorded_at``, ``schema_version`` (of the payload, default 1)
and ``version`` (the version each row must land at: a copy keeps them). Every
row is checked before anything is written; the first bad one is named by its
1-based number and its stream. A value no read path could give back is
refused: JSON our reader cannot parse (DuckDB's own parser takes ``NaN``,
``Infinity`` and trailing commas), a time outside years 1-9999, an event id
given twice.

>>> import pandas as pd
>>> batch_table(pd.DataFrame({"stream_id": ["a"], "type": ["T"], "data": ['{"x": 1}']})
...             ).column("data").to_pylist()
['{"x": 1}']
>>> batch_table(pd.DataFrame({"stream_id": ["a"], "type": ["T"], "data": ['{"x": NaN}']})
... )  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlab.errors.InvalidInputError: row 1 (stream 'a'): data is not valid JSON: ...
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidInputError
from ..events import encode_json
from .arrow import UTC_MICROS, UTC_MICROS_PY
from .rows import Pending
from .scratch import scratch_cursor

_CANONICAL = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def batch_table(rows: Any) -> pa.Table:
    """Check and normalise rows to append: an Arrow table with ``stream_id, type, data,
    metadata, event_id, recorded_at, schema_version`` (text, text, JSON text, JSON text,
    canonical UUID text or null, UTC timestamp or null, int32), and ``version`` (int64)
    when the rows give one. Raises ``InvalidInputError`` naming the first bad row."""
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
                        else pa.nulls(n, UTC_MICROS)),
        "schema_version": (_counts(table, "schema_version", pa.int32())
                           if "schema_version" in names
                           else pa.repeat(pa.scalar(1, pa.int32()), n)),
    }
    if "version" in names:
        columns["version"] = _counts(table, "version", pa.int64())
    out = pa.table(columns)
    event_ids = _check(out)
    _check_json(out)
    return out.set_column(4, "event_id", event_ids)


def batch_groups(rows: Any) -> list[tuple[str, list[Pending]]]:
    """Rows to append as runs of one stream: ``[(stream_id, [Pending, ...]), ...]``.

    Consecutive rows of a stream form one run, so writing the runs in turn keeps
    the rows' order both globally and within each stream.
    """
    return groups_of(batch_table(rows))


def groups_of(table: pa.Table) -> list[tuple[str, list[Pending]]]:
    """``batch_groups`` of a table ``batch_table`` already checked."""
    table = table.set_column(5, "recorded_at", table.column(5).cast(UTC_MICROS_PY))
    now = datetime.now(UTC)
    groups: list[tuple[str, list[Pending]]] = []
    for stream_id, type_, data, meta, event_id, at, schema in zip(
            *(table.column(i).to_pylist() for i in range(7)), strict=True):
        if not groups or groups[-1][0] != stream_id:
            groups.append((stream_id, []))
        groups[-1][1].append(Pending(type_, data, meta or "{}", event_id, at or now, schema))
    return groups


def _as_arrow(rows: Any) -> pa.Table:
    import pandas as pd

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


def _encode_objects(values: Any, name: str) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values, start=1):
        if value is None or (isinstance(value, float) and value != value):
            out.append(None)
        elif isinstance(value, (str, bytes)):
            out.append(value.decode() if isinstance(value, bytes) else value)
        elif isinstance(value, dict):
            out.append(encode_json(value, f"row {row}: {name}"))
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
        with scratch_cursor() as con:
            con.register("_values", pa.table({"v": column}))
            column = con.sql("select to_json(v)::varchar as v from _values").to_arrow_table()[0]
    return _text(pa.table({name: column}), name)


def _timestamps(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = table.column(name)
    if pa.types.is_null(column.type):
        return column.cast(UTC_MICROS)
    if not pa.types.is_timestamp(column.type):
        raise InvalidInputError(f"column {name!r} must hold timestamps, got {column.type}")
    if column.type.tz is None:
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    try:
        return column.cast(UTC_MICROS)
    except pa.ArrowInvalid as exc:
        raise InvalidInputError(
            f"column {name!r} holds a time outside what microseconds can hold: {exc}") from None


def _counts(table: pa.Table, name: str, kind: pa.DataType) -> pa.ChunkedArray:
    """A column of whole numbers from 1 up, with none missing (versions, schema versions)."""
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        raise InvalidInputError(f"column {name!r} must hold whole numbers, got {column.type}")
    bad = pc.or_kleene(pc.is_null(column), pc.less(column, 1))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py() + 1
        raise InvalidInputError(f"row {row}{_in_stream(table.column('stream_id')[row - 1].as_py())}"
                                f": {name} must be a whole number from 1 up, "
                                f"got {column[row - 1].as_py()}")
    try:
        return column.cast(kind)
    except pa.ArrowInvalid as exc:
        raise InvalidInputError(f"column {name!r} holds a number too large: {exc}") from None


def _check(table: pa.Table) -> pa.ChunkedArray:
    """Find the first bad row with one DuckDB scan; name it (1-based) and say why.

    Returns the event ids as canonical UUID text (``None`` where a row has none).
    """
    with scratch_cursor() as con:
        con.register("_batch", table.append_column(
            "n", pa.array(range(1, table.num_rows + 1), pa.int64())))
        bad = con.execute("""
            select n, stream_id, case
                when stream_id is null or stream_id = '' then 'stream_id is empty'
                when contains(stream_id, chr(0)) then 'stream_id holds a NUL character'
                when type is null or type = '' then 'type is empty'
                when contains(type, chr(0)) then 'type holds a NUL character'
                when data is null then 'data is empty'
                when not json_valid(data) then 'data is not valid JSON'
                when json_type(data::json) <> 'OBJECT' then 'data is not a JSON object'
                when metadata is not null and not json_valid(metadata)
                    then 'metadata is not valid JSON'
                when metadata is not null and json_type(metadata::json) <> 'OBJECT'
                    then 'metadata is not a JSON object'
                when event_id is not null and try_cast(event_id as uuid) is null
                    then 'event_id is not a UUID'
                when recorded_at is not null and (not isfinite(recorded_at)
                        or recorded_at < '0001-01-01 00:00:00+00'::timestamptz
                        or recorded_at >= '10000-01-01 00:00:00+00'::timestamptz)
                    then 'recorded_at ' || recorded_at::varchar || ' is outside years 1-9999'
                end as problem
            from _batch
            where problem is not null order by n limit 1""").fetchall()
        ids = table.column("event_id")
        if not bad and ids.null_count < len(ids):
            if not pc.all(pc.match_substring_regex(ids.drop_null(), _CANONICAL)).as_py():
                ids = con.sql("select try_cast(event_id as uuid)::varchar from _batch "
                              "order by n").to_arrow_table().column(0)
            if pc.count_distinct(ids).as_py() < len(ids) - ids.null_count:
                con.register("_ids", pa.table({"id": ids, "n": pa.array(
                    range(1, table.num_rows + 1), pa.int64())}))
                bad = con.execute("""
                    select n, stream_id, 'event_id ' || id || ' is the event_id of row '
                                         || first || ' too; an event id names one event'
                    from (select i.n, b.stream_id, i.id,
                                 min(i.n) over (partition by i.id) as first
                          from _ids i join _batch b using (n) where i.id is not null)
                    where n > first order by n limit 1""").fetchall()
    if bad:
        row, stream_id, problem = bad[0]
        raise InvalidInputError(f"row {row}{_in_stream(stream_id)}: {problem}")
    return ids


def _check_json(table: pa.Table) -> None:
    """Parse every payload and metadata text as the store's reader will, so nothing is
    stored that a read could not give back. Each distinct text is parsed once."""
    decode = msgspec.json.decode
    for name in ("data", "metadata"):
        column = table.column(name)
        for text in pc.unique(column).to_pylist():
            if text is None:
                continue
            try:
                decode(text)
            except msgspec.DecodeError as exc:
                row = pc.index(column, text).as_py() + 1
                stream_id = table.column("stream_id")[row - 1].as_py()
                raise InvalidInputError(
                    f"row {row}{_in_stream(stream_id)}: {name} is not valid JSON: {exc} "
                    "(JSON has no NaN or Infinity, no numbers past 1e308, no trailing "
                    "commas)") from None


def _in_stream(stream_id: str | None) -> str:
    return f" (stream {stream_id!r})" if stream_id else ""
