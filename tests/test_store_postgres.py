"""The store contract, and what only PostgreSQL has, against a real PostgreSQL server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter, defaultdict

import pandas as pd
import psycopg
import pytest

import eventlab as el

from conftest import ROOT
from store_contract import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_url, pg_schema):
        self.url, self.schema = pg_url, pg_schema

    def make_store(self, tmp_path):
        return el.connect(self.url, schema=self.schema)

    def other_handle(self, store, tmp_path):
        return el.connect(self.url, schema=self.schema)


@pytest.mark.postgres
def test_appends_expecting_any_never_conflict_across_connections(pg_url, pg_schema):
    handles = [el.connect(pg_url, schema=pg_schema) for _ in range(3)]
    errors: list[Exception] = []

    def write(store: el.EventStore) -> None:
        try:
            for i in range(60):
                store.append("hot", [el.NewEvent({"i": i}, type="T")])
        except Exception as exc:   # a ConcurrencyError here would be the bug
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e.version for e in handles[0].read_stream("hot")] == list(range(1, 181))
    for h in handles:
        h.close()


# -- many processes, one log ------------------------------------------------------------------


_WRITER = textwrap.dedent("""
    import json, sys
    import eventlab as el
    url, schema, me, commands = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = el.connect(url, schema=schema)
    acked = []
    print("ready", flush=True)
    sys.stdin.readline()                      # start together
    for k in range(commands):
        stream = f"shared-{k % 2}" if k % 3 else f"own-{me}"
        while True:                           # a command: read the version, write on it
            version = store.stream_version(stream)
            try:
                store.append(stream, [el.NewEvent({"w": me, "k": k}, type="Wrote")],
                             expected_version=version)
                break
            except el.ConcurrencyError:
                continue
        acked.append(k)
    print(json.dumps(acked), flush=True)
""")

_SUBSCRIBER = textwrap.dedent("""
    import json, sys, time
    import eventlab as el
    url, schema, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = el.connect(url, schema=schema)
    seen = []
    sub = el.Subscription(store, lambda e: seen.append([e.position, e.data["w"], e.data["k"]]),
                          poll_interval=None)   # nothing but NOTIFY wakes it
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while len(seen) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.close()
    print(json.dumps(seen), flush=True)
""")


def _spawn(script: str, *args: object) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.postgres
def test_six_writer_processes_a_subscriber_and_a_polling_reader(pg_url, pg_schema):
    writers_n, commands = 6, 150
    total = writers_n * commands
    el.connect(pg_url, schema=pg_schema).close()     # the schema exists before the race
    subscriber = _spawn(_SUBSCRIBER, pg_url, pg_schema, total)
    writers = [_spawn(_WRITER, pg_url, pg_schema, me, commands) for me in range(writers_n)]
    polled: list[tuple[int, int, int]] = []
    reader = el.connect(pg_url, schema=pg_schema)

    def poll() -> None:
        position = 0
        deadline = time.monotonic() + 120
        while len(polled) < total and time.monotonic() < deadline:
            for e in reader.read_all(from_position=position + 1):
                polled.append((e.position, e.data["w"], e.data["k"]))
                position = e.position

    polling = threading.Thread(target=poll)
    polling.start()
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    acked = {(me, k) for me, w in enumerate(writers)
             for k in json.loads(w.stdout.readline())}
    for w in writers:
        assert w.wait(60) == 0
    seen = [tuple(x) for x in json.loads(subscriber.stdout.readline())]
    assert subscriber.wait(60) == 0
    polling.join(60)
    reader.close()

    with el.connect(pg_url, schema=pg_schema) as store:
        stored = [(e.position, e.stream_id, e.version, e.data["w"], e.data["k"])
                  for e in store.read_all()]
    assert len(acked) == total
    assert Counter((w, k) for _, _, _, w, k in stored) == Counter(acked)   # each once
    versions = defaultdict(list)
    for _, stream, version, _, _ in stored:
        versions[stream].append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
    assert len(versions) == writers_n + 2
    # losers of a race fail the version check before taking a position: no gaps
    assert [p for p, *_ in stored] == list(range(1, total + 1))
    in_order = [(p, w, k) for p, _, _, w, k in stored]
    assert seen == in_order         # the subscriber: every event, once, in order
    assert polled == in_order       # the polling reader too


_BATCHER = textwrap.dedent("""
    import sys
    import pandas as pd
    import eventlab as el
    url, schema = sys.argv[1], sys.argv[2]
    store = el.connect(url, schema=schema)
    print("ready", flush=True)
    for batch in range(10_000):
        if batch % 2:
            store.append(f"s-{batch % 7}", [el.NewEvent({"batch": batch, "i": i}, type="B")
                                            for i in range(40)])
        else:
            store.append_batch(pd.DataFrame({
                "stream_id": [f"s-{(batch + i) % 7}" for i in range(400)], "type": "B",
                "data": [{"batch": batch, "i": i} for i in range(400)]}))
        print(batch, flush=True)
""")


@pytest.mark.postgres
def test_a_writer_killed_mid_batch_leaves_every_acknowledged_batch_whole(pg_url, pg_schema):
    el.connect(pg_url, schema=pg_schema).close()
    writer = _spawn(_BATCHER, pg_url, pg_schema)
    acked = [int(writer.stdout.readline()) for _ in range(12)]
    time.sleep(0.013)                 # somewhere inside the next batch
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    acked += [int(line) for line in writer.stdout.read().split()]
    with el.connect(pg_url, schema=pg_schema) as store:
        sizes = Counter(e.data["batch"] for e in store.read_all())
        for batch in acked:
            assert sizes[batch] == (40 if batch % 2 else 400), f"batch {batch}"
        assert all(size == (40 if batch % 2 else 400) for batch, size in sizes.items())
        assert set(sizes) - set(acked) <= {max(acked) + 1}   # at most the one killed
        # the dead writer's lock went with its session: the log takes writes at once
        store.append("after", [el.NewEvent({"batch": -1, "i": 0}, type="B")])
        assert store.stream_version("after") == 1


@pytest.mark.postgres
def test_the_fence_holds_back_what_an_open_transaction_may_still_write(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store, psycopg.connect(pg_url) as slow:
        # a writer that has called the append function but not committed yet
        slow.execute(f'select "{pg_schema}".eventlab_append(array[\'a\'], array[0::bigint], '
                     "array['a'], array[1::bigint], array['T'], array['{}'], array['{}'], "
                     "array[null::uuid], array[now()], array[1])")
        store.append("b", [el.NewEvent({}, type="T")])          # position 2, committed
        assert store.stream_version("b") == 1
        assert store.head() == 0 and list(store.read_all()) == []   # 1 may still come
        assert store.read_arrow().num_rows == 0
        slow.commit()
        assert store.head() == 2
        assert [(e.position, e.stream_id) for e in store.read_all()] == [(1, "a"), (2, "b")]


_OPENER = textwrap.dedent("""
    import sys
    import eventlab as el
    print("ready", flush=True)
    sys.stdin.readline()
    with el.connect(sys.argv[1], schema=sys.argv[2]) as store:
        store.append("s", [el.NewEvent({}, type="T")])
""")


@pytest.mark.postgres
def test_processes_creating_one_schema_at_once_all_succeed(pg_url, pg_schema):
    openers = [_spawn(_OPENER, pg_url, pg_schema) for _ in range(6)]
    for o in openers:
        o.stdin.write("go\n")
        o.stdin.flush()
    assert [o.wait(60) for o in openers] == [0] * 6
    with el.connect(pg_url, schema=pg_schema) as store:
        assert store.stream_version("s") == 6


@pytest.mark.postgres
def test_a_password_never_shows(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("create role ada login password 'sesame-42'")
            admin.execute(f'grant usage on schema "{pg_schema}" to ada')
            admin.execute(f'grant select on all tables in schema "{pg_schema}" to ada')
        at = pg_url.index("@")
        url = "postgresql://ada:sesame-42" + pg_url[at:]
        with el.connect(url, schema=pg_schema, read_only=True) as other:
            assert "sesame" not in repr(other) and "ada:***@" in repr(other)
            with pytest.raises(el.ReadOnlyStoreError):
                other.append("s", [el.NewEvent({}, type="T")])
        wrong = "postgresql://ada:wrong-99" + pg_url[at:]
        with pytest.raises(el.EventlabError) as caught:
            el.connect(wrong, schema=pg_schema)
        assert "wrong-99" not in str(caught.value) and "ada:***@" in str(caught.value)
        assert store.head() == 0


@pytest.mark.postgres
def test_a_subscription_hears_another_process_at_once(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store:
        seen: list[int] = []
        sub = el.Subscription(store, lambda e: seen.append(e.position), poll_interval=None)
        writer = subprocess.run(
            [sys.executable, "-c", "import sys, eventlab as el; s = el.connect(sys.argv[1], "
             "schema=sys.argv[2]); [s.append('x', [el.NewEvent({}, type='T')]) "
             "for _ in range(5)]", pg_url, pg_schema], check=True)
        assert writer.returncode == 0
        assert sub.wait_until(5, timeout=10)
        sub.close()
        assert seen == [1, 2, 3, 4, 5]


# -- the same log in DuckDB and PostgreSQL; copies both ways -----------------------------------

def _log(store: el.EventStore) -> list[tuple]:
    return [(e.stream_id, e.version, e.type, e.data, e.metadata, e.event_id, e.recorded_at)
            for e in store.read_all()]


@pytest.mark.postgres
def test_copy_both_ways_twice_keeps_ids_order_versions_and_times(pg_url, pg_schema, tmp_path):
    from datetime import UTC, datetime

    source = el.connect(tmp_path / "source.duckdb")
    el.datasets.bank(n_accounts=30, seed=4, store=source)
    source.append("old", [el.NewEvent({"n": 1}, type="Legacy", metadata={"by": "ada"},
                                      recorded_at=datetime(1850, 1, 2, 3, 4, 5, 6, tzinfo=UTC))])
    source.delete_stream(source.stream_ids()[0])          # a gap in the positions
    shared = el.connect(pg_url, schema=pg_schema)
    assert el.copy(source, shared) == len(_log(source)) > 100
    assert el.copy(source, shared) == 0                   # again: nothing is missing
    local = el.connect(tmp_path / "local.duckdb")
    assert el.copy(shared, local, slice_size=37) == len(_log(source))
    assert el.copy(shared, local) == 0
    assert _log(shared) == _log(source) == _log(local)
    # a copy stopped after its first slice picks up where it stopped
    half = el.connect()
    first_slice = shared.read_arrow(1, 60)
    half.append_batch(first_slice.drop_columns(["position"]))
    assert el.copy(shared, half) == len(_log(source)) - first_slice.num_rows
    assert _log(half) == _log(source)
    for store in (source, shared, local, half):
        store.close()


@pytest.mark.postgres
def test_copy_refuses_a_target_that_holds_other_events_where_the_source_goes(
        pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as shared, el.connect() as local:
        shared.append("a", [el.NewEvent({"n": 1}, type="T"), el.NewEvent({"n": 2}, type="T")])
        local.append("a", [el.NewEvent({"n": 9}, type="T")])
        with pytest.raises(el.ConcurrencyError):
            el.copy(shared, local)
        assert local.stream_version("a") == 1 and local.head() == 1


@pytest.mark.postgres
def test_the_same_log_gives_equal_frames_and_sql_in_duckdb_and_postgres(pg_url, pg_schema):
    with el.connect() as duck, el.connect(pg_url, schema=pg_schema) as pg:
        el.import_log(duck, ROOT / "data" / "receipt" / "receipt.xes.gz")
        el.copy(duck, pg)
        pd.testing.assert_frame_equal(duck.to_df(), pg.to_df())
        stream = duck.stream_ids()[3]
        pd.testing.assert_frame_equal(duck.to_df(stream_id=stream), pg.to_df(stream_id=stream))
        for query in ("select type, count(*) as n, min(recorded_at) as first from events "
                      "group by type order by n desc, type",
                      "select * from events_flat order by position limit 500",
                      "select stream_id, count(*) as n from events group by 1 order by 2 desc, 1"):
            pd.testing.assert_frame_equal(duck.sql(query), pg.sql(query))
        for analytic in (el.analytics.variants, el.analytics.directly_follows,
                         el.analytics.durations):
            pd.testing.assert_frame_equal(analytic(duck), analytic(pg))
        assert duck.to_arrow().equals(pg.to_arrow())


# -- the command line takes a URL wherever it takes a file --------------------------------------

def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "eventlab", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.postgres
def test_every_cli_command_takes_a_postgres_url(postgres_server, pg_schema, tmp_path):
    url = f"{postgres_server.url}?schema={pg_schema}"
    log = str(ROOT / "data" / "running-example" / "running-example.xes")
    printed = _cli("import", log, "--db", url)
    assert "imported 42 events of 6 cases" in printed
    assert "nothing new" in _cli("import", log, "--db", url)
    printed += _cli("info", url)
    assert "6 streams, 42 events, 8 types" in printed
    printed += _cli("sql", "--db", url, "select count(*) as n from events")
    assert printed.rstrip().endswith("42")
    printed += _cli("export", str(tmp_path / "parquet"), "--db", url)
    assert pd.read_parquet(tmp_path / "parquet").shape[0] == 42
    local = str(tmp_path / "local.duckdb")
    printed += _cli("copy", url, local)
    assert "copied 42 events" in printed
    assert "nothing new to copy" in _cli("copy", url, local)
    other = f"{postgres_server.url}?schema={pg_schema}_2"
    printed += _cli("copy", local, other) + _cli("demo", "--db", f"{other}_demo")
    assert "replayed" in printed
    assert postgres_server.password not in printed and ":***@" in printed
    with el.connect(other) as copied, el.connect(local) as kept:
        assert _log(copied) == _log(kept)
        assert len(_log(copied)) == 42


# -- projections follow another process's writes ------------------------------------------------

class _Totals(el.Projection):
    def initial_state(self):
        return {}

    def apply(self, state, event):
        state[event.stream_id] = state.get(event.stream_id, 0) + event.data["n"]
        return state


@pytest.mark.postgres
def test_projections_follow_what_another_process_commits(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store:
        projector = el.Projector(store, _Totals(), name="totals", checkpoint_every=1)
        table = el.SqlProjection(store, "totals_sql", "select stream_id, sum((data->>'n')::int) "
                                 "as n from events group by stream_id", key="stream_id",
                                 combine={"n": "sum"})
        following = [projector.follow(poll_interval=None), table.follow(poll_interval=None)]
        subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import sys, eventlab as el
            store = el.connect(sys.argv[1], schema=sys.argv[2])
            for i in range(60):
                store.append(f"s-{i % 3}", [el.NewEvent({"n": i}, type="N")])
            """), pg_url, pg_schema], check=True)
        for sub in following:
            assert sub.wait_until(60, timeout=20)
        expected = {f"s-{k}": sum(i for i in range(60) if i % 3 == k) for k in range(3)}
        assert projector.state == expected
        assert dict(table.df().sort_values("stream_id").values.tolist()) == expected
        for sub in following:
            sub.close()
        # the checkpoint lives in the database: another process's projector resumes there
        with el.connect(pg_url, schema=pg_schema) as other:
            assert other.load_checkpoint("totals")[0] == 60
            resumed = el.Projector(other, _Totals(), name="totals")
            assert resumed.run() == 0 and resumed.state == expected


@pytest.mark.postgres
def test_a_write_right_after_subscribing_is_heard(pg_url, pg_schema):
    """Subscribing returns once the store listens: a write an instant later still wakes it."""
    with el.connect(pg_url, schema=pg_schema) as other:
        for attempt in range(5):
            with el.connect(pg_url, schema=pg_schema) as store:   # not listening yet
                seen: list[int] = []
                sub = el.Subscription(store, lambda e, seen=seen: seen.append(e.position),
                                      from_position=store.head() + 1, poll_interval=None)
                other.append(f"s-{attempt}", [el.NewEvent({}, type="T")])
                head = other.head()
                assert sub.wait_until(head, timeout=5), f"attempt {attempt}: nothing heard"
                sub.close()
                assert seen == [head]


@pytest.mark.postgres
def test_listeners_hear_each_write_once_whoever_made_it(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store, \
            el.connect(pg_url, schema=pg_schema) as other:
        heard: list[int] = []
        store.add_listener(heard.append)
        store.append("mine", [el.NewEvent({}, type="T")])
        other.append("theirs", [el.NewEvent({}, type="T"), el.NewEvent({}, type="T")])
        store.append_batch(pd.DataFrame({"stream_id": ["mine"] * 100, "type": "T",
                                         "data": ["{}"] * 100}))
        deadline = time.monotonic() + 5
        while len(heard) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)   # time for a second NOTIFY of our own writes, if one were passed on
        assert heard == [1, 3, 103]
        store.remove_listener(heard.append)
