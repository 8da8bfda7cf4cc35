"""The command line on real files: import, info, sql, export, in a real subprocess; every
command and option mirrors the Python API and is documented in the README."""

from __future__ import annotations

import argparse
import inspect
import re
import subprocess
import sys

import pandas as pd
import pytest

import eventlab as el
from eventlab.cli import build_parser, main
from eventlab.copying import copy
from eventlab.demo import run_demo
from eventlab.importers import import_log
from eventlab.loginfo import info

from conftest import DATA, ROOT

RUNNING_CSV = DATA / "running-example" / "running-example.csv"
RUNNING_XES = DATA / "running-example" / "running-example.xes"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eventlab", *args], capture_output=True,
                          text=True, timeout=300)


def test_import_info_sql_export(tmp_path):
    db = str(tmp_path / "log.duckdb")
    done = run("import", str(RUNNING_CSV), "--db", db, "--prefix", "claim-")
    assert done.returncode == 0, done.stderr
    assert "imported 42 events of 6 cases (8 activities)" in done.stdout
    shown = run("info", "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert "6 streams, 42 events, 8 types" in shown.stdout
    assert "from 2010-12-30 10:02:00+00:00 to 2011-01-24 13:56:00+00:00" in shown.stdout
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
    log = str(RUNNING_XES)
    first, again = run("import", log, "--db", db), run("import", log, "--db", db)
    assert first.returncode == again.returncode == 0, again.stderr
    assert "imported 42 events" in first.stdout
    assert again.stdout.startswith("nothing new: all 42 events")
    assert "6 streams, 42 events" in run("info", "--db", db).stdout


def test_import_an_ocel_log_onto_one_stream_per_object(tmp_path):
    db = str(tmp_path / "log.duckdb")
    log = DATA / "ocel20-p2p-example"
    done = run("import", str(log / "ocel20_example.xmlocel"), "--db", db,
               "--object-type", "Purchase Order", "--timezone", "Europe/Berlin")
    assert done.returncode == 0, done.stderr
    as_json = str(tmp_path / "json.duckdb")
    assert run("import", str(log / "ocel20_example.jsonocel"), "--db", as_json,
               "--object-type", "Purchase Order").returncode == 0
    query = "select stream_id, version, type, recorded_at from events order by position"
    rows = run("sql", "--db", db, query, "--max-rows", "1000").stdout
    assert rows == run("sql", "--db", as_json, query, "--max-rows", "1000").stdout
    written = int(re.search(r"imported (\d+) events", done.stdout).group(1))
    assert len(rows.splitlines()) == 1 + written > 1          # a header, then every event
    missing = run("import", str(log / "ocel20_example.jsonocel"), "--db", db)
    assert missing.returncode == 1 and "Purchase Order" in missing.stderr


def test_export_incremental_writes_only_what_is_new(tmp_path):
    db = str(tmp_path / "log.duckdb")
    out = tmp_path / "parquet"
    assert run("import", str(RUNNING_CSV), "--db", db).returncode == 0
    first = run("export", "--db", db, str(out), "--incremental")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote 42 new events")
    again = run("export", "--db", db, str(out), "--incremental")
    assert again.stdout.startswith("nothing new"), again.stdout
    assert len(pd.read_parquet(out)) == 42


# -- the options that mirror the API's arguments (in this process: main() itself) ---------

def payloads(path) -> list[tuple]:
    with el.connect(path, read_only=True) as store:
        return [(e.stream_id, e.version, e.type, e.data, str(e.event_id))
                for e in store.read_all()]


def test_import_attributes_keep_only_those_in_the_payload(tmp_path, capsys):
    by_cli, by_api = tmp_path / "cli.duckdb", tmp_path / "api.duckdb"
    main(["import", str(RUNNING_XES), "--db", str(by_cli), "--attributes", "Costs, Resource"])
    assert "imported 42 events of 6 cases" in capsys.readouterr().out
    with el.connect(by_api) as store:
        el.import_log(store, RUNNING_XES, attributes=["Costs", "Resource"])
    events = payloads(by_cli)
    assert events == payloads(by_api)                  # the same events, ids included
    assert {tuple(sorted(data)) for _, _, _, data, _ in events} == {("Costs", "Resource")}
    nothing = tmp_path / "none.duckdb"
    main(["import", str(RUNNING_CSV), "--db", str(nothing), "--attributes", ""])
    assert {str(data) for _, _, _, data, _ in payloads(nothing)} == {"{}"}
    with pytest.raises(SystemExit):
        main(["import", str(RUNNING_XES), "--db", str(nothing), "--attributes", "Costs,,Org"])
    assert "'Costs,,Org' has an empty name" in capsys.readouterr().err


def test_export_partition_by(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    main(["import", str(RUNNING_XES), "--db", str(db)])
    by_stream = tmp_path / "by-stream"
    main(["export", str(by_stream), "--db", str(db), "--partition-by", "stream_id,type"])
    assert f"wrote 42 events as Parquet, partitioned by stream_id, type, to {by_stream}" in (
        capsys.readouterr().out)
    streams = sorted(p.name for p in by_stream.iterdir() if p.is_dir())
    with el.connect(db, read_only=True) as store:
        assert streams == sorted(f"stream_id={s}" for s in store.stream_ids())
        types = {e.type for e in store.read_stream("3")}
    assert {p.name for p in (by_stream / "stream_id=3").iterdir()} == {
        "type=" + t.replace(" ", "%20") for t in types}
    assert len(pd.read_parquet(by_stream)) == 42
    flat = tmp_path / "flat"
    main(["export", str(flat), "--db", str(db), "--partition-by", ""])
    assert "unpartitioned" in capsys.readouterr().out
    assert not [p for p in flat.iterdir() if p.is_dir()]
    assert sorted(pd.read_parquet(flat)["position"]) == list(range(1, 43))
    for wrong, message in ((["--partition-by", "amount"], "must name envelope columns"),
                           (["--partition-by", "stream_id", "--incremental"],
                            "cannot be combined with incremental")):
        with pytest.raises(SystemExit) as exited:
            main(["export", str(tmp_path / "other"), "--db", str(db), *wrong])
        assert message in str(exited.value.code)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


def test_info_prints_what_el_info_gives(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    main(["import", str(RUNNING_CSV), "--db", str(db)])
    with el.connect(db) as store:
        store.delete_stream("3")                  # the log now ends past its last event
        facts = el.info(store)
    capsys.readouterr()
    main(["info", str(db)])
    assert capsys.readouterr().out == f"{db}: {facts}\n"
    assert (facts.streams, facts.events, facts.head) == (5, 33, 42)
    assert str(facts).splitlines()[0] == "5 streams, 33 events, 8 types; the log ends at " \
                                         "position 42"
    empty = tmp_path / "empty.duckdb"
    with pytest.raises(SystemExit, match="database does not exist"):
        main(["info", "--db", str(empty)])                  # info never creates a file
    el.connect(empty).close()
    main(["info", "--db", str(empty)])
    assert capsys.readouterr().out.endswith(": 0 streams, 0 events, 0 types; the log ends "
                                            "at position 0\n")


def test_info_agrees_with_an_independent_count(tmp_path):
    rows = pd.read_csv(RUNNING_CSV)
    with el.connect(tmp_path / "log.duckdb") as store:
        el.import_log(store, RUNNING_CSV)
        facts = el.info(store)
    times = pd.to_datetime(rows["time:timestamp"], utc=True, format="mixed")
    assert facts.streams == rows["case:concept:name"].nunique()
    assert facts.events == facts.head == len(rows)
    assert facts.by_type == rows["concept:name"].value_counts().to_dict()
    assert list(facts.by_type.values()) == sorted(facts.by_type.values(), reverse=True)
    assert (facts.first, facts.last) == (times.min(), times.max())


# -- the command line mirrors the API, and the README documents all of it -----------------

def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def arguments(command: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in command._actions if not isinstance(a, argparse._HelpAction)]


#: each command's Python twin, and how an argument's name maps onto its parameter
TWINS = {
    "demo": (run_demo, {"db": "path"}),
    "import": (import_log, {"db": "store", "log": "source", "prefix": "stream_prefix"}),
    "info": (info, {"db": "store", "target": "store"}),
    "export": (el.EventStore.export_parquet, {"db": "self", "dir": "path"}),
    "sql": (el.EventStore.sql, {"db": "self"}),
    "copy": (copy, {}),
}
#: what only one side has, and why
CLI_ONLY = {("sql", "max_rows")}                       # how much of the answer to print
API_ONLY = {("demo", "print"),                         # a Python callable
            ("sql", "params"), ("sql", "filter"),      # Python values and an el.Filter
            ("copy", "slice_size")}                    # a memory knob


def test_every_command_has_a_python_twin_with_the_same_arguments():
    assert set(commands()) == set(TWINS)
    for name, command in commands().items():
        twin, renamed = TWINS[name]
        params = set(inspect.signature(twin).parameters)
        given = {renamed.get(a.dest, a.dest) for a in arguments(command)
                 if (name, a.dest) not in CLI_ONLY}
        assert given <= params, f"{name}: {sorted(given - params)} are not {twin.__name__}'s"
        missing = {p for p in params - given if (name, p) not in API_ONLY}
        assert not missing, f"eventlab {name} has no option for {sorted(missing)}"


def readme_rows() -> dict[str, str]:
    """The README's command-line table: each command's row, by command name."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(0)
            for m in re.finditer(r"^\| `eventlab (\w+)[^\n]*", section, re.M)}


def options_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text))


def test_every_command_and_option_is_documented_in_the_readme():
    rows = readme_rows()
    assert set(rows) == set(commands()), "the README's table lists other commands"
    for name, command in commands().items():
        row = rows[name]
        for action in arguments(command):
            if action.option_strings:
                (option,) = [o for o in action.option_strings if o.startswith("--")]
                assert option in options_in(row), f"eventlab {name}: {option} undocumented"
            else:
                assert action.dest.upper() in row, f"eventlab {name}: {action.dest} undocumented"
        documented = options_in(row)
        real = {o for a in arguments(command) for o in a.option_strings}
        assert documented <= real, f"eventlab {name}: the README names {documented - real}"
