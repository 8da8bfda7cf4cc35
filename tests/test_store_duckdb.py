"""What only the DuckDB store must do: threads, other processes, raw conflicts, files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import pytest

import eventlab as el

from conftest import held_by_another_process
from domain import Counted, Noted, Unstorable

WRITERS, PER_WRITER = 4, 40


def test_four_threads_on_one_stream_lose_and_duplicate_nothing(db_path):
    store = el.connect(db_path)
    store.append("shared", [Noted("start")])
    seen_by_reader: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            done = 0
            while done < PER_WRITER:
                version = store.stream_version("shared")
                try:
                    store.append("shared", [Counted(n, [str(done)])], expected_version=version)
                    done += 1
                except el.ConcurrencyError:
                    pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def reader() -> None:
        last = 0
        while not stop.is_set() or last < store.head():
            for event in store.read_all(from_position=last + 1):
                seen_by_reader.append(event.position)
                last = event.position

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    catch_up = threading.Thread(target=reader)
    catch_up.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    catch_up.join()
    assert errors == []

    events = list(store.read_stream("shared"))
    total = 1 + WRITERS * PER_WRITER
    assert [e.version for e in events] == list(range(1, total + 1))
    written = sorted((e.data.n, int(e.data.tags[0])) for e in events[1:])
    assert written == sorted((n, i) for n in range(WRITERS) for i in range(PER_WRITER))
    # the catch-up reader saw every position once, in order, never skipping one
    assert seen_by_reader == list(range(1, total + 1))
    store.close()


def test_conflict_from_behind_the_cache_is_a_concurrency_error(db_path):
    store = el.connect(db_path)
    store.append("s", [Noted("1")])
    # a row written past the store (as another tool might): the cache still says 1
    store.connection.execute(
        "insert into eventlab_events values (99, 's', 2, 'Noted', '{\"text\":\"x\"}', '{}', "
        "uuid(), now(), 1)")
    with pytest.raises(el.ConcurrencyError) as caught:
        store.append("s", [Noted("mine")], expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert [e.data.text for e in store.read_stream("s")] == ["1", "x"]
    assert store.append("s", [Noted("3")], expected_version=2) == 3
    store.close()


def test_an_uncommitted_rival_never_duplicates_a_version(db_path):
    store = el.connect(db_path)
    store.append("s", [Noted("1")])
    rival = store.connection
    rival.execute("begin")
    rival.execute("insert into eventlab_events values (50, 's', 2, 'Noted', "
                  "'{\"text\":\"theirs\"}', '{}', uuid(), now(), 1)")
    assert store.append("s", [Noted("mine")], expected_version=1) == 2
    with pytest.raises((duckdb.TransactionException, duckdb.ConstraintException)):
        rival.execute("commit")
    assert [e.data.text for e in store.read_stream("s")] == ["1", "mine"]
    store.close()


def test_second_process_gets_a_clear_lock_error(db_path):
    with held_by_another_process(db_path):
        started = time.monotonic()
        with pytest.raises(el.StoreLockedError) as caught:
            el.connect(db_path)
        assert time.monotonic() - started < 5  # at once, not after a timeout
        message = str(caught.value)
        assert "in use by another process" in message
        assert "close the other kernel" in message and "copy the file" in message
        assert str(db_path) in message
        with pytest.raises(el.StoreLockedError):
            el.connect(db_path, read_only=True)
    with el.connect(db_path, read_only=True) as reader, \
            el.connect(db_path, read_only=True) as another:
        assert reader.head() == another.head() == 1


def test_read_only_store_refuses_writes(db_path):
    el.connect(db_path).close()
    with el.connect(db_path, read_only=True) as store, \
            pytest.raises(el.ReadOnlyStoreError, match="read_only=True"):
        store.append("s", [Noted("a")])


def test_fresh_process_reads_every_event_back(db_path):
    writer = textwrap.dedent("""
        import sys
        import eventlab as el
        sys.path.insert(0, sys.argv[2])
        from domain import Noted
        with el.connect(sys.argv[1]) as store:
            for i in range(30):
                store.append(f"s-{i % 3}", [Noted(str(i))])
    """)
    tests_dir = str(__import__("pathlib").Path(__file__).parent)
    subprocess.run([sys.executable, "-c", writer, str(db_path), tests_dir], check=True)
    with el.connect(db_path) as store:
        log = list(store.read_all())
        assert [e.position for e in log] == list(range(1, 31))
        assert [e.data for e in log] == [Noted(str(i)) for i in range(30)]
        assert {s: store.stream_version(s) for s in store.stream_ids()} == {
            "s-0": 10, "s-1": 10, "s-2": 10}
        assert store.append("s-0", [Noted("more")], expected_version=10) == 11


def test_big_batches_go_through_arrow_and_stay_atomic(db_path):
    with el.connect(db_path) as store:
        assert store.append("big", [Counted(i) for i in range(5000)]) == 5000
        assert store.head() == 5000
        with pytest.raises(el.SerializationError):
            store.append("big", [*[Counted(i) for i in range(100)], Unstorable(object())])
        assert store.head() == 5000
        assert [e.data.n for e in store.read_stream("big", from_version=4999)] == [4998, 4999]


def test_closed_store_says_so(db_path):
    store = el.connect(db_path)
    store.close()
    with pytest.raises(el.StoreClosedError):
        store.append("s", [Noted("a")])


def test_events_view_exposes_json(db_path):
    with el.connect(db_path) as store:
        store.append("s", [Counted(2, ["a"])], metadata={"user": "ada"})
        row = store.connection.execute(
            "select data->>'$.n', metadata->>'$.user', typeof(recorded_at) from events"
        ).fetchone()
        assert row == ("2", "ada", "TIMESTAMP WITH TIME ZONE")


def test_not_an_eventlab_file(tmp_path):
    path = tmp_path / "plain.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(el.EventlabError, match="no eventlab event log"):
        el.connect(path, read_only=True)


def test_subscribers_hear_of_writes_through_another_store_object(db_path):
    first, second = el.connect(db_path), el.connect(db_path)
    heard: list[int] = []
    first.add_listener(heard.append)
    second.append("s", [Noted("a")])
    assert heard == [1]
    first.remove_listener(heard.append)
    second.append("s", [Noted("b")])
    assert heard == [1]
    first.close()
    second.close()


def test_a_store_dropped_without_close_leaves_nothing_behind(tmp_path):
    import gc

    for _ in range(5):  # memory stores: a fresh one is always empty
        store = el.connect()
        assert (store.head(), store.stream_version("s")) == (0, 0)
        store.append("s", [Noted("a")], expected_version=el.NO_STREAM)
        del store
        gc.collect()
    path = tmp_path / "dropped.duckdb"
    store = el.connect(path)
    store.append("s", [Noted("a")])
    del store
    gc.collect()
    writer = textwrap.dedent("""
        import sys
        import eventlab as el
        with el.connect(sys.argv[1]) as store:
            store.append("s", [el.NewEvent({"n": i}, type="T") for i in range(3)])
    """)
    subprocess.run([sys.executable, "-c", writer, str(path)], check=True)
    with el.connect(path) as store:  # sees what the other process wrote
        assert (store.head(), store.stream_version("s")) == (4, 4)
        assert store.append("s", [Noted("b")], expected_version=4) == 5
        assert [e.position for e in store.read_all()] == [1, 2, 3, 4, 5]


def test_a_slow_version_read_never_overwrites_a_newer_append(db_path):
    store = el.connect(db_path)
    store.append("s", [Noted("a")])
    store._state.versions.clear()  # as after a conflict or a bulk import
    started, finish = threading.Event(), threading.Event()
    query = store._query_version

    def slow_query(stream_id):
        found = query(stream_id)
        started.set()
        finish.wait(5)
        return found

    store._query_version = slow_query
    reader = threading.Thread(target=store.stream_version, args=("s",))
    reader.start()
    started.wait(5)
    store._query_version = query
    writer = threading.Thread(target=store.append, args=("s", [Noted("b")]))
    writer.start()
    writer.join(0.3)  # the append waits for the reader's fill of the cache
    finish.set()
    reader.join()
    writer.join()
    assert store.stream_version("s") == 2
    assert store.append("s", [Noted("c")], expected_version=2) == 3
    store.close()


def test_closed_store_refuses_reads_of_cached_values(db_path):
    store = el.connect(db_path)
    store.append("s", [Noted("a")])
    store.close()
    with pytest.raises(el.StoreClosedError):
        store.head()
    with pytest.raises(el.StoreClosedError):
        store.stream_version("s")


def test_mixing_modes_in_one_process_is_explained(db_path):
    with el.connect(db_path), pytest.raises(el.StoreLockedError, match="in this process"):
        el.connect(db_path, read_only=True)


def test_a_many_stream_batch_sent_again_is_a_safe_retry(db_path):
    import uuid

    import pyarrow as pa

    rows = pa.table({"stream_id": ["a", "b", "a", "c", "b"], "type": ["T"] * 5,
                     "data": [f'{{"i":{i}}}' for i in range(5)],
                     "event_id": [str(uuid.uuid4()) for _ in range(5)]})
    with el.connect(db_path) as store:
        store.append("b", [Noted("first")])
        store.append_batch(rows)
        before = [(e.position, e.stream_id, e.version) for e in store.read_all()]
        store.append_batch(rows)
        assert [(e.position, e.stream_id, e.version) for e in store.read_all()] == before
        assert {s: store.stream_version(s) for s in "abc"} == {"a": 2, "b": 3, "c": 1}
