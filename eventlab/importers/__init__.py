"""Import real event logs (XES, CSV, Parquet, DataFrames) into a store, all or nothing.

Each case becomes a stream (``stream_prefix + case``), each activity an event
type, and the timestamp the event's ``recorded_at`` (UTC). Events are appended
in time order (ties keep the file's order), so within a case they follow the
timestamps. Every row is checked before anything is written; a bad one raises
``LogImportError`` naming the line and column. Line numbers count as a person
reads the file: in a CSV the header is line 1, so the first row is line 2; in
XES the line of the ``<event>`` tag; in a DataFrame or Parquet table "row N"
counts rows from 1.

>>> import eventlab as el
>>> store = el.connect()
>>> el.import_log(store, "data/running-example/running-example.xes")  # doctest: +SKIP
ImportSummary(cases=6, events=42, activities=8)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from .errors import LogImportError

if TYPE_CHECKING:
    from ..store.base import EventStore

__all__ = ["ImportSummary", "LogImportError", "import_log"]


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: how many cases (streams), events and activities (types)."""

    cases: int
    events: int
    activities: int


def import_log(store: EventStore, source: Any, case: str | None = None,
               activity: str | None = None, timestamp: str | None = None,
               attributes: Collection[str] | None = None,
               stream_prefix: str = "") -> ImportSummary:
    """Import a log into ``store``: a path (``.xes``, ``.xes.gz``, ``.csv``, ``.parquet``
    or a directory of Parquet files) or a pandas DataFrame / Arrow table.

    ``case``, ``activity`` and ``timestamp`` name the columns of a table (found
    by common names such as ``case:concept:name``/``case_id``, ``concept:name``/
    ``activity``, ``time:timestamp``/``timestamp`` otherwise). ``attributes``
    limits which other columns (or XES event attributes) go into the payload.

    >>> import pandas as pd, eventlab as el
    >>> log = pd.DataFrame({"case_id": ["c1", "c1"], "activity": ["open", "close"],
    ...                     "timestamp": ["2024-01-01 09:00", "2024-01-01 10:00"]})
    >>> el.import_log(el.InMemoryEventStore(), log)
    ImportSummary(cases=1, events=2, activities=2)
    """
    from . import tabular

    bar = _Progress()
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise LogImportError(f"{path} does not exist")
            name = path.name.lower()
            if name.endswith((".xes", ".xes.gz")):
                from .xes import read_xes

                bar.start(path.stat().st_size, f"reading {path.name}")
                rows = read_xes(path, attributes, bar.update)
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
                    f"{path.name}: unknown kind of log; use .xes, .xes.gz, .csv, .parquet "
                    "or a directory of Parquet files")
        else:
            table = _as_table(source)
            rows, mapping = tabular.prepare(table, "the table", 1, case, activity, timestamp,
                                            attributes)
            unit, where = "row", "the table"
        bar.stage("checking")
        batch, summary = _checked(rows, mapping, unit, where, stream_prefix)
        bar.stage("writing")
        store.append_batch(batch)
        return summary
    finally:
        bar.close()


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
             prefix: str) -> tuple[pa.Table, ImportSummary]:
    """Check every row in one DuckDB scan, then sort into the batch to append."""
    if rows.num_rows == 0:
        raise LogImportError(f"{where} holds no events; nothing was imported")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.register("_rows", rows)
        bad = con.execute("""
            select line, problem, value from (
                select line, "timestamp"::varchar as value, case
                    when "case" is null or "case" = '' then 'case'
                    when activity is null or activity = '' then 'activity'
                    when "timestamp" is null then 'timestamp'
                    when try_cast("timestamp" as timestamptz) is null then 'bad timestamp'
                    end as problem
                from _rows)
            where problem is not null order by line limit 1""").fetchall()
        if bad:
            line, problem, value = bad[0]
            if problem == "bad timestamp":
                detail = (f"column {mapping['timestamp']!r}: cannot read {value!r} "
                          "as a timestamp")
            else:
                detail = f"column {mapping[problem]!r} is empty (the {problem})"
            raise LogImportError(f"{where}, {unit} {line}: {detail}; nothing was imported")
        batch = con.sql("""
            select ? || "case" as stream_id, activity as type, data, metadata,
                   "timestamp"::timestamptz as recorded_at
            from _rows order by recorded_at, ord""", params=[prefix]).to_arrow_table()
        counts = con.execute(
            'select count(distinct "case"), count(*), count(distinct activity) from _rows'
        ).fetchall()[0]
    finally:
        con.close()
    return batch, ImportSummary(int(counts[0]), int(counts[1]), int(counts[2]))


class _Progress:
    """A tqdm bar that shows itself only when the import takes more than a second."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._began = time.monotonic()

    def start(self, total: int, text: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=text, unit="B", unit_scale=True, delay=1.0,
                         leave=False)

    @property
    def update(self) -> Callable[[int], None]:
        def advance(done: int) -> None:
            if self._bar is not None:
                self._bar.update(done - self._bar.n)

        return advance

    def stage(self, text: str) -> None:
        if self._bar is None and time.monotonic() - self._began > 1.0:
            self.start(0, text)
        if self._bar is not None:
            self._bar.set_description_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
