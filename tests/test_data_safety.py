"""Nothing a user types destroys data, and every bad input gets an eventlab error.

Each section is one way a careless or hostile input once lost data or ended in a
raw Python or DuckDB error; every test runs on every store where it applies.
"""

from __future__ import annotations

import gzip
import logging
import math
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import eventlab as el
from eventlab.cli import main as cli
from eventlab.importers import LogImportError

from conftest import held_by_another_process
from domain import Counted, Noted

DATA = Path(__file__).resolve().parents[1] / "data"
RUNNING_XES = DATA / "running-example" / "running-example.xes"
RUNNING_CSV = DATA / "running-example" / "running-example.csv"
WAIT = 30  # seconds: only a bound on a hang, never a speed assertion


@dataclass(frozen=True)
class Measured:
    value: float
    readings: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


el.register(Measured)


def untouched(store, head: int = 0) -> None:
    """Nothing was written, and the whole log still reads."""
    assert store.head() == head
    assert len(list(store.read_all())) == head


# -- 1. no user-given name resolves to one of eventlab's own tables or views -----------------

@pytest.mark.parametrize("name", ["Eventlab_Events", "EVENTLAB_EVENTS", "Events", "events",
                                  "EVENTS_FLAT", "eventlab_checkpoints", "Eventlab_Snapshots",
                                  "eventlab_META", "_eventlab_batch"])
def test_a_sql_projection_cannot_take_an_eventlab_name(db_path, name):
    store = el.connect(db_path)
    store.append("a", [Noted("kept")])
    with pytest.raises(el.InvalidInputError, match="eventlab's own"):
        el.SqlProjection(store, name, "select type, count(*) as n from events group by 1")
    store.close()
    with el.connect(db_path) as again:   # the file still opens and holds its log
        assert [e.data for e in again.read_all()] == [Noted("kept")]


def test_a_sql_projection_never_replaces_a_table_named_in_another_case(db_path):
    with el.connect(db_path) as store:
        store.append("a", [Noted("x")])
        store.connection.execute("create table Totals as select 42 as mine")
        projection = el.SqlProjection(store, "totals", "select count(*) as n from events")
        with pytest.raises(el.EventlabError, match="already exists"):
            projection.refresh()
        assert store.sql("select mine from Totals")["mine"].tolist() == [42]


def test_a_projector_cannot_take_a_sql_projections_checkpoint(store):
    class Count(el.Projection):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            return state + 1

    with pytest.raises(el.InvalidInputError, match="sql:"):
        el.Projector(store, Count(), name="sql:totals")


def test_a_data_file_is_never_taken_for_a_store(tmp_path, capsys):
    log = tmp_path / "log.csv"
    shutil.copy(RUNNING_CSV, log)
    before = log.read_bytes()
    with pytest.raises(el.InvalidInputError, match="not a DuckDB database"):
        el.connect(log)
    with pytest.raises(SystemExit) as exited:   # the import's target is the log itself
        cli(["import", str(log), "--db", str(log)])
    assert "not a DuckDB database" in str(exited.value.code)
    assert log.read_bytes() == before


def test_cli_errors_from_the_file_system_are_one_line(tmp_path):
    db = tmp_path / "a.duckdb"
    with el.connect(db) as store:
        store.append("a", [Noted("x")])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(SystemExit) as exited:
        cli(["export", str(blocker / "out"), "--db", str(db)])
    assert str(exited.value.code).startswith("error: ")


# -- 2. an export overwrites only what an earlier export wrote --------------------------------

def test_export_overwrite_refuses_a_folder_holding_other_files(tmp_path):
    db = tmp_path / "bank.duckdb"
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with el.connect(db) as store:
        store.append("a", [Noted("x")])
        with pytest.raises(el.InvalidInputError, match="not written by an eventlab export"):
            store.export_parquet(tmp_path, overwrite=True)
        assert notes.read_text() == "mine"
        assert store.head() == 1
    assert db.exists()
    with el.connect(db) as store:
        assert store.head() == 1


def test_export_overwrite_replaces_an_earlier_export_and_nothing_else(store, tmp_path):
    store.append("a", [Noted("x")])
    store.append("b", [Counted(1)])
    out = store.export_parquet(tmp_path / "log")
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"type=Noted", "type=Counted"}
    store.delete_stream("b")
    store.export_parquet(out, overwrite=True)
    # the old partition is gone: what is there is exactly the new export
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"type=Noted"}
    assert pd.read_parquet(out)["stream_id"].tolist() == ["a"]
    (out / "type=Noted" / "my-notes.txt").write_text("mine")
    with pytest.raises(el.InvalidInputError, match=r"my-notes\.txt"):
        store.export_parquet(out, overwrite=True)
    assert (out / "type=Noted" / "my-notes.txt").read_text() == "mine"
    kept = list(out.rglob("*.parquet"))
    assert len(kept) == 1 and pd.read_parquet(kept[0])["stream_id"].tolist() == ["a"]


def test_export_onto_a_file_is_refused(store, tmp_path):
    store.append("a", [Noted("x")])
    target = tmp_path / "precious.duckdb"
    target.write_bytes(b"not yours")
    for overwrite in (False, True):
        with pytest.raises(el.InvalidInputError, match="is a file"):
            store.export_parquet(target, overwrite=overwrite)
    assert target.read_bytes() == b"not yours"


def test_cli_export_dot_overwrite_keeps_the_folder(tmp_path, monkeypatch, capsys):
    db = tmp_path / "bank.duckdb"
    with el.connect(db) as store:
        store.append("a", [Noted("x")])
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        cli(["export", ".", "--db", str(db), "--overwrite"])
    assert "not written by an eventlab export" in str(caught.value.code)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.duckdb", "notes.txt"]


# -- 3. NaN and infinity are refused at append, naming the field ------------------------------

BAD_FLOATS = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", BAD_FLOATS)
@pytest.mark.parametrize("event, where", [
    (lambda x: Measured(x), "value"),
    (lambda x: Measured(1.0, readings=[1.0, x]), "readings[1]"),
    (lambda x: Measured(1.0, extra={"k": x}), "extra.k"),
    (lambda x: el.NewEvent({"a": {"b": [0, x]}}, type="Raw"), "a.b[1]"),
])
def test_non_finite_floats_are_refused_and_nothing_is_written(store, bad, event, where):
    store.append("s", [Noted("kept")])
    with pytest.raises(el.SerializationError) as caught:
        store.append("s", [Noted("fine"), event(bad)])
    message = str(caught.value)
    assert "event #2" in message and where in message and str(bad) in message
    untouched(store, 1)


@pytest.mark.parametrize("bad", BAD_FLOATS)
def test_non_finite_metadata_is_refused(store, bad):
    with pytest.raises(el.SerializationError, match=r"metadata.*'score'"):
        store.append("s", [Noted("a")], metadata={"score": bad})
    with pytest.raises(el.SerializationError, match=r"event #1.*metadata.*'x\[0\]'"):
        store.append("s", [el.NewEvent(Noted("a"), metadata={"x": [bad]})])
    untouched(store)


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}',
                                  '{"a": 1e999}', '{"a": 1,}'])
def test_a_batch_of_json_text_our_reader_cannot_read_is_refused(store, text):
    rows = pd.DataFrame({"stream_id": ["s", "s"], "type": ["T", "T"],
                         "data": ['{"a": 1}', text]})
    with pytest.raises(el.InvalidInputError, match=r"row 2 .*data is not valid JSON"):
        store.append_batch(rows)
    untouched(store)


def test_a_batch_of_dicts_with_nan_is_refused(store):
    rows = pd.DataFrame({"stream_id": ["s"], "type": ["T"], "data": [{"a": {"b": math.nan}}]})
    with pytest.raises(el.EventlabError, match=r"row 1.*a\.b"):
        store.append_batch(rows)
    untouched(store)


def test_an_infinite_value_in_a_csv_names_line_and_column(store, tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("case,activity,timestamp,cost\nc1,a,2024-01-01 10:00,1.5\n"
                    "c1,b,2024-01-01 11:00,inf\n")
    with pytest.raises(LogImportError, match=r"line 3.*'cost'.*infinit"):
        el.import_log(store, path)
    untouched(store)


def test_xes_float_attributes_nan_is_absent_and_infinity_is_refused(store, tmp_path):
    def log(value: str) -> str:
        return ('<?xml version="1.0"?>\n<log>\n<trace><string key="concept:name" value="c1"/>\n'
                '<event><string key="concept:name" value="a"/>\n'
                '<date key="time:timestamp" value="2024-01-01T10:00:00Z"/>\n'
                f'<float key="cost" value="{value}"/></event>\n</trace>\n</log>\n')

    (tmp_path / "nan.xes").write_text(log("NaN"))
    el.import_log(store, tmp_path / "nan.xes")
    assert [e.data for e in store.read_all()] == [{}]
    (tmp_path / "inf.xes").write_text(log("INF"))
    with pytest.raises(LogImportError, match=r"line 6.*'cost'.*infinite"):
        el.import_log(store, tmp_path / "inf.xes")
    untouched(store, 1)


# -- 4. every read path returns the time that was stored --------------------------------------

EDGE_TIMES = [datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
              datetime(1, 1, 1, tzinfo=UTC),
              datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
              datetime(2300, 6, 1, 12, 0, 0, 1, tzinfo=UTC),
              datetime(1700, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
              datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)]


def times_everywhere(store) -> dict[str, list[datetime]]:
    class Times(el.Projection):
        def initial_state(self):
            return []

        def apply(self, state, event):
            return [*state, event.recorded_at]

    projector = el.Projector(store, Times())
    projector.run()
    seen = []
    with store.subscribe(lambda e: seen.append(e.recorded_at)) as sub:
        assert sub.wait_until(store.head(), timeout=WAIT)
    return {
        "read_stream": [e.recorded_at for e in store.read_stream("t")],
        "read_all": [e.recorded_at for e in store.read_all()],
        "projector": projector.state,
        "subscription": seen,
        "to_df": [t.to_pydatetime() for t in store.to_df()["recorded_at"]],
    }


def test_far_future_and_far_past_times_read_back_exactly_everywhere(store):
    store.append("t", [el.NewEvent(Noted(str(i)), recorded_at=at)
                       for i, at in enumerate(EDGE_TIMES)])
    for path, times in times_everywhere(store).items():
        assert times == EDGE_TIMES, path


def test_many_far_times_read_back_exactly_in_a_big_read(store):
    # more events than the small-read fast path, so the column-wise reads are used too
    times = [EDGE_TIMES[i % len(EDGE_TIMES)] + timedelta(microseconds=0) for i in range(600)]
    times[0] = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    store.append("t", [el.NewEvent(Noted(str(i)), recorded_at=at) for i, at in enumerate(times)])
    assert [e.recorded_at for e in store.read_stream("t")] == times
    assert [e.recorded_at for e in store.read_all()] == times


def test_a_csv_at_the_edge_of_time_imports_and_reads_back(store, tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text("case,activity,timestamp\nc1,a,0001-01-01 00:00:00\n"
                    "c1,b,9999-12-31 23:59:59.999999\n")
    el.import_log(store, path)
    assert [e.recorded_at for e in store.read_all()] == [EDGE_TIMES[1], EDGE_TIMES[0]]


@pytest.mark.parametrize("value", ["10000-01-01 00:00:00", "infinity", "-infinity"])
def test_a_time_no_read_path_can_return_is_refused_on_import(store, tmp_path, value):
    path = tmp_path / "far.csv"
    path.write_text(f"case,activity,timestamp\nc1,a,2024-01-01 00:00:00\nc1,b,{value}\n")
    with pytest.raises(LogImportError, match=r"line 3.*timestamp"):
        el.import_log(store, path)
    untouched(store)


def test_a_time_past_9999_is_refused_in_a_batch(store):
    big = pa.array([253402300800_000000], pa.timestamp("us", tz="UTC"))  # 10000-01-01
    rows = pa.table({"stream_id": ["s"], "type": ["T"], "data": ["{}"], "recorded_at": big})
    with pytest.raises(el.InvalidInputError, match=r"row 1.*recorded_at"):
        store.append_batch(rows)
    untouched(store)


def test_an_aware_time_that_overflows_in_utc_is_refused(store):
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    early = datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    for at in (late, early):
        with pytest.raises(el.InvalidInputError, match="recorded_at"):
            store.append("s", [el.NewEvent(Noted("a"), recorded_at=at)])
    untouched(store)


# -- 5. one file opened from several threads at once ------------------------------------------

def test_opening_one_file_from_four_threads_at_once(tmp_path):
    failures: list[BaseException] = []
    for round_ in range(30):
        path = tmp_path / f"f{round_}.duckdb"
        barrier = threading.Barrier(4)
        stores: list[el.EventStore] = []

        def open_it(path=path, barrier=barrier, stores=stores):
            barrier.wait()
            try:
                stores.append(el.connect(path))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, s in enumerate(stores):
            s.append("s", [Noted(str(i))])
        assert {s.head() for s in stores} <= {len(stores)}
        for s in stores:
            s.close()
    assert failures == []


# -- 6. the same log, plain or gzipped, is imported once --------------------------------------

def test_the_same_xes_plain_gzipped_and_regzipped_is_imported_once(store, tmp_path):
    raw = RUNNING_XES.read_bytes()
    fast, slow = tmp_path / "fast.xes.gz", tmp_path / "slow.xes.gz"
    fast.write_bytes(gzip.compress(raw, compresslevel=1, mtime=1))
    slow.write_bytes(gzip.compress(raw, compresslevel=9, mtime=2))
    assert fast.read_bytes() != slow.read_bytes()
    written = [el.import_log(store, p).written for p in (RUNNING_XES, fast, slow)]
    assert written == [42, 0, 0]
    assert store.head() == 42


def test_a_gzipped_log_imported_by_eventlab_0_1_is_not_imported_again(store, tmp_path,
                                                                      monkeypatch):
    from eventlab.importers import identity

    packed = tmp_path / "running.xes.gz"
    packed.write_bytes(gzip.compress(RUNNING_XES.read_bytes()))
    key = identity.compressed_key(packed)
    with monkeypatch.context() as old:   # 0.1 knew a gzipped file by its compressed bytes
        old.setattr(identity, "digest_key", lambda digest: key)
        assert el.import_log(store, packed).written == 42
    assert el.import_log(store, packed).written == 0
    assert store.head() == 42


def test_the_same_csv_plain_and_gzipped_is_imported_once(store, tmp_path):
    packed = tmp_path / "running.csv.gz"
    packed.write_bytes(gzip.compress(RUNNING_CSV.read_bytes()))
    assert [el.import_log(store, p).written for p in (packed, RUNNING_CSV)] == [42, 0]


# -- 7. event ids are unique in the whole log -------------------------------------------------

def test_the_same_event_id_twice_in_a_batch_is_refused(store):
    same = uuid.uuid4()
    with pytest.raises(el.InvalidInputError, match=r"event #3.*same event_id as event #1"):
        store.append("s", [el.NewEvent(Noted("a"), event_id=same), Noted("b"),
                           el.NewEvent(Noted("c"), event_id=same)])
    untouched(store)


def test_an_event_id_stored_in_another_stream_is_refused(store):
    taken = uuid.uuid4()
    store.append("a", [el.NewEvent(Noted("a"), event_id=taken)])
    with pytest.raises(el.InvalidInputError, match=r"already stored in stream 'a'"):
        store.append("b", [el.NewEvent(Noted("b"), event_id=taken)])
    assert store.stream_version("b") == 0
    # the identical retry of the first append stays a safe no-op
    assert store.append("a", [el.NewEvent(Noted("a"), event_id=taken)]) == 1
    untouched(store, 1)
    assert [e.event_id for e in store.read_all()] == [taken]


def test_a_batch_with_an_id_twice_or_stored_elsewhere_is_refused(store):
    ids = [str(uuid.uuid4()) for _ in range(2)]
    twice = pa.table({"stream_id": ["a", "b"], "type": ["T", "T"], "data": ["{}", "{}"],
                      "event_id": [ids[0], ids[0].upper()]})
    with pytest.raises(el.InvalidInputError, match=r"row 2.*event_id.*row 1"):
        store.append_batch(twice)
    untouched(store)
    store.append("a", [el.NewEvent(Noted("a"), event_id=uuid.UUID(ids[1]))])
    elsewhere = pa.table({"stream_id": ["b"], "type": ["T"], "data": ["{}"],
                          "event_id": [ids[1]]})
    with pytest.raises(el.InvalidInputError, match="already stored in stream 'a'"):
        store.append_batch(elsewhere)
    untouched(store, 1)


def test_a_retry_with_upper_case_ids_is_still_a_retry(store):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    rows = pa.table({"stream_id": ["a", "a", "b"], "type": ["T"] * 3, "data": ["{}"] * 3,
                     "event_id": ids})
    store.append_batch(rows)
    again = rows.set_column(3, "event_id", pa.array([i.upper() for i in ids]))
    store.append_batch(again)
    assert store.head() == 3


# -- 8. a listener that raises never makes a committed append raise ---------------------------

def test_a_raising_listener_is_logged_and_the_append_returns(store, caplog):
    heard = []

    def broken(head):
        raise RuntimeError("listener broke")

    store.add_listener(broken)
    store.add_listener(heard.append)
    caplog.set_level(logging.ERROR, logger="eventlab")
    assert store.append("s", [Noted("a")]) == 1
    assert heard == [1]
    assert "listener broke" in caplog.text
    untouched(store, 1)
    store.remove_listener(broken)
    store.remove_listener(heard.append)


# -- 9. read_all streams a big log ------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent("""
    import sys
    import eventlab as el

    def rss_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024

    store = el.connect(sys.argv[1], read_only=True)
    base = rss_mb()
    events = store.read_all()
    first = next(events)
    at_first = rss_mb()
    peak, count = at_first, 1
    for event in events:
        count += 1
        if count % 50_000 == 0:
            peak = max(peak, rss_mb())
    print(count, first.position, at_first - base, peak - base)
""")


@pytest.mark.slow
def test_read_all_of_a_million_events_streams(tmp_path):
    path = tmp_path / "big.duckdb"
    n = 1_000_000
    with el.connect(path) as store:
        for start in range(0, n, 250_000):
            store.append_batch(pa.table({
                "stream_id": [f"s-{i % 1000}" for i in range(start, start + 250_000)],
                "type": ["Deposited"] * 250_000,
                "data": [f'{{"amount":{i}.5}}' for i in range(start, start + 250_000)]}))
        assert store.head() == n
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], check=True,
                          capture_output=True, text=True)
    count, first, at_first, peak = done.stdout.split()
    assert (int(count), int(first)) == (n, 1)
    assert float(at_first) < 100, f"{at_first} MB held before the first event"
    # steady: the rest of the read holds at most what DuckDB caches of the file
    size_mb = path.stat().st_size / 2**20
    assert float(peak) < float(at_first) + size_mb + 50, (at_first, peak, size_mb)


# -- 10. close() frees the file at once, even with an iterator half read ----------------------

OPENER = textwrap.dedent("""
    import sys
    import eventlab as el
    with el.connect(sys.argv[1]) as store:
        print(store.head())
""")


def test_close_with_a_half_read_iterator_frees_the_file(db_path):
    store = el.connect(db_path)
    store.append("s", [Noted(str(i)) for i in range(150_000)])
    events = store.read_all()
    assert next(events).position == 1
    big = store.read_stream("s")
    assert next(big).version == 1
    raw = store.connection   # a cursor handed out earlier is closed with the store too
    raw.execute("select 1").fetchall()
    store.close()
    done = subprocess.run([sys.executable, "-c", OPENER, str(db_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "150000"
    with pytest.raises(el.StoreClosedError):
        next(events)
    with pytest.raises(el.StoreClosedError):
        next(big)


def test_every_store_stops_its_iterators_and_refuses_everything_after_close(store):
    store.append("s", [Noted(str(i)) for i in range(10)])
    events, stream = store.read_all(), store.read_stream("s")
    next(events)
    next(stream)
    store.close()
    for it in (events, stream):
        with pytest.raises(el.StoreClosedError):
            next(it)
    for call in (lambda: store.append("s", [Noted("x")]), store.head,
                 lambda: store.stream_version("s"), lambda: list(store.read_all()),
                 lambda: list(store.read_stream("s")), lambda: store.delete_stream("s"),
                 store.stream_ids, lambda: store.load_checkpoint("p"),
                 lambda: store.save_checkpoint("p", 1, None)):
        with pytest.raises(el.StoreClosedError):
            call()
    store.close()   # twice is harmless


# -- 11. a .csv.gz, and a file name with * or ?, read exactly the named file ------------------

def test_a_gzipped_csv_imports(store, tmp_path):
    packed = tmp_path / "running-example.csv.gz"
    packed.write_bytes(gzip.compress(RUNNING_CSV.read_bytes()))
    summary = el.import_log(store, packed)
    assert (summary.cases, summary.events, summary.activities) == (6, 42, 8)


@pytest.mark.parametrize("name", ["log*.csv", "log?.csv", "log[1].csv", "log*.csv.gz",
                                  "log*.parquet"])
def test_a_file_name_with_glob_characters_reads_only_that_file(store, tmp_path, name):
    mine = "case,activity,timestamp\nc1,a,2024-01-01 10:00\n"
    other = "case,activity,timestamp\nc2,b,2024-01-01 10:00\nc3,b,2024-01-01 11:00\n"
    suffix = name.split(".", 1)[1]

    def write(path: Path, text: str) -> None:
        if suffix == "csv.gz":
            path.write_bytes(gzip.compress(text.encode()))
        elif suffix == "parquet":
            frame = pd.read_csv(__import__("io").StringIO(text))
            frame.to_parquet(path)
        else:
            path.write_text(text)

    write(tmp_path / name, mine)
    for neighbour in ("log1.", "logs.", "log.", "logx."):
        write(tmp_path / (neighbour + suffix), other)
    summary = el.import_log(store, tmp_path / name)
    assert (summary.cases, summary.events) == (1, 1)
    assert [e.stream_id for e in store.read_all()] == ["c1"]


# -- 12. payload keys DuckDB cannot name apart get distinct, valid column names -------------

def test_empty_and_case_twin_keys_get_distinct_columns_everywhere(store, tmp_path):
    store.append("s", [el.NewEvent({"": 1, "A": 2, "a": 3, "x": {"": 4}, "Type": "inner"},
                                   type="Odd")])
    frame = store.to_df()
    payload = [c for c in frame.columns if c not in
               ("position", "stream_id", "version", "type", "recorded_at", "event_id",
                "metadata")]
    assert len({c.lower() for c in payload}) == len(payload) == 5
    assert all(c and not c.endswith(".") for c in payload)
    assert sorted(frame.loc[0, payload].tolist(), key=str) == sorted([1, 2, 3, 4, "inner"],
                                                                     key=str)
    assert frame.loc[0, "type"] == "Odd" and frame.loc[0, "data.Type"] == "inner"
    flat = store.sql("select * from events_flat")
    assert list(flat.columns) == list(frame.columns)
    out = store.export_parquet(tmp_path / "odd")
    assert sorted(pd.read_parquet(out).columns) == sorted(frame.columns)


def test_cli_sql_over_odd_keys_prints_no_traceback(tmp_path, capsys):
    db = tmp_path / "odd.duckdb"
    with el.connect(db) as store:
        store.append("s", [el.NewEvent({"": 1, "A": 2, "a": 3}, type="Odd")])
    cli(["sql", "--db", str(db), "select * from events_flat"])
    assert "Odd" in capsys.readouterr().out


# -- 13. the lock error says what works --------------------------------------------------------

def test_the_lock_error_suggests_only_what_works(db_path):
    with held_by_another_process(db_path) as holder:
        with pytest.raises(el.StoreLockedError) as caught:
            el.connect(db_path, read_only=True)
        message = str(caught.value)
        assert "read_only=True" not in message
        assert "close the other kernel" in message and "copy" in message
        assert f"PID {holder.pid}" in message
        for command in (["info", "--db", str(db_path)],
                        ["sql", "--db", str(db_path), "select 1"],
                        ["export", str(db_path.parent / "out"), "--db", str(db_path)]):
            with pytest.raises(SystemExit) as exited:
                cli(command)
            text = str(exited.value.code)
            assert text.startswith("error: ") and "close the other kernel" in text
            assert "read_only=True" not in text


# -- 14. bad arguments get an eventlab error naming them; nothing is written ------------------

def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("call, named", [
    (lambda s: s.append("s", [el.NewEvent(nested(2000), type="Deep")]), "nested"),
    (lambda s: s.append("s", [Counted(1, [nested(2000)])]), "nested"),
    (lambda s: s.append("s", [Noted("a")], metadata=nested(2000)), "nested"),
    (lambda s: s.append("s", [Noted("a")], metadata=[1, 2]), "metadata"),
    (lambda s: s.append("s", [Noted("a")], metadata="abc"), "metadata"),
    (lambda s: s.append("s", [el.NewEvent(Noted("a"), metadata=[1])]), "metadata"),
    (lambda s: s.append("s", [el.NewEvent(Noted("a"), recorded_at="2024-01-01")]),
     "recorded_at"),
    (lambda s: s.append("s", [el.NewEvent(Noted("a"), event_id="not-a-uuid")]), "event_id"),
    (lambda s: s.append("s\ud800", [Noted("a")]), "stream id"),
    (lambda s: s.append("s\x00", [Noted("a")]), "stream id"),
    (lambda s: s.append("s", [el.NewEvent({"a": 1}, type="T\ud800")]), "type"),
    (lambda s: list(s.read_all(limit=2**70)), "limit"),
    (lambda s: list(s.read_all(from_position=2**70)), "from_position"),
    (lambda s: list(s.read_stream("s", from_version=2**64)), "from_version"),
    (lambda s: list(s.read_stream("s", to_version=2**64)), "to_version"),
    (lambda s: s.stream_version("s\ud800"), "stream id"),
    (lambda s: el.Repository(s, __import__("eventlab.examples.bank", fromlist=["x"])
                             .Account()).execute("a", None, retries=-1), "retries"),
    (lambda s: s.append("s", [Noted("a")], expected_version=2**70), "expected_version"),
    (lambda s: s.to_df(from_position="abc"), "from_position"),
    (lambda s: s.to_df(to_position=2**70), "to_position"),
    (lambda s: s.to_df(since="10000-01-01"), "since"),
    (lambda s: s.to_df(until="not a time"), "until"),
    (lambda s: s.to_df(types=5), "types"),
    (lambda s: list(s.read_all(types=[5])), "types"),
    (lambda s: s.sql(123), "query"),
    (lambda s: s.export_parquet("unused", partition_by=5), "partition_by"),
    (lambda s: s.subscribe(None), "handler"),
])
def test_bad_arguments_get_eventlab_errors_and_write_nothing(store, call, named):
    with pytest.raises(el.EventlabError, match=named):
        call(store)
    untouched(store)


@pytest.mark.parametrize("value", ["-5", "x"])
def test_cli_bad_max_rows_is_a_clear_error(tmp_path, capsys, value):
    db = tmp_path / "a.duckdb"
    el.connect(db).close()
    with pytest.raises(SystemExit) as exited:
        cli(["sql", "--db", str(db), "--max-rows", value, "select 1"])
    assert exited.value.code == 2
    assert "--max-rows" in capsys.readouterr().err


# -- 15. subscriptions end with their store, and say what failed ------------------------------

@pytest.mark.parametrize("poll_interval", [None, 0.5])
def test_closing_the_store_ends_its_subscriptions(store, poll_interval):
    seen = []
    sub = el.Subscription(store, seen.append, poll_interval=poll_interval)
    store.append("s", [Noted("a")])
    assert sub.wait_until(1, timeout=WAIT)
    store.close()
    deadline = time.monotonic() + 1.0
    while sub.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sub.running
    assert sub.error is None
    sub.close()   # nothing to report: the handler never failed
    assert len(seen) == 1


def test_a_read_failure_is_reported_as_a_read_failure(store, caplog):
    @dataclass(frozen=True)
    class Shaped:
        n: int

    el.register(Shaped, name="ShapedForSubscription")
    store.append("s", [el.NewEvent({"n": "not a number"}, type="ShapedForSubscription")])
    handled = []
    caplog.set_level(logging.ERROR, logger="eventlab.subscription")
    sub = store.subscribe(handled.append)
    with pytest.raises(el.EventlabError) as caught:
        sub.wait_until(1, timeout=WAIT)
    message = str(caught.value)
    assert "handler" not in message and "reading" in message
    assert "ShapedForSubscription" in message
    assert handled == []
    with pytest.raises(el.EventlabError, match="reading"):
        sub.close()
