"""PostgreSQL benchmarks, each a ratio against a baseline measured in the same run.

Starts a throwaway PostgreSQL server (durable: fsync on, as a real one) and measures:

* single command (get + handle + save, one event) on PostgreSQL, against the
  ``eventsourcing`` package's PostgreSQL persistence on the same server (target >= 1.0x);
* single command on a DuckDB file, against a bare one-row insert into the same
  DuckDB table (target >= 0.9x);
* a batched append of 10,000 events, against a raw psycopg ``COPY`` of the same
  rows into a table of the same shape (target >= 0.7x);
* ``to_arrow()`` of 200,000 events, against a raw ``COPY ... TO`` read into Arrow
  (target <= 3x the time);
* delivery from a writer process to a subscriber in this one: the time from
  before ``append`` to the handler's call, median and 90th percentile (target p50 < 5 ms).

    .venv/bin/python benchmarks/bench_postgres.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv
from bench_core import alternating_rates, define_bank, timed

import eventlab as el
from eventlab.examples.bank import Account, Deposit, Open
from eventlab.pgserver import ThrowawayPostgres


def eventsourcing_bank(url: str, schema: str):
    """A bank on the ``eventsourcing`` package, persisted in PostgreSQL."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"create schema if not exists {schema}")
    os.environ.update(PERSISTENCE_MODULE="eventsourcing.postgres",
                      POSTGRES_DBNAME=parts["dbname"], POSTGRES_HOST=parts["host"],
                      POSTGRES_PORT=str(parts["port"]), POSTGRES_USER=parts["user"],
                      POSTGRES_PASSWORD=parts["password"], POSTGRES_SCHEMA=schema)
    return define_bank()()


def single_commands(url: str, folder: Path, n: int, accounts: int, rounds: int = 5) -> None:
    """The contenders run ``rounds`` slices each, taking turns, so that a change in the
    machine's load falls on all of them alike."""
    bank = eventsourcing_bank(url, "es_bank")
    ids = [bank.open(f"owner-{i}") for i in range(accounts)]
    pg_store = el.connect(url, schema="lab_bank")
    duck_store = el.connect(folder / "lab.duckdb")
    repos = {"eventlab on PostgreSQL": el.Repository(pg_store, Account()),
             "eventlab on a DuckDB file": el.Repository(duck_store, Account())}
    for repo in repos.values():
        for i in range(accounts):
            repo.execute(f"account-{i}", Open("owner"))
    with el.connect(folder / "raw.duckdb"):
        pass   # a table of the very same shape for the bare insert
    raw = duckdb.connect(str(folder / "raw.duckdb"))
    now = datetime.now(UTC)

    def bare_insert(i: int) -> None:
        raw.execute("insert into eventlab_events values (?, ?, ?, 'Deposited', "
                    "'{\"amount\":1.0}', '{}', uuid(), ?, 1)",
                    [i + 1, f"account-{i % accounts}", i // accounts + 1, now]).fetchall()

    step = n // rounds
    contenders = {
        "eventsourcing on PostgreSQL": lambda i: bank.deposit(ids[i % accounts], 1.0),
        **{label: (lambda i, repo=repo: repo.execute(f"account-{i % accounts}", Deposit(1.0)))
           for label, repo in repos.items()},
        "bare one-row DuckDB insert": bare_insert,
    }
    rate = alternating_rates(contenders, rounds, step)
    raw.close()
    pg_store.close()
    duck_store.close()
    print(f"single command, get + handle + save, {n} commands over {accounts} streams "
          f"(median of {rounds} alternating slices)")
    es, bare = rate["eventsourcing on PostgreSQL"], rate["bare one-row DuckDB insert"]
    for label, value in rate.items():
        if label == "eventlab on PostgreSQL":
            note = f"{value / es:5.2f}x eventsourcing  (target >= 1.0x)"
        elif label == "eventlab on a DuckDB file":
            note = f"{value / bare:5.2f}x the bare insert  (target >= 0.9x)"
        else:
            note = "(baseline)"
        print(f"  {label:30s} {value:8.0f} per s   {note}")


def _rows(size: int, offset: int) -> pa.Table:
    return pa.table({
        "stream_id": pa.array([f"batch-{i % 50}" for i in range(size)]),
        "type": pa.array(["Deposited"] * size),
        "data": pa.array([f'{{"amount":{offset + i}.0,"note":"n{i}"}}' for i in range(size)]),
        "event_id": pa.array([str(uuid.uuid4()) for _ in range(size)]),
        "recorded_at": pa.array([datetime.now(UTC)] * size, pa.timestamp("us", tz="UTC")),
    })


def batched_append(url: str, size: int, rounds: int) -> None:
    """``append_batch`` of ``size`` rows, against psycopg COPY of the same rows (with
    positions and versions given) into an eventlab table in another schema."""
    store = el.connect(url, schema="lab_batch")
    el.connect(url, schema="raw_batch").close()   # tables of the very same shape, which
    el.connect(url, schema="raw_csv").close()     # grow round by round as eventlab's does
    raw = psycopg.connect(url, autocommit=True)
    columns = ("position, stream_id, version, type, data, metadata, event_id, recorded_at, "
               "schema_version")
    copy_sql = f"copy raw_batch.eventlab_events ({columns}) from stdin"
    timings: dict[str, list[float]] = {"raw COPY, write_row": [], "raw COPY, CSV from Arrow": [],
                                       "eventlab append_batch": [], "eventlab append": []}
    offset = 0
    for r in range(rounds + 1):   # round 0 warms up and is not counted
        table = _rows(size, offset)
        values = list(zip(*(table.column(c).to_pylist() for c in table.column_names),
                          strict=True))

        def write_rows(values=values, offset=offset) -> None:
            with raw.transaction(), raw.cursor().copy(copy_sql) as copy:
                for i, (sid, typ, data, eid, at) in enumerate(values):
                    copy.write_row((offset + i + 1, sid, offset // 50 + i // 50 + 1, typ, data,
                                    "{}", eid, at, 1))

        def write_csv(table=table, offset=offset) -> None:
            out = table.select(["stream_id", "type", "data"])
            out = pa.table({
                "position": pa.array(range(offset + 1, offset + size + 1), pa.int64()),
                "stream_id": out.column("stream_id"),
                "version": pa.array([offset // 50 + i // 50 + 1 for i in range(size)]),
                "type": out.column("type"), "data": out.column("data"),
                "metadata": pa.array(["{}"] * size),
                "event_id": pa.array([str(uuid.uuid4()) for _ in range(size)]),
                "recorded_at": table.column("recorded_at"),
                "schema_version": pa.array([1] * size, pa.int32())})
            sink = io.BytesIO()
            pcsv.write_csv(out, sink, pcsv.WriteOptions(include_header=False))
            with raw.transaction(), raw.cursor().copy(
                    copy_sql.replace("raw_batch", "raw_csv").replace(
                        "from stdin", "from stdin (format csv)")) as copy:
                copy.write(sink.getvalue())

        seconds_row, _ = timed(write_rows)
        seconds_csv, _ = timed(write_csv)
        seconds_lab, _ = timed(store.append_batch, table)
        seconds_append, _ = timed(store.append, f"single-{r}", [
            el.NewEvent({"amount": float(i), "note": f"n{i}"}, type="Deposited")
            for i in range(size)])
        if r:
            timings["raw COPY, write_row"].append(seconds_row)
            timings["raw COPY, CSV from Arrow"].append(seconds_csv)
            timings["eventlab append_batch"].append(seconds_lab)
            timings["eventlab append"].append(seconds_append)
        offset += size
    raw.close()
    store.close()
    median = {label: statistics.median(values) for label, values in timings.items()}
    base = median["raw COPY, write_row"]
    print(f"\nbatched append, {size} events per call (median of {rounds})")
    for label, seconds in median.items():
        note = "(baseline)" if label == "raw COPY, write_row" else f"{base / seconds:5.2f}x"
        if label == "eventlab append_batch":
            note += (f"  (target >= 0.7x; "
                     f"{median['raw COPY, CSV from Arrow'] / seconds:4.2f}x the CSV COPY)")
        print(f"  {label:28s} {size / seconds:10.0f} events/s   {note}")


def to_arrow(url: str, events: int, rounds: int) -> None:
    store = el.connect(url, schema="lab_read")
    for offset in range(0, events, 50_000):
        store.append_batch(_rows(min(50_000, events - offset), offset))
    raw = psycopg.connect(url, autocommit=True, options="-c timezone=UTC")
    names = ["position", "stream_id", "version", "type", "data", "metadata", "event_id",
             "recorded_at", "schema_version"]

    def raw_read() -> pa.Table:
        buffer = io.BytesIO()
        with raw.cursor().copy(f"copy (select {', '.join(names)} from lab_read.eventlab_events "
                               "order by position) to stdout (format csv)") as copy:
            for chunk in copy:
                buffer.write(chunk)
        return pcsv.read_csv(io.BytesIO(buffer.getvalue()),
                             read_options=pcsv.ReadOptions(column_names=names))

    raw_times, lab_times, shape = [], [], None
    for _ in range(rounds):
        seconds, table = timed(raw_read)
        raw_times.append(seconds)
        seconds, table = timed(store.to_arrow)
        lab_times.append(seconds)
        shape = (table.num_rows, table.num_columns)
    raw.close()
    store.close()
    raw_t, lab_t = statistics.median(raw_times), statistics.median(lab_times)
    print(f"\nto_arrow of {events} events (median of {rounds})")
    print(f"  raw COPY TO -> Arrow (CSV)      {raw_t * 1000:8.0f} ms   (baseline)")
    print(f"  eventlab to_arrow {shape}  {lab_t * 1000:8.0f} ms   {lab_t / raw_t:5.2f}x the "
          "time  (target <= 3x)")


_WRITER = """
import sys, time
import eventlab as el
store = el.connect(sys.argv[1], schema="lab_live")
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    store.append(f"live-{i % 5}", [el.NewEvent({"sent": time.time()}, type="Ping")])
    time.sleep(0.005)
"""


def delivery(url: str, events: int) -> None:
    store = el.connect(url, schema="lab_live")
    latencies: list[float] = []
    done = threading.Event()

    def handler(event: el.RecordedEvent) -> None:
        latencies.append(time.time() - event.data["sent"])
        if len(latencies) == events:
            done.set()

    sub = el.Subscription(store, handler, from_position=store.head() + 1, poll_interval=None)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, url, str(events)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    writer.stdin.write("go\n")
    writer.stdin.flush()
    done.wait(120)
    writer.wait()
    sub.close()
    store.close()
    ms = sorted(x * 1000 for x in latencies)
    print(f"\ncross-process delivery, {len(ms)} events from a writer process to a "
          "subscription here")
    print(f"  p50 {ms[len(ms) // 2]:6.2f} ms   p90 {ms[int(len(ms) * 0.9)]:6.2f} ms   "
          f"max {ms[-1]:6.2f} ms   (target p50 < 5 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    with ThrowawayPostgres(durable=True) as server, tempfile.TemporaryDirectory() as tmp:
        single_commands(server.url, Path(tmp), n=300 if args.quick else 3000, accounts=100)
        batched_append(server.url, size=10_000, rounds=2 if args.quick else 5)
        to_arrow(server.url, events=20_000 if args.quick else 200_000,
                 rounds=2 if args.quick else 5)
        delivery(server.url, events=50 if args.quick else 400)
    print(json.dumps({"postgres": "stopped"}))


if __name__ == "__main__":
    main()
