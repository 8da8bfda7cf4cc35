"""Parquet exports that never remove a file they did not write.

An export writes the ``to_df`` columns as Hive-partitioned Parquet and leaves a
manifest, ``.eventlab-export.json``, listing the files it wrote. Readers skip
it (Spark, Dask, pandas, pyarrow and DuckDB's ``**/*.parquet`` ignore names
starting with a dot). ``overwrite=True`` replaces an earlier export, and only
one: a folder holding any file its manifest does not list (the database, your
notes) is refused, whole and untouched. The new export is written aside first,
so a failed one leaves the earlier export as it was.

>>> import eventlab as el, tempfile, pathlib
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [el.NewEvent({"amount": 5}, type="Deposited")])
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "log"
>>> sorted(p.name for p in store.export_parquet(folder).iterdir())
['.eventlab-export.json', 'type=Deposited']
>>> _ = store.export_parquet(folder, overwrite=True)   # replaces its own earlier export
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError
from .frames import ENVELOPE, LogSource, connection, flat_select
from .names import literal, quote

MANIFEST = ".eventlab-export.json"
_STAGING = ".eventlab-export-"


def export_parquet(store: LogSource, path: str | os.PathLike[str],
                   partition_by: Sequence[str] | str | None = ("type",),
                   overwrite: bool = False) -> Path:
    """Write the ``to_df`` columns as Hive-partitioned Parquet (``type=Opened/...``).

    DuckDB, pandas, Polars, Spark and Dask read the directory as one table; so
    does ``el.import_log``. A folder that is not empty needs ``overwrite=True``,
    and then must hold an earlier export and nothing else.
    """
    target = Path(path)
    if partition_by is not None and not isinstance(partition_by, (str, list, tuple)):
        raise InvalidInputError(
            f"partition_by must name envelope columns, got {partition_by!r:.60}")
    parts = [partition_by] if isinstance(partition_by, str) else list(partition_by or ())
    unknown = [p for p in parts if p not in ENVELOPE]
    if unknown:
        raise InvalidInputError(f"partition_by must name envelope columns, got {unknown}")
    earlier = _earlier_export(target, overwrite)
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f"{_STAGING}{uuid.uuid4().hex}"
    try:
        _write(store, staging, parts)
        written = sorted(p.relative_to(staging).as_posix()
                         for p in staging.rglob("*") if p.is_file())
        for name in earlier:
            _remove(target, name)
        for name in written:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, destination)
        manifest = {"written_by": "eventlab export_parquet", "partition_by": parts,
                    "files": written}
        (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write(store: LogSource, folder: Path, parts: list[str]) -> None:
    with connection(store) as con:
        query = flat_select(con)
        options = "format parquet"
        if parts:
            options += ", partition_by (" + ", ".join(quote(p) for p in parts) + ")"
            destination = folder
        else:
            folder.mkdir(parents=True)
            destination = folder / "events.parquet"
        con.execute(f"copy ({query} order by position) to {literal(str(destination))} "
                    f"({options})")


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
    listed = _manifest_files(target)
    foreign = [name for name in present if name not in listed and name != MANIFEST
               and not name.startswith(_STAGING)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more"
                                          if len(foreign) > 3 else "")
        raise InvalidInputError(
            f"{target} holds files not written by an eventlab export ({shown}); "
            "overwrite=True only replaces an earlier export and nothing else: choose a "
            "new or empty folder")
    return [name for name in present if name != MANIFEST]


def _files_in(folder: Path) -> list[str]:
    """Every file and link under ``folder`` (links are not followed), relative, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        links = [d for d in dirs if (base / d).is_symlink()]
        for name in [*files, *links]:
            found.append((base / name).relative_to(folder).as_posix())
    return sorted(found)


def _manifest_files(target: Path) -> set[str]:
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        return {str(name) for name in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _remove(target: Path, name: str) -> None:
    """Remove one file of an earlier export, and the folders it leaves empty."""
    path = target / name
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != target and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
