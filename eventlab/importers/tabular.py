"""Read CSV files, Parquet files or directories, and DataFrames as rows ready to import.

Three columns are mapped (case, activity, timestamp; found by common names when
not given). Columns named ``case:<name>`` (and a ``metadata`` JSON column) go to
the metadata; the other columns form the payload, with dotted names nested
(``address.city``). Unnamed columns (a saved pandas index) are dropped, and so
are the ``position`` and ``version`` columns of an eventlab frame: ``position``
then keeps the frame's order, and the frame's ``event_id`` column its events'
ids (see ``identity``). Empty cells are left out of payloads.

>>> pick(["case_id", "activity", "timestamp"], None, CASE, "case")
'case_id'
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..store.names import literal, quote
from .compressed import is_gzip
from .errors import LogImportError

CASE = ("case:concept:name", "case_id", "case id", "caseid", "case", "stream_id", "trace_id",
        "trace")
ACTIVITY = ("concept:name", "activity", "activity_name", "activity name", "event",
            "event_name", "type", "action", "task")
TIMESTAMP = ("time:timestamp", "timestamp", "time", "recorded_at", "datetime",
             "complete_timestamp", "end_time", "date")
_FRAME_ONLY = ("position", "version", "event_id")
_ENVELOPE = {"position", "stream_id", "version", "type", "recorded_at", "event_id", "metadata"}


def read_csv(path: str | os.PathLike[str]) -> pa.Table:
    """A CSV file (gzipped or not) as an Arrow table in file order; the delimiter and
    types are sniffed. Exactly the named file is read, whatever its name holds."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise LogImportError(f"{path.name} is empty: it holds no header and no rows")
    with open(path, "rb") as raw:
        packed = is_gzip(raw)
    opener = gzip.open if packed else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as handle:
            sample = handle.read(65536)
    except (OSError, EOFError, zlib.error) as exc:
        raise LogImportError(
            f"{path.name}: the compressed file is damaged or cut short ({exc}); nothing "
            "was imported") from None
    if not sample.strip():
        raise LogImportError(f"{path.name} is empty: it holds no header and no rows")
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader([sample.splitlines()[0]], delimiter=delimiter), [])
    con = duckdb.connect()
    try:
        query = ("select * from read_csv(?, header = true, delim = ?, all_varchar = {}, "
                 f"sample_size = 20480, compression = '{'gzip' if packed else 'none'}')")
        params = [_glob_literal(str(path)), delimiter]
        try:
            table = con.sql(query.format("false"), params=params).to_arrow_table()
        except duckdb.ConversionException:
            # a value past the sniffed sample does not fit its column's type: read
            # everything as text and let the checks name the row that is wrong
            table = con.sql(query.format("true"), params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise LogImportError(f"{path.name}: cannot read it as CSV: {exc}") from None
    finally:
        con.close()
    unnamed = [table.column_names[i] for i, name in enumerate(header)
               if not name.strip() and i < table.num_columns]
    return table.drop_columns(unnamed)


def _glob_literal(path: str) -> str:
    """``path`` as a DuckDB file pattern matching only itself: ``*``, ``?`` and ``[``
    become one-character classes.

    >>> _glob_literal("logs/may*[draft]?.csv")
    'logs/may[*][[]draft][?].csv'
    """
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    """A Parquet file, or a (Hive-partitioned) directory of them, as one Arrow table."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise LogImportError(f"{Path(path).name}: cannot read it as Parquet: {exc}") from None
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):   # partition columns come back as categories
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table


def from_frame(frame: pd.DataFrame) -> pa.Table:
    """A DataFrame (its index is ignored) as an Arrow table."""
    try:
        return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise LogImportError(f"the DataFrame cannot be read as a table: {exc}") from None


def pick(columns: Sequence[str], given: str | None, candidates: Sequence[str],
         role: str, where: str = "the log") -> str:
    """The column playing ``role``: the one given, or the first common name present."""
    if given is not None:
        if given not in columns:
            raise LogImportError(
                f"{where}: there is no column {given!r} for the {role} "
                f"(columns: {', '.join(columns)})")
        return given
    lowered = {c.lower(): c for c in reversed(columns)}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise LogImportError(
        f"{where}: no {role} column found; name it with {role}=... "
        f"(looked for {', '.join(candidates[:6])}; columns: {', '.join(columns)})")


def prepare(table: pa.Table, where: str, first_line: int, case: str | None,
            activity: str | None, timestamp: str | None,
            attributes: Collection[str] | None) -> tuple[pa.Table, dict[str, str]]:
    """Import rows (line, case, activity, timestamp, data, metadata, ord, and for an
    eventlab frame with ids event_id) from a table.

    ``first_line`` is the number the first row gets in messages (2 for a CSV
    file, whose header is line 1). Returns the rows and the mapped column names.
    """
    columns = table.column_names
    if not columns:
        raise LogImportError(f"{where} has no columns")
    is_frame = {"position", "stream_id", "type", "recorded_at", "metadata"} <= set(columns)
    if is_frame:   # a to_df frame (or its Parquet export): its envelope maps itself
        case, activity = case or "stream_id", activity or "type"
        timestamp = timestamp or "recorded_at"
    mapping = {"case": pick(columns, case, CASE, "case", where),
               "activity": pick(columns, activity, ACTIVITY, "activity", where),
               "timestamp": pick(columns, timestamp, TIMESTAMP, "timestamp", where)}
    used = set(mapping.values())
    payload, meta = [], []
    for name in columns:
        if name in used or (is_frame and name in _FRAME_ONLY) or name == "metadata":
            continue
        if name.startswith("case:"):
            meta.append(name)
        elif attributes is None or name in attributes:
            payload.append(name)
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    n = table.num_rows
    table = table.append_column("__line", pa.array(range(first_line, first_line + n),
                                                    pa.int64()))
    order = '"position"' if is_frame else "__line"
    meta_parts = []
    if meta:
        meta_parts.append(_json_object({name[5:]: name for name in meta}, types))
    if "metadata" in columns:
        meta_parts.insert(0, 'coalesce("metadata"::varchar, \'{}\')')
    if meta_parts:
        meta_sql = "json_merge_patch('{}', " + ", ".join(meta_parts) + ")::varchar"
        meta_sql = f"nullif({meta_sql}, '{{}}')"
    else:
        meta_sql = "null::varchar"
    data_sql = "json_merge_patch('{}', " + _json_object(_nest(payload), types) + ")::varchar"
    query = (f"select __line as line, {quote(mapping['case'])}::varchar as \"case\", "
             f"{quote(mapping['activity'])}::varchar as activity, "
             f"{quote(mapping['timestamp'])} as timestamp, {data_sql} as data, "
             f"{meta_sql} as metadata, {order}::bigint as ord"
             + (', "event_id"::varchar as event_id' if is_frame and "event_id" in columns
                else "")
             + " from _source")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.register("_source", table)
        _refuse_infinities(con, [*payload, *meta], types, where, first_line)
        rows = con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        raise LogImportError(f"{where}: cannot read the columns: {exc}") from None
    finally:
        con.close()
    return rows, mapping


def _refuse_infinities(con: duckdb.DuckDBPyConnection, names: Sequence[str],
                       types: dict[str, pa.DataType], where: str, first_line: int) -> None:
    """Name the first row with an infinite number: JSON cannot hold one. (NaN is how
    pandas spells "absent", so it leaves the field out instead.)"""
    floats = [n for n in names if pa.types.is_floating(types[n])]
    if not floats:
        return
    cases = " ".join(f"when isinf({quote(n)}) then {literal(n)}" for n in floats)
    bad = con.execute(f"select __line, found from (select __line, case {cases} end as found "
                      "from _source) where found is not null order by __line limit 1"
                      ).fetchall()
    if bad:
        line, column = bad[0]
        unit = "line" if first_line > 1 else "row"
        raise LogImportError(
            f"{where}, {unit} {line}: column {column!r} holds an infinite number, which JSON "
            "cannot hold; nothing was imported")


def _nest(names: Sequence[str]) -> dict[str, Any]:
    """Dotted column names as a tree of keys whose leaves are column names."""
    tree: dict[str, Any] = {}
    for name in names:
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "data" and parts[1] in _ENVELOPE:
            parts = [parts[1]]            # to_df's name for a field that shadows the envelope
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # "a" and "a.b" both present: keep "a.b" flat
                node, parts = tree, [name]
                break
            node = child
        node[parts[-1]] = name
    return tree


def _json_object(tree: dict[str, Any], types: dict[str, pa.DataType]) -> str:
    if not tree:
        return "'{}'::json"
    args = []
    for key, value in tree.items():
        args.append(literal(key))
        if isinstance(value, dict):   # a nested object whose fields are all empty is left out
            args.append(f"nullif(json_merge_patch('{{}}', {_json_object(value, types)})"
                        "::varchar, '{}')::json")
        else:
            args.append(_value(value, types[value]))
    return "json_object(" + ", ".join(args) + ")"


def _value(name: str, dtype: pa.DataType) -> str:
    column = quote(name)
    if pa.types.is_timestamp(dtype):
        return f"strftime({column}::timestamptz, '%Y-%m-%dT%H:%M:%S.%fZ')"
    if pa.types.is_floating(dtype):   # NaN is how pandas spells "absent"
        return f"case when isnan({column}) then null else {column} end"
    return column
