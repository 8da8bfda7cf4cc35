"""Incremental Parquet exports: only what is new, one schema in every file, folders by
UTC date, the same safety as full exports; read back by Dask, and by PySpark with
``--spark`` (``./run test-spark``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import eventlab as el
from eventlab.store.export import MANIFEST, SCHEMA

ROOT = Path(__file__).resolve().parents[1]
RECEIPT_XES = ROOT / "data" / "receipt" / "receipt.xes.gz"
START = datetime(2012, 3, 1, 9, 30, tzinfo=UTC)
_COPIED = ["stream_id", "type", "data", "metadata", "event_id", "recorded_at",
           "schema_version", "version"]


def at(day: int, hour: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hour)


def new(type_name: str, data: dict[str, Any], day: int, hour: int = 0) -> el.NewEvent:
    return el.NewEvent(data, type=type_name, recorded_at=at(day, hour))


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files a reader sees (names starting with a dot are skipped)."""
    return sorted(p for p in folder.rglob("*.parquet")
                  if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its inode and modification time: a file written
    again (even with the same bytes) gets new ones."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def exported_rows(folder: Path) -> list[tuple]:
    """The rows of every file, checking each file's schema is exactly ``SCHEMA``, with
    the payload and metadata parsed and the date taken from the file's folder."""
    rows = []
    for path in parquet_files(folder):
        table = pq.read_table(path)
        assert table.schema.equals(SCHEMA), f"{path}: {table.schema}"
        folder_name = path.parent.name
        assert folder_name.startswith("date="), path
        first, last = (int(n) for n in path.stem.split("-")[1:])
        positions = table.column("position").to_pylist()
        assert (min(positions), max(positions)) == (first, last), path
        for row in table.to_pylist():
            rows.append((row["position"], row["stream_id"], row["version"], row["type"],
                         row["recorded_at"], row["event_id"], json.loads(row["data"]),
                         json.loads(row["metadata"]), folder_name[len("date="):]))
    return sorted(rows)


def log_rows(store: el.EventStore) -> list[tuple]:
    """The same rows from the store: the envelope from ``to_arrow``, payloads and
    metadata as stored (``read_arrow``; a registered type would decode to its class),
    the date from ``recorded_at``."""
    envelope = store.to_arrow().select(
        ["position", "stream_id", "version", "type", "recorded_at", "event_id"]).to_pylist()
    stored = store.read_arrow().select(["position", "data", "metadata"]).to_pylist()
    assert [s["position"] for s in stored] == [r["position"] for r in envelope]
    return sorted((r["position"], r["stream_id"], r["version"], r["type"], r["recorded_at"],
                   r["event_id"], json.loads(s["data"]), json.loads(s["metadata"]),
                   r["recorded_at"].astimezone(UTC).date().isoformat())
                  for r, s in zip(envelope, stored, strict=True))


def assert_export_is_the_log(folder: Path, store: el.EventStore) -> None:
    rows = exported_rows(folder)
    positions = [r[0] for r in rows]
    assert len(positions) == len(set(positions)), "a row was exported twice"
    assert rows == log_rows(store)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["last_position"] == store.head()
    assert sorted(manifest["files"]) == [p.relative_to(folder).as_posix()
                                         for p in parquet_files(folder)]


# -- only what is new, one schema ------------------------------------------------------------

def test_three_increments_keep_one_schema_and_write_each_row_once(store, tmp_path):
    out = tmp_path / "log"
    store.append("a-1", [new("Opened", {"owner": "ada"}, 0), new("Deposited", {"amount": 5}, 1)],
                 metadata={"user": "ada"})
    first = store.export_parquet(out, incremental=True)
    assert isinstance(first, Path) and first == out
    assert (first.rows, first.last_position) == (2, 2)
    assert sorted(first.files) == [
        "date=2012-03-01/events-000000000001-000000000001.parquet",
        "date=2012-03-02/events-000000000002-000000000002.parquet"]
    assert_export_is_the_log(out, store)

    before, stamped = snapshot(out), stamps(out)
    again = store.export_parquet(out, incremental=True)   # nothing new
    assert (again.rows, again.files, again.last_position) == (0, (), 2)
    assert snapshot(out) == before and stamps(out) == stamped   # not even the manifest

    # new streams, new payload fields (nested, lists), a date that already has a file
    store.append("b-1", [new("Opened", {"owner": "bo", "address": {"city": "Oslo"}}, 1, 2),
                         new("Tagged", {"tags": ["vip", "new"], "score": 0.5}, 2)])
    store.append("a-1", [new("Deposited", {"amount": 7, "note": "cash"}, 2, 1)])
    second = store.export_parquet(out, incremental=True)
    assert (second.rows, second.last_position) == (3, 5)
    assert "date=2012-03-02/events-000000000003-000000000003.parquet" in second.files
    assert all(snapshot(out)[name] == data for name, data in before.items()
               if name != MANIFEST), "an earlier file was rewritten"
    assert_export_is_the_log(out, store)

    # a field changes its JSON type, an empty payload, a third new stream
    store.append("c-1", [new("Deposited", {"amount": "seven"}, 3), new("Closed", {}, 4)])
    third = store.export_parquet(out, incremental=True)
    assert (third.rows, third.last_position) == (2, 7)
    assert_export_is_the_log(out, store)
    assert {pq.read_schema(p).remove_metadata() for p in parquet_files(out)} == {SCHEMA}
    assert len(parquet_files(out)) == 6
    # every file reads as one table without schema merging, the date as a column
    whole = pq.read_table(out)
    assert whole.num_rows == 7 and whole.column_names == [*SCHEMA.names, "date"]
    assert store.export_parquet(out, incremental=True).rows == 0


def test_first_increment_of_an_empty_log_claims_the_folder(store, tmp_path):
    out = store.export_parquet(tmp_path / "log", incremental=True)
    assert (out.rows, out.files) == (0, ())
    assert [p.name for p in out.iterdir()] == [MANIFEST]
    store.append("a", [new("T", {"n": 1}, 0)])
    assert store.export_parquet(out, incremental=True).rows == 1
    assert_export_is_the_log(out, store)


# -- reading the export with Dask and PySpark ---------------------------------------------

@pytest.fixture(scope="module")
def receipt() -> pa.Table:
    """The receipt log as imported by ``el.import_log``: its stored rows."""
    with el.connect() as source:
        el.import_log(source, RECEIPT_XES)
        return source.read_arrow()


def export_in_two_increments(store: el.EventStore, log: pa.Table, out: Path) -> None:
    """Append the first 60% of ``log`` (streams cut in the middle), export, append the
    rest, export again."""
    cut = int(log.num_rows * 0.6)
    store.append_batch(log.slice(0, cut).select(_COPIED))
    assert store.export_parquet(out, incremental=True).rows == cut
    store.append_batch(log.slice(cut).select(_COPIED))
    assert store.export_parquet(out, incremental=True).rows == log.num_rows - cut
    assert len({p.parent.name for p in parquet_files(out)}) > 100   # many date folders


def variants_of(part: Any) -> Any:
    """Each stream's types in version order, as one text (a pandas partition)."""
    return part.sort_values(["stream_id", "version"]).groupby("stream_id")["type"].agg(
        "\x1f".join)


# the embedded default and the server: the other stores write the same files (above)
@pytest.mark.parametrize("store", ["duckdb", "postgres"], indirect=True)
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
def test_dask_reads_the_increments_and_counts_the_variants(store, tmp_path, receipt):
    import dask.dataframe as dd

    out = tmp_path / "receipt"
    export_in_two_increments(store, receipt, out)
    frame = dd.read_parquet(str(out), columns=["stream_id", "version", "type"])
    assert len(frame) == receipt.num_rows
    # each stream's events in one partition (a few: the export has a file per date)
    by_stream = frame.shuffle("stream_id", npartitions=4)
    sequences = by_stream.map_partitions(variants_of, meta=("type", "object"))
    expected = len(el.analytics.variants(store))
    assert expected > 1
    assert sequences.nunique().compute() == expected


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
def test_pyspark_reads_the_increments_and_counts_the_variants(tmp_path, receipt, monkeypatch):
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    store = el.connect()
    out = tmp_path / "receipt"
    export_in_two_increments(store, receipt, out)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (SparkSession.builder.master("local[2]").appName("eventlab-export-test")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.showConsoleProgress", "false")
             # list the date folders in the driver, not in a job of one task per folder
             .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
             .getOrCreate())
    try:
        frame = spark.read.parquet(str(out))
        types = dict(frame.dtypes)
        assert (types["position"], types["recorded_at"], types["data"], types["date"]) == (
            "bigint", "timestamp", "string", "date")
        assert frame.count() == receipt.num_rows
        sequences = (frame.groupBy("stream_id")
                     .agg(F.sort_array(F.collect_list(F.struct("version", "type")))
                          .alias("events"))
                     .select(F.col("events.type").alias("variant")))
        counted = sequences.distinct().count()
    finally:
        spark.stop()
    assert counted == len(el.analytics.variants(store)) > 1
    store.close()


# -- safety ---------------------------------------------------------------------------------

def test_foreign_files_and_full_exports_are_refused_untouched(store, tmp_path):
    store.append("a", [new("T", {"n": 1}, 0)])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(el.InvalidInputError, match=r"not written by an eventlab export"):
            store.export_parquet(notes, incremental=True, overwrite=overwrite)
    assert snapshot(notes) == {"mine.txt": b"mine"}

    full = store.export_parquet(tmp_path / "full")
    before = snapshot(full)
    with pytest.raises(el.InvalidInputError, match="holds a full eventlab export"):
        store.export_parquet(full, incremental=True)
    assert snapshot(full) == before

    out = store.export_parquet(tmp_path / "log", incremental=True)
    store.append("a", [new("T", {"n": 2}, 1)])
    (out / "date=2012-03-01" / "extra.parquet").write_bytes(b"someone else's")
    before = snapshot(out)
    with pytest.raises(el.InvalidInputError, match=r"date=2012-03-01/extra\.parquet"):
        store.export_parquet(out, incremental=True)
    assert snapshot(out) == before

    with pytest.raises(el.InvalidInputError, match="partitioned by the events' UTC date"):
        store.export_parquet(tmp_path / "other", incremental=True, partition_by="stream_id")
    assert not (tmp_path / "other").exists()
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    with pytest.raises(el.InvalidInputError, match="is a file"):
        store.export_parquet(target, incremental=True)


def test_a_deleted_stream_is_detected_and_a_rewrite_starts_over(store, tmp_path):
    store.append("a", [new("T", {"n": 1}, 0), new("T", {"n": 2}, 1)])
    store.append("b", [new("T", {"n": 3}, 1)])
    out = store.export_parquet(tmp_path / "log", incremental=True)
    # deleting a stream whose events were never exported changes nothing exported
    store.append("c", [new("T", {"n": 4}, 2)])
    store.delete_stream("c")
    store.append("d", [new("T", {"n": 5}, 2)])
    assert store.export_parquet(out, incremental=True).rows == 1
    assert_export_is_the_log(out, store)

    store.delete_stream("a")   # two exported events gone
    store.append("e", [new("T", {"n": 6}, 3)])
    before = snapshot(out)
    with pytest.raises(el.InvalidInputError, match=r"changed behind.*2 of the 4 events"
                                                   r".*overwrite=True"):
        store.export_parquet(out, incremental=True)
    assert snapshot(out) == before

    rewritten = store.export_parquet(out, incremental=True, overwrite=True)
    assert rewritten.rows == 3
    assert_export_is_the_log(out, store)
    store.append("f", [new("T", {"n": 7}, 4)])
    assert store.export_parquet(out, incremental=True).rows == 1
    assert_export_is_the_log(out, store)


def test_another_log_in_the_folder_is_detected(tmp_path):
    one, other = el.InMemoryEventStore(), el.InMemoryEventStore()
    for store in (one, other):
        store.append("a", [new("T", {"n": 1}, 0)])
    out = one.export_parquet(tmp_path / "log", incremental=True)
    with pytest.raises(el.InvalidInputError, match="not the ones it holds"):
        other.export_parquet(out, incremental=True)


def test_a_failure_mid_way_leaves_the_earlier_export_and_manifest(store, tmp_path):
    store.append("a", [new("T", {"n": 1}, 0)])
    out = store.export_parquet(tmp_path / "log", incremental=True)
    store.append("b", [new("T", {"n": 2}, 5), new("T", {"n": 3}, 6)])
    before = snapshot(out)
    last = store.head()
    # a real failure moving the second new file in: a folder stands at its name
    blocker = out / f"date=2012-03-07/events-{last:012d}-{last:012d}.parquet"
    blocker.mkdir(parents=True)
    with pytest.raises(OSError):
        store.export_parquet(out, incremental=True)
    assert snapshot(out) == before   # the first new file was taken back out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "date=2012-03-01",
                                                     "date=2012-03-07"]
    assert not (out / "date=2012-03-06").exists()
    blocker.rmdir()
    assert store.export_parquet(out, incremental=True).rows == 2
    assert_export_is_the_log(out, store)


_KILLED = textwrap.dedent("""
    import os, sys
    import eventlab as el
    real, moves = os.replace, []
    def replace(source, destination):
        real(source, destination)
        moves.append(destination)
        if str(destination).endswith(".parquet"):
            os._exit(3)   # the process dies after moving one new file in
    os.replace = replace
    with el.connect(sys.argv[1]) as store:
        store.export_parquet(sys.argv[2], incremental=True)
""")


def test_an_export_killed_half_way_is_finished_by_the_next(tmp_path):
    db, out = tmp_path / "log.duckdb", tmp_path / "log"
    with el.connect(db) as store:
        store.append("a", [new("T", {"n": 1}, 0)])
        store.export_parquet(out, incremental=True)
        store.append("b", [new("T", {"n": 2}, 1), new("T", {"n": 3}, 2)])
    died = subprocess.run([sys.executable, "-c", _KILLED, str(db), str(out)],
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert died.returncode == 3
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["last_position"] == 1 and len(manifest["pending"]) == 2
    assert len(parquet_files(out)) == 2   # one old file, one of the killed increment
    with el.connect(db) as store:
        # the killed increment's file on 2012-03-02 now gets another name (positions 2-4)
        store.append("c", [new("T", {"n": 4}, 1)])
        assert store.export_parquet(out, incremental=True).rows == 3
        assert_export_is_the_log(out, store)
    assert "pending" not in json.loads((out / MANIFEST).read_text())


def test_a_full_export_may_replace_an_incremental_one(store, tmp_path):
    store.append("a", [new("T", {"n": 1}, 0)])
    out = store.export_parquet(tmp_path / "log", incremental=True)
    store.export_parquet(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "type=T"]
    with pytest.raises(el.InvalidInputError, match="holds a full eventlab export"):
        store.export_parquet(out, incremental=True)
