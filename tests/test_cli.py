"""The command line on real files: import, info, sql, export, in a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eventlab", *args], capture_output=True,
                          text=True, timeout=300)


def test_import_info_sql_export(tmp_path):
    db = str(tmp_path / "log.duckdb")
    done = run("import", str(DATA / "running-example" / "running-example.csv"), "--db", db,
               "--prefix", "claim-")
    assert done.returncode == 0, done.stderr
    assert "imported 42 events of 6 cases (8 activities)" in done.stdout
    info = run("info", "--db", db)
    assert info.returncode == 0, info.stderr
    assert "6 streams, 42 events, 8 types" in info.stdout
    assert "from 2010-12-30 10:02:00+00:00 to 2011-01-24 13:56:00+00:00" in info.stdout
    query = run("sql", "--db", db, "select count(*) as n from events where stream_id = 'claim-3'")
    assert query.returncode == 0, query.stderr
    assert query.stdout.split() == ["n", "9"]
    out = tmp_path / "parquet"
    export = run("export", "--db", db, str(out))
    assert export.returncode == 0, export.stderr
    assert len(pd.read_parquet(out)) == 42


def test_errors_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,activity,timestamp\nc1,a,not-a-time\n")
    db = str(tmp_path / "log.duckdb")
    done = run("import", str(bad), "--db", db)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: bad.csv, line 2: column 'timestamp'")
    assert "Traceback" not in done.stderr
    query = run("sql", "--db", db, "select nope")
    assert query.returncode == 1 and "the query failed" in query.stderr


def test_importing_a_log_again_writes_nothing(tmp_path):
    db = str(tmp_path / "log.duckdb")
    log = str(DATA / "running-example" / "running-example.xes")
    first, again = run("import", log, "--db", db), run("import", log, "--db", db)
    assert first.returncode == again.returncode == 0, again.stderr
    assert "imported 42 events" in first.stdout
    assert again.stdout.startswith("nothing new: all 42 events")
    assert "6 streams, 42 events" in run("info", "--db", db).stdout


def test_import_an_ocel_log_onto_one_stream_per_object(tmp_path):
    db = str(tmp_path / "log.duckdb")
    log = Path(__file__).resolve().parents[1] / "data" / "ocel20-p2p-example"
    done = run("import", str(log / "ocel20_example.xmlocel"), "--db", db,
               "--object-type", "Purchase Order", "--timezone", "Europe/Berlin")
    assert done.returncode == 0, done.stderr
    as_json = str(tmp_path / "json.duckdb")
    assert run("import", str(log / "ocel20_example.jsonocel"), "--db", as_json,
               "--object-type", "Purchase Order").returncode == 0
    query = "select stream_id, version, type, recorded_at from events order by position"
    assert run("sql", "--db", db, query).stdout == run("sql", "--db", as_json, query).stdout
    missing = run("import", str(log / "ocel20_example.jsonocel"), "--db", db)
    assert missing.returncode == 1 and "Purchase Order" in missing.stderr


def test_export_incremental_writes_only_what_is_new(tmp_path):
    db = str(tmp_path / "log.duckdb")
    out = tmp_path / "parquet"
    assert run("import", str(DATA / "running-example" / "running-example.csv"), "--db",
               db).returncode == 0
    first = run("export", "--db", db, str(out), "--incremental")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote 42 new events")
    again = run("export", "--db", db, str(out), "--incremental")
    assert again.stdout.startswith("nothing new"), again.stdout
    assert len(pd.read_parquet(out)) == 42
