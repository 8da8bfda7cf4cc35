"""Parquet exports that never remove a file they did not write.

An export leaves a manifest, ``.eventlab-export.json``, listing the files it
wrote. Readers skip it (Spark, Dask, pandas, pyarrow and DuckDB's
``**/*.parquet`` ignore names starting with a dot). ``overwrite=True`` replaces
an earlier export, and only one: a folder holding any file its manifest does not
list (the database, your notes) is refused, whole and untouched. New files are
written aside first and moved in before the manifest is replaced, so a failed
export leaves the earlier one (files and manifest) as it was.

Two layouts:

* a full export (the default) writes the ``to_df`` columns, one per payload
  field, partitioned by ``type`` (``type=Deposited/...``);
* ``incremental=True`` writes only the events after the last export into that
  folder, for engines that read many files as one table (Spark, Dask, Trino).
  Every file has the same columns with the same Arrow types (``SCHEMA``): the
  envelope, then ``data``, the payload as JSON text, whatever fields new events
  bring. Folders are Hive partitions by the event's UTC date
  (``date=2012-03-01/``); each file is named by the positions it holds
  (``events-000000000001-000000000042.parquet``), so increments never
  overwrite one another. The manifest records the last exported position.

>>> import eventlab as el, tempfile, pathlib
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [el.NewEvent({"amount": 5}, type="Deposited")])
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "log"
>>> sorted(p.name for p in store.export_parquet(folder).iterdir())
['.eventlab-export.json', 'type=Deposited']
>>> _ = store.export_parquet(folder, overwrite=True)   # replaces its own earlier export
>>> daily = folder.parent / "daily"
>>> store.export_parquet(daily, incremental=True).rows   # the first call: everything
1
>>> _ = store.append("a-1", [el.NewEvent({"amount": 2, "note": "new field"}, type="Deposited")])
>>> out = store.export_parquet(daily, incremental=True)  # then only what is new
>>> out.rows, out.last_position
(1, 2)
>>> store.export_parquet(daily, incremental=True).rows   # nothing new: no file written
0
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InvalidInputError
from .arrow import UTC_MICROS
from .frames import ENVELOPE, LogSource, connection, flat_select
from .names import TABLE, literal, quote

MANIFEST = ".eventlab-export.json"
_STAGING = ".eventlab-export-"
_WRITTEN_BY = "eventlab export_parquet"

#: The columns of every file of an incremental export, in order; the folders add
#: ``date`` (the event's UTC date, ``YYYY-MM-DD``) as a Hive partition column.
SCHEMA = pa.schema([
    ("position", pa.int64()), ("stream_id", pa.string()), ("version", pa.int64()),
    ("type", pa.string()), ("recorded_at", UTC_MICROS), ("event_id", pa.string()),
    ("metadata", pa.string()), ("data", pa.string()),
])
#: Bumped when ``SCHEMA`` or the layout changes: a folder of another format is refused.
INCREMENTAL_FORMAT = 1
_PARTITION = "date"
#: The manifest of an incremental export holding nothing yet.
_EMPTY_INCREMENTAL: dict[str, Any] = {
    "written_by": _WRITTEN_BY, "incremental": INCREMENTAL_FORMAT, "partition_by": [_PARTITION],
    "columns": {f.name: str(f.type) for f in SCHEMA},
    "last_position": 0, "last_event_id": None, "rows": 0, "files": []}


class ExportedFolder(type(Path())):  # type: ignore[misc]
    """The folder an export wrote to (a ``Path``), with what this call wrote:
    ``rows`` (events), ``files`` (paths relative to the folder) and, for incremental
    exports, ``last_position`` (the last position the folder now holds)."""

    rows: int
    files: tuple[str, ...]
    last_position: int | None

    def with_segments(self, *segments: Any) -> Path:
        """Paths derived from this one are plain paths."""
        return Path(*segments)


def export_parquet(store: LogSource, path: str | os.PathLike[str],
                   partition_by: Sequence[str] | str | None = ("type",),
                   overwrite: bool = False, incremental: bool = False) -> ExportedFolder:
    """Write the log as Hive-partitioned Parquet; return the folder (``.rows`` says how
    many events this call wrote).

    By default the ``to_df`` columns, partitioned by ``partition_by`` (``type=Opened/...``).
    DuckDB, pandas, Polars, Spark and Dask read the directory as one table; so
    does ``el.import_log``. A folder that is not empty needs ``overwrite=True``,
    and then must hold an earlier export and nothing else.

    ``incremental=True`` writes only the events after the ones the folder holds
    (everything into a new or empty folder), in the layout of ``SCHEMA``, one
    folder per UTC date; ``partition_by`` must then be left out (or be ``"date"``).
    It refuses a folder holding a full export or foreign files, and a log that
    lost events the folder already holds (a stream deleted since): a full
    rewrite, ``incremental=True, overwrite=True``, starts the folder over from
    the whole log, and later increments continue from it.
    """
    target = Path(path)
    parts = _partitions(partition_by, incremental)
    if incremental:
        return _export_increment(store, target, overwrite)
    earlier = _earlier_export(target, overwrite)
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f"{_STAGING}{uuid.uuid4().hex}"
    try:
        rows = _write(store, staging, parts)
        written = _files_in(staging)
        _commit(target, staging, written, earlier,
                {"written_by": _WRITTEN_BY, "partition_by": parts, "files": written},
                {"written_by": _WRITTEN_BY, "partition_by": parts, "files": []})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _result(target, rows, written)


def _partitions(partition_by: Any, incremental: bool) -> list[str]:
    if partition_by is not None and not isinstance(partition_by, (str, list, tuple)):
        raise InvalidInputError(
            f"partition_by must name envelope columns, got {partition_by!r:.60}")
    parts = [partition_by] if isinstance(partition_by, str) else list(partition_by or ())
    if incremental:
        if parts not in (["type"], [_PARTITION]):   # the default, or the one it uses
            raise InvalidInputError(
                f"incremental exports are partitioned by the events' UTC date "
                f"(date=YYYY-MM-DD/), so every increment reads as one table; "
                f"partition_by={partition_by!r:.60} cannot be combined with "
                "incremental=True (leave it out)")
        return [_PARTITION]
    unknown = [p for p in parts if p not in ENVELOPE]
    if unknown:
        raise InvalidInputError(f"partition_by must name envelope columns, got {unknown}")
    return parts


def _write(store: LogSource, folder: Path, parts: list[str]) -> int:
    with connection(store) as con:
        query = flat_select(con)
        options = "format parquet"
        if parts:
            options += ", partition_by (" + ", ".join(quote(p) for p in parts) + ")"
            destination = folder
        else:
            folder.mkdir(parents=True)
            destination = folder / "events.parquet"
        copied = con.execute(f"copy ({query} order by position) to "
                             f"{literal(str(destination))} ({options})").fetchall()
    return int(copied[0][0]) if copied else 0


# -- incremental exports -----------------------------------------------------------------

def _export_increment(store: LogSource, target: Path, overwrite: bool) -> ExportedFolder:
    if overwrite:
        earlier, manifest = _earlier_export(target, overwrite=True), None
    else:
        manifest = _incremental_manifest(target)
        # files an interrupted increment left: listed as pending, replaced now
        earlier = [name for name in _names((manifest or {}).get("pending"))
                   if (target / name).is_file()]
    after = int(manifest["last_position"]) if manifest else 0
    with connection(store) as con:
        con.execute("begin transaction").fetchall()   # one snapshot for the check and the rows
        try:
            head = _check_unchanged(con, target, manifest)
            table = _rows_after(con, after, head)
        finally:
            con.execute("rollback").fetchall()
    if manifest is not None and table.num_rows == 0 and not earlier:
        return _result(target, 0, [], after)   # nothing new: nothing written
    last = int(pc.max(table.column("position")).as_py()) if table.num_rows else after
    before = manifest or _EMPTY_INCREMENTAL
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f"{_STAGING}{uuid.uuid4().hex}"
    try:
        written = _write_days(table, staging)
        _commit(target, staging, written, earlier, {
            **_EMPTY_INCREMENTAL,
            "last_position": last,
            "last_event_id": (_event_id_at(table, last) if table.num_rows
                              else before["last_event_id"]),
            "rows": int(before["rows"]) + table.num_rows,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": sorted([*_names(before["files"]), *written])}, _EMPTY_INCREMENTAL)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _result(target, table.num_rows, written, last)


def _incremental_manifest(target: Path) -> dict[str, Any] | None:
    """The manifest of the incremental export in ``target``, or None for a new or empty
    folder; refuses a file, a full export, foreign files and other formats."""
    if target.exists() and not target.is_dir():
        raise InvalidInputError(
            f"{target} is a file, not a folder: export_parquet writes a folder of Parquet "
            "files; give it a new or empty folder")
    present = _files_in(target) if target.exists() else []
    present = [name for name in present if not name.startswith(_STAGING)]
    if not present:
        return None
    manifest = _read_manifest(target)
    if manifest is None:
        raise InvalidInputError(
            f"{target} holds files not written by an eventlab export ({_shown(present)}); "
            "an incremental export continues only its own: choose a new or empty folder")
    if not manifest.get("incremental"):
        raise InvalidInputError(
            f"{target} holds a full eventlab export (partitioned by "
            f"{', '.join(map(str, manifest.get('partition_by') or [])) or 'nothing'}), not an "
            "incremental one: choose a new or empty folder, or pass incremental=True, "
            "overwrite=True to replace it with an incremental export of the whole log")
    if (manifest.get("incremental") != INCREMENTAL_FORMAT
            or manifest.get("columns") != _EMPTY_INCREMENTAL["columns"]):
        raise InvalidInputError(
            f"{target} holds an incremental export of another format "
            f"({manifest.get('incremental')!r}, this eventlab writes {INCREMENTAL_FORMAT}); "
            "pass incremental=True, overwrite=True to write it again from the whole log")
    try:
        int(manifest["last_position"]), int(manifest["rows"]), manifest["last_event_id"]
        if not isinstance(manifest["files"], list):
            raise TypeError("files")
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError(
            f"{target}/{MANIFEST} is damaged (no last position, row count or file list); "
            "pass incremental=True, overwrite=True to write the export again") from None
    listed = {*_names(manifest["files"]), *_names(manifest.get("pending"))}
    foreign = [name for name in present if name not in listed and name != MANIFEST]
    if foreign:
        raise InvalidInputError(
            f"{target} holds files not written by an eventlab export ({_shown(foreign)}); "
            "an incremental export adds to its own files and nothing else: move them "
            "away or choose a new folder")
    return manifest


def _check_unchanged(con: Any, target: Path, manifest: dict[str, Any] | None) -> int:
    """The log's last position, after checking that it still holds every event the
    export holds: positions are never reused and never appear below the head later,
    so the events at or below the last exported position change only by deletes."""
    last = int(manifest["last_position"]) if manifest else 0
    (held, head, last_id), = con.execute(
        f"select count(*) filter (where position <= $last), coalesce(max(position), 0), "
        f"any_value(event_id::varchar) filter (where position = $last) from {TABLE}",
        {"last": last}).fetchall()
    if manifest is None:
        return int(head)
    exported = int(manifest["rows"])
    if held != exported or last_id != manifest.get("last_event_id"):
        lost = (f"{exported - held} of the {exported} events it holds (up to position "
                f"{last}) are no longer in the log" if held < exported else
                f"the log's events up to position {last} are not the ones it holds")
        raise InvalidInputError(
            f"the log changed behind the incremental export in {target}: {lost} (a "
            "stream was deleted since, or this is another log). An increment cannot "
            "express that: run a full export, export_parquet(folder, incremental=True, "
            "overwrite=True), to write the folder again from the whole log")
    return int(head)


def _rows_after(con: Any, after: int, head: int) -> pa.Table:
    """The events after ``after`` up to ``head`` in ``SCHEMA``, plus their UTC
    ``date``, ordered by date, then position."""
    columns = ", ".join(f"{name}::varchar as {name}" if name in ("event_id", "metadata",
                                                                  "data") else name
                        for name in SCHEMA.names)
    table = con.sql(
        f"select {columns}, (recorded_at at time zone 'UTC')::date as {_PARTITION} "
        f"from {TABLE} where position > $after and position <= $head "
        f"order by {_PARTITION}, position",
        params={"after": after, "head": head}).to_arrow_table()
    fields = [*SCHEMA, pa.field(_PARTITION, pa.date32())]
    return table.cast(pa.schema(fields))


def _write_days(table: pa.Table, staging: Path) -> list[str]:
    """One file per date (``date=YYYY-MM-DD/events-<first>-<last>.parquet``) in
    ``staging``; returns their relative names, sorted."""
    if table.num_rows == 0:
        staging.mkdir(parents=True)
        return []
    days = table.column(_PARTITION).combine_chunks().to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist()]
    ends = [*starts[1:], table.num_rows]
    rows = table.select(SCHEMA.names)
    written = []
    for start, end in zip(starts, ends, strict=True):
        part = rows.slice(start, end - start)
        positions = part.column("position")
        first, last = positions[0].as_py(), positions[-1].as_py()
        name = (f"{_PARTITION}={days[start].astype('datetime64[D]')}/"
                f"events-{first:012d}-{last:012d}.parquet")
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, staging / name)
        written.append(name)
    return sorted(written)


def _event_id_at(table: pa.Table, position: int) -> str:
    positions = table.column("position").to_numpy()
    index = int(np.flatnonzero(positions == position)[0])
    return str(table.column("event_id")[index].as_py())


# -- writing aside, then moving in ---------------------------------------------------------

def _commit(target: Path, staging: Path, written: list[str], earlier: list[str],
            manifest: dict[str, Any], empty: dict[str, Any]) -> None:
    """Move the files written in ``staging`` into ``target``, replacing the ``earlier``
    export's files, then write ``manifest``, last.

    Before anything moves, the manifest in place (or ``empty``, describing no
    files, in a new folder) lists the new files as ``pending``: an export killed
    half-way leaves files the next one knows as its own and removes. On a failure
    here every move is undone and the manifest restored, so the folder holds the
    earlier export and its manifest as they were."""
    path = target / MANIFEST
    previous = path.read_bytes() if path.is_file() else None
    intent = dict(_read_manifest(target) or empty)
    intent["pending"] = sorted({*_names(intent.get("pending")), *written})
    aside = target / f"{_STAGING}{uuid.uuid4().hex}-earlier"
    kept: list[str] = []       # earlier files moved aside
    placed: list[str] = []     # new files moved in
    made: list[Path] = []      # folders created for them
    try:
        _write_manifest(staging, target, intent)
        for name in earlier:
            _move(target / name, aside / name, [])
            kept.append(name)
        for name in written:
            _move(staging / name, target / name, made)
            placed.append(name)
        _write_manifest(staging, target, manifest)
    except BaseException:
        for name in reversed(placed):
            (target / name).unlink(missing_ok=True)
        for folder in reversed(made):
            _remove_empty(folder)
        for name in reversed(kept):
            _move(aside / name, target / name, [])
        shutil.rmtree(aside, ignore_errors=True)
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            (staging / MANIFEST).write_bytes(previous)
            os.replace(staging / MANIFEST, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    for name in earlier:
        _remove_empty_parents(target, target / name)


def _write_manifest(staging: Path, target: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest at once: written in ``staging``, then moved over the old."""
    staging.mkdir(parents=True, exist_ok=True)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(staging / MANIFEST, target / MANIFEST)


def _names(value: Any) -> list[str]:
    """File names listed in a manifest (``files``, ``pending``); nothing when damaged."""
    if not isinstance(value, list):
        return []
    return [str(name) for name in value]


def _move(source: Path, destination: Path, made: list[Path]) -> None:
    """``os.replace`` one file, creating the folders it needs (appended to ``made``)."""
    missing = []
    parent = destination.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir()
        made.append(folder)
    os.replace(source, destination)


def _remove_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _remove_empty_parents(target: Path, path: Path) -> None:
    """Remove the folders between ``path`` and ``target`` that a removal left empty."""
    parent = path.parent
    while parent != target and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _result(target: Path, rows: int, files: list[str],
            last_position: int | None = None) -> ExportedFolder:
    out = ExportedFolder(target)
    out.rows, out.files, out.last_position = rows, tuple(files), last_position
    return out


# -- what a folder holds -------------------------------------------------------------------

def _earlier_export(target: Path, overwrite: bool) -> list[str]:
    """The files of the export in ``target`` that a new one may replace (none when the
    folder is new or empty); refuses a file, or a folder holding anything else."""
    if target.exists() and not target.is_dir():
        raise InvalidInputError(
            f"{target} is a file, not a folder: export_parquet writes a folder of Parquet "
            "files; give it a new or empty folder")
    present = _files_in(target) if target.exists() else []
    if not present:
        return []
    if not overwrite:
        raise InvalidInputError(
            f"{target} is not empty; pass overwrite=True to replace an earlier export "
            "there, or choose a new folder")
    manifest = _read_manifest(target) or {}
    listed = {*_names(manifest.get("files")), *_names(manifest.get("pending"))}
    foreign = [name for name in present if name not in listed and name != MANIFEST
               and not name.startswith(_STAGING)]
    if foreign:
        raise InvalidInputError(
            f"{target} holds files not written by an eventlab export ({_shown(foreign)}); "
            "overwrite=True only replaces an earlier export and nothing else: choose a "
            "new or empty folder")
    return [name for name in present if name != MANIFEST]   # leftovers of failed ones too


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _files_in(folder: Path) -> list[str]:
    """Every file and link under ``folder`` (links are not followed), relative, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        links = [d for d in dirs if (base / d).is_symlink()]
        for name in [*files, *links]:
            found.append((base / name).relative_to(folder).as_posix())
    return sorted(found)


def _read_manifest(target: Path) -> dict[str, Any] | None:
    """The manifest an eventlab export left in ``target``, or None."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("written_by") != _WRITTEN_BY:
        return None
    return manifest
