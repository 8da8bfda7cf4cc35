"""The event-store contract: one test suite every store must pass.

Subclass ``StoreContract`` and define ``make_store``; the DuckDB stores (memory and
file) and the in-memory store each run every test here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

import eventlab as el

from domain import Counted, Noted, Unstorable


class StoreContract:
    """Tests of behaviour every store shares."""

    @pytest.fixture
    def store(self, tmp_path):
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def make_store(self, tmp_path) -> el.EventStore:
        raise NotImplementedError

    # -- append and read back ------------------------------------------------------------

    def test_empty_store(self, store):
        assert store.head() == 0
        assert store.stream_version("nothing") == 0
        assert list(store.read_stream("nothing")) == []
        assert list(store.read_all()) == []

    def test_append_returns_new_version_and_reads_back(self, store):
        assert store.append("s-1", [Noted("a"), Noted("b")], expected_version=el.NO_STREAM) == 2
        assert store.append("s-1", [Counted(3, ["x"])], expected_version=2) == 3
        events = list(store.read_stream("s-1"))
        assert [e.version for e in events] == [1, 2, 3]
        assert [e.data for e in events] == [Noted("a"), Noted("b"), Counted(3, ["x"])]
        assert [e.type for e in events] == ["Noted", "Noted", "Counted"]
        assert all(e.stream_id == "s-1" for e in events)
        assert store.stream_version("s-1") == 3

    def test_envelope_fields(self, store):
        before = datetime.now(UTC)
        store.append("s-1", [Noted("a")], metadata={"user": "ada"})
        (e,) = store.read_stream("s-1")
        assert isinstance(e, el.RecordedEvent)
        assert e.position == 1
        assert e.metadata == {"user": "ada"}
        assert isinstance(e.event_id, uuid.UUID)
        assert e.recorded_at.tzinfo is not None
        assert e.recorded_at.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= e.recorded_at <= datetime.now(UTC)

    def test_new_event_sets_metadata_id_and_time(self, store):
        event_id = uuid.uuid4()
        at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        store.append("s-1", [el.NewEvent(Noted("a"), metadata={"k": 1}, event_id=event_id,
                                         recorded_at=at)], metadata={"user": "ada"})
        (e,) = store.read_stream("s-1")
        assert e.event_id == event_id
        assert e.recorded_at == at
        assert e.recorded_at.utcoffset() == timedelta(0)
        assert e.metadata == {"user": "ada", "k": 1}

    def test_dict_payload_needs_a_type_and_reads_back_as_dict(self, store):
        store.append("s-1", [el.NewEvent({"amount": 3}, type="Legacy")])
        (e,) = store.read_stream("s-1")
        assert (e.type, e.data) == ("Legacy", {"amount": 3})
        with pytest.raises(el.InvalidEventError, match="type name"):
            store.append("s-1", [el.NewEvent({"amount": 3})])

    def test_unregistered_type_reads_back_as_dict(self, store):
        registry = el.EventRegistry()  # knows no classes
        store.append("s-1", [Counted(1, ["a"])])
        raw = [registry.decode(e.type, el.events.dumps(e.data)) for e in store.read_stream("s-1")]
        assert raw == [{"n": 1, "tags": ["a"]}]

    def test_global_positions_increase_across_streams(self, store):
        store.append("a", [Noted("1")])
        store.append("b", [Noted("2"), Noted("3")])
        store.append("a", [Noted("4")])
        log = list(store.read_all())
        assert [e.position for e in log] == [1, 2, 3, 4]
        assert [(e.stream_id, e.version) for e in log] == [("a", 1), ("b", 1), ("b", 2), ("a", 2)]
        assert store.head() == 4

    def test_ranges_are_inclusive(self, store):
        store.append("s", [Noted(str(i)) for i in range(1, 6)])
        middle = store.read_stream("s", from_version=2, to_version=4)
        assert [e.version for e in middle] == [2, 3, 4]
        assert [e.position for e in store.read_all(from_position=3)] == [3, 4, 5]
        assert [e.position for e in store.read_all(from_position=2, limit=2)] == [2, 3]
        assert [e.position for e in store.read_all(from_position=0)] == [1, 2, 3, 4, 5]

    def test_read_all_filters_types(self, store):
        store.append("s", [Noted("a"), Counted(1), Noted("b")])
        assert [e.position for e in store.read_all(types=["Counted"])] == [2]
        assert [e.position for e in store.read_all(types=[Noted])] == [1, 3]
        assert [e.position for e in store.read_all(from_position=2, types="Noted")] == [3]

    def test_empty_append_checks_but_writes_nothing(self, store):
        assert store.append("s", [], expected_version=el.NO_STREAM) == 0
        assert store.head() == 0
        with pytest.raises(el.ConcurrencyError):
            store.append("s", [], expected_version=el.STREAM_EXISTS)

    # -- optimistic concurrency --------------------------------------------------------

    @pytest.mark.parametrize("expected, actual_before", [
        (el.NO_STREAM, 1), (el.STREAM_EXISTS, 0), (0, 1), (2, 1), (5, 1)])
    def test_conflicts_raise_and_write_nothing(self, store, expected, actual_before):
        if actual_before:
            store.append("s", [Noted("first")])
        head = store.head()
        with pytest.raises(el.ConcurrencyError) as caught:
            store.append("s", [Noted("x")], expected_version=expected)
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "s", expected, actual_before)
        assert store.stream_version("s") == actual_before
        assert store.head() == head

    @pytest.mark.parametrize("expected, actual_before", [
        (el.ANY, 0), (el.ANY, 2), (el.NO_STREAM, 0), (el.STREAM_EXISTS, 2), (2, 2), (0, 0)])
    def test_matching_expectations_append(self, store, expected, actual_before):
        if actual_before:
            store.append("s", [Noted("1"), Noted("2")])
        assert store.append("s", [Noted("x")], expected_version=expected) == actual_before + 1

    def test_stale_writer_loses(self, store):
        store.append("s", [Noted("1")])
        seen = store.stream_version("s")
        store.append("s", [Noted("2")], expected_version=seen)
        with pytest.raises(el.ConcurrencyError, match=r"expected version 1.*at version 2"):
            store.append("s", [Noted("3")], expected_version=seen)

    # -- idempotent retries -------------------------------------------------------------

    def test_retry_with_same_event_ids_is_a_no_op(self, store):
        batch = [el.NewEvent(Noted("a"), event_id=uuid.uuid4()),
                 el.NewEvent(Noted("b"), event_id=uuid.uuid4())]
        assert store.append("s", batch, expected_version=el.NO_STREAM) == 2
        assert store.append("s", batch, expected_version=el.NO_STREAM) == 2
        assert store.append("s", batch) == 2
        assert store.head() == 2
        assert [e.event_id for e in store.read_stream("s")] == [b.event_id for b in batch]

    def test_reused_event_id_elsewhere_in_stream_conflicts(self, store):
        first = el.NewEvent(Noted("a"), event_id=uuid.uuid4())
        store.append("s", [first, Noted("b")])
        with pytest.raises(el.ConcurrencyError):
            store.append("s", [el.NewEvent(Noted("c"), event_id=uuid.uuid4()), first])
        assert store.stream_version("s") == 2

    # -- several streams at once ----------------------------------------------------------

    def test_append_many_writes_every_stream_in_order_or_none(self, store):
        store.append("b", [Noted("old")])
        assert store.append_many([("a", [Noted("1"), Noted("2")], el.NO_STREAM),
                                  ("b", [Noted("3")], 1),
                                  ("a", [Noted("4")], 2)]) == [2, 2, 3]
        assert [(e.stream_id, e.version, e.data.text) for e in store.read_all(2)] == [
            ("a", 1, "1"), ("a", 2, "2"), ("b", 2, "3"), ("a", 3, "4")]
        with pytest.raises(el.ConcurrencyError, match="'b'"):
            store.append_many([("a", [Noted("5")], 3), ("b", [Noted("6")], 1)])
        with pytest.raises(el.SerializationError, match=r"append #2 \(stream 'b'\)"):
            store.append_many([("a", [Noted("5")], 3), ("b", [Unstorable(object())], 2)])
        assert store.head() == 5 and store.stream_version("a") == 3

    def test_append_many_again_with_its_ids_is_a_no_op(self, store):
        appends = [("a", [el.NewEvent(Noted("1"), event_id=uuid.uuid4())], el.NO_STREAM),
                   ("b", [el.NewEvent(Noted("2"), event_id=uuid.uuid4())], el.NO_STREAM)]
        assert store.append_many(appends) == [1, 1]
        assert store.append_many(appends) == [1, 1]
        assert store.head() == 2
        same = uuid.uuid4()
        with pytest.raises(el.InvalidInputError, match="same event_id"):
            store.append_many([("c", [el.NewEvent(Noted("3"), event_id=same)], el.ANY),
                               ("d", [el.NewEvent(Noted("4"), event_id=same)], el.ANY)])
        with pytest.raises(el.InvalidInputError, match="expected_version"):
            store.append_many([("c", [Noted("3")])])
        assert store.append_many([]) == [] and store.head() == 2

    # -- all or nothing -------------------------------------------------------------------

    def test_unserializable_second_event_writes_nothing(self, store):
        store.append("s", [Noted("kept")])
        with pytest.raises(el.SerializationError, match="event #2"):
            store.append("s", [Noted("a"), Unstorable(object()), Noted("c")])
        assert [e.data for e in store.read_all()] == [Noted("kept")]
        assert store.head() == 1
        assert store.append("s", [Noted("next")], expected_version=1) == 2

    def test_unserializable_metadata_writes_nothing(self, store):
        with pytest.raises(el.SerializationError, match="metadata"):
            store.append("s", [Noted("a")], metadata={"when": object()})
        assert store.head() == 0

    # -- bad input ----------------------------------------------------------------------

    @pytest.mark.parametrize("bad", ["", None, 7, b"bytes", ("a",)])
    def test_bad_stream_ids(self, store, bad):
        with pytest.raises(el.InvalidInputError, match="stream id"):
            store.append(bad, [Noted("a")])
        assert store.head() == 0

    @pytest.mark.parametrize("bad", ["", None, 5])
    def test_bad_stream_ids_everywhere(self, store, bad):
        store.append("s", [Noted("a")])
        for call in (store.stream_version, store.delete_stream, lambda s: list(
                store.read_stream(s))):
            with pytest.raises(el.InvalidInputError, match="stream id"):
                call(bad)
        assert store.head() == 1

    @pytest.mark.parametrize("bad", [-1, "ANY", 1.0, True, None, "no_stream"])
    def test_bad_expected_versions(self, store, bad):
        with pytest.raises(el.InvalidInputError, match="expected_version"):
            store.append("s", [Noted("a")], expected_version=bad)
        assert store.head() == 0

    @pytest.mark.parametrize("bad", [{"amount": 1}, "text", 42, object()])
    def test_non_dataclass_events(self, store, bad):
        with pytest.raises(el.InvalidEventError, match=r"not an event|type name"):
            store.append("s", [Noted("ok"), bad])
        assert store.head() == 0

    def test_events_must_be_a_list(self, store):
        with pytest.raises(el.InvalidInputError, match="list of events"):
            store.append("s", Noted("a"))

    def test_bad_ranges(self, store):
        with pytest.raises(el.InvalidInputError, match="from_position"):
            list(store.read_all(from_position=-1))
        with pytest.raises(el.InvalidInputError, match="from_version"):
            list(store.read_stream("s", from_version="1"))

    @pytest.mark.parametrize("stream_id", [
        "it's", 'say "hi"', "a; drop table eventlab_events; --", "konto-ümlaut-東京-🙂",
        "back\\slash", "%_wild"])
    def test_stream_ids_are_data_not_sql(self, store, stream_id):
        store.append(stream_id, [Noted("a")], expected_version=el.NO_STREAM)
        store.append("other", [Noted("b")])
        assert [e.data for e in store.read_stream(stream_id)] == [Noted("a")]
        assert store.stream_version(stream_id) == 1
        assert [e.stream_id for e in store.read_all()] == [stream_id, "other"]
        assert store.delete_stream(stream_id) == 1
        assert store.stream_version(stream_id) == 0

    # -- delete ----------------------------------------------------------------------------

    def test_delete_moves_the_generation(self, store):
        before = store.generation
        store.append("a", [Noted("1")])
        assert store.generation == before
        store.delete_stream("a")
        assert store.generation == before + 1

    def test_delete_stream_keeps_positions_increasing(self, store):
        store.append("a", [Noted("1")])
        store.append("b", [Noted("2"), Noted("3")])
        assert store.delete_stream("b") == 2
        assert [e.position for e in store.read_all()] == [1]
        assert store.stream_ids() == ["a"]
        store.append("b", [Noted("again")], expected_version=el.NO_STREAM)
        assert [e.position for e in store.read_all()] == [1, 4]
        assert store.delete_stream("missing") == 0

    # -- snapshots and checkpoints ----------------------------------------------------------

    def test_snapshots_keep_the_latest(self, store):
        assert store.load_snapshot("s", "k") is None
        store.save_snapshot("s", "k", 10, '{"a": 1}')
        store.save_snapshot("s", "k", 20, '{"a": 2}')
        assert store.load_snapshot("s", "k") == (20, '{"a": 2}')

    def test_checkpoints_only_move_forward(self, store):
        store.save_checkpoint("p", 5, '{"n": 5}')
        store.save_checkpoint("p", 7, '{"n": 7}')
        with pytest.raises(el.InvalidInputError, match="cannot move back"):
            store.save_checkpoint("p", 3, "{}")
        assert store.load_checkpoint("p") == (7, '{"n": 7}')
        store.save_checkpoint("p", 0, None, reset=True)
        assert store.load_checkpoint("p") == (0, None)


    def test_a_delete_drops_the_streams_snapshots(self, store):
        store.append("s", [Noted("a")])
        store.save_snapshot("s", "k", 1, "{}")
        store.delete_stream("s")
        assert store.load_snapshot("s", "k") is None

    # -- batches -------------------------------------------------------------------------

    def test_append_batch_continues_each_stream_in_row_order(self, store):
        import pandas as pd

        store.append("a", [Noted("first")])
        rows = pd.DataFrame({"stream_id": ["a", "b", "a", "b"], "type": "Noted",
                             "data": [{"text": t} for t in "wxyz"]})
        assert store.append_batch(rows) == 4
        assert [(e.position, e.stream_id, e.version, e.data) for e in store.read_all()] == [
            (1, "a", 1, Noted("first")), (2, "a", 2, Noted("w")), (3, "b", 1, Noted("x")),
            (4, "a", 3, Noted("y")), (5, "b", 2, Noted("z"))]
        assert store.stream_version("a") == 3 and store.head() == 5

    def test_append_batch_is_all_or_nothing(self, store):
        import pandas as pd

        bad = pd.DataFrame({"stream_id": ["a", "b", ""], "type": "T",
                            "data": ['{"n": 1}', '{"n": 2}', '{"n": 3}']})
        with pytest.raises(el.InvalidInputError, match="row 3"):
            store.append_batch(bad)
        assert store.head() == 0 and list(store.read_all()) == []

    def test_big_appends_keep_given_ids_and_make_the_others(self, store):
        import pandas as pd

        given = {i: uuid.uuid4() for i in range(0, 150, 3)}
        store.append("big", [el.NewEvent(Noted(str(i)), event_id=given.get(i))
                             for i in range(150)])
        rows = pd.DataFrame({"stream_id": "rows", "type": "Noted",
                             "data": [f'{{"text": "{i}"}}' for i in range(150)],
                             "event_id": [str(given[i]).upper()
                                          if i in given else None for i in range(150)]})
        with pytest.raises(el.InvalidInputError, match="already stored in stream 'big'"):
            store.append_batch(rows)
        store.append_batch(rows.assign(event_id=None))
        for stream in ("big", "rows"):
            events = list(store.read_stream(stream))
            assert [e.version for e in events] == list(range(1, 151))
        ids = [e.event_id for e in store.read_all()]
        assert len(set(ids)) == 300
        assert [ids[i] for i in given] == list(given.values())

    def test_append_batch_pins_versions_and_keeps_schema_versions(self, store):
        import pandas as pd

        store.append("a", [Noted("first")])
        rows = pd.DataFrame({"stream_id": ["a", "b", "a"], "type": "Noted",
                             "data": ['{"text": "x"}'] * 3, "version": [2, 1, 3],
                             "schema_version": [1, 1, 1]})
        assert store.append_batch(rows) == 3
        assert [(e.stream_id, e.version) for e in store.read_all()] == [
            ("a", 1), ("a", 2), ("b", 1), ("a", 3)]
        with pytest.raises(el.ConcurrencyError) as caught:   # b is at 1, not 4
            store.append_batch(rows.assign(version=[4, 5, 5]))
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "b", 4, 1)
        assert store.head() == 4
        with pytest.raises(el.InvalidInputError, match=r"row 2.*version must be"):
            store.append_batch(rows.assign(version=[4, 0, 5]))
        old = pd.DataFrame({"stream_id": ["c"], "type": ["Old"], "data": ['{"n": 1}'],
                            "schema_version": [3]})
        store.append_batch(old)
        assert store.read_arrow(stream_id="c").column("schema_version").to_pylist() == [3]

    def test_append_batch_again_with_its_ids_is_a_no_op(self, store):
        import pandas as pd

        ids = [str(uuid.uuid4()) for _ in range(3)]
        rows = pd.DataFrame({"stream_id": ["a", "a", "b"], "type": "T",
                             "data": ['{"n": 1}', '{"n": 2}', '{"n": 3}'], "event_id": ids})
        store.append_batch(rows)
        store.append_batch(rows)
        assert store.head() == 3
        assert [str(e.event_id) for e in store.read_all()] == ids
        elsewhere = rows.assign(stream_id=["c", "c", "c"])
        with pytest.raises(el.InvalidInputError, match="already stored in stream 'a'"):
            store.append_batch(elsewhere)
        assert store.head() == 3

    # -- the log as Arrow ----------------------------------------------------------------

    def test_read_arrow_gives_the_stored_rows_in_a_range(self, store):
        store.append("a", [Noted("1"), Noted("2")], metadata={"who": "ada"})
        store.append("b", [Counted(3)])
        store.append("a", [Noted("4")])
        table = store.read_arrow()
        assert table.column_names == ["position", "stream_id", "version", "type", "data",
                                      "metadata", "event_id", "recorded_at", "schema_version"]
        rows = [(e.position, e.stream_id, e.version, e.type, str(e.event_id), e.recorded_at)
                for e in store.read_all()]
        columns = [table.column(n).to_pylist() for n in (
            "position", "stream_id", "version", "type", "event_id", "recorded_at")]
        assert list(zip(*columns, strict=True)) == rows
        assert table.column("metadata").to_pylist()[0] == '{"who":"ada"}'
        assert store.read_arrow(2, 3).column("position").to_pylist() == [2, 3]
        assert store.read_arrow(stream_id="a").column("version").to_pylist() == [1, 2, 3]
        assert store.read_arrow(types=["Counted"]).column("data").to_pylist() == [
            '{"n":3,"tags":[]}']
        assert store.read_arrow(9).num_rows == 0

    def test_sql_and_frames_see_every_write_and_delete(self, store):
        store.append("a", [Noted("1")])
        assert store.sql("select count(*) as n from events").n.tolist() == [1]
        store.append("b", [Noted("2"), Noted("3")])
        assert store.sql("select count(*) as n from events").n.tolist() == [3]
        store.delete_stream("a")
        assert store.sql("select stream_id from events").stream_id.tolist() == ["b", "b"]
        assert store.to_df(stream_id="b").text.tolist() == ["2", "3"]

    # -- threads and the three rules -----------------------------------------------------

    def test_threads_writing_one_stream_lose_and_duplicate_nothing(self, store):
        """Writers racing on a shared stream (retrying conflicts) and on their own ones."""
        import threading

        acknowledged: list[str] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            for i in range(25):
                text = f"w{n}-{i}"
                while True:
                    version = store.stream_version("shared")
                    try:
                        store.append("shared", [Noted(text)], expected_version=version)
                        break
                    except el.ConcurrencyError:
                        continue
                store.append(f"own-{n}", [Noted(text)])
                with lock:
                    acknowledged.append(text)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shared = list(store.read_stream("shared"))
        assert sorted(e.data.text for e in shared) == sorted(acknowledged)
        assert [e.version for e in shared] == list(range(1, 101))
        log = list(store.read_all())
        assert [e.position for e in log] == list(range(1, 201))
        assert store.head() == 200

    def test_rule_1_a_repeated_reader_never_skips(self, store):
        import threading

        def writer(n: int) -> None:
            for i in range(60):
                store.append(f"s-{n}", [Noted(str(i))] * (1 + i % 3))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        seen: list[int] = []
        while any(t.is_alive() for t in threads):
            seen += [e.position for e in store.read_all(from_position=len(seen) + 1)]
        for t in threads:
            t.join()
        seen += [e.position for e in store.read_all(from_position=len(seen) + 1)]
        assert store.head() == 3 * sum(1 + i % 3 for i in range(60))
        assert seen == list(range(1, store.head() + 1))

    def other_handle(self, store, tmp_path) -> el.EventStore:
        """A second store object on the same log, where the store kind has one."""
        return store

    def test_rule_2_a_delete_is_seen_by_every_handle(self, store, tmp_path):
        from domain import Tally

        other = self.other_handle(store, tmp_path)
        store.append("t-1", [Counted(1), Counted(2)])
        repo = el.Repository(other, Tally())
        assert repo.get("t-1").state == 3 and other.stream_version("t-1") == 2
        store.delete_stream("t-1")
        assert other.stream_version("t-1") == 0
        assert repo.get("t-1").version == 0
        other.append("t-1", [Counted(5)], expected_version=el.NO_STREAM)
        assert repo.get("t-1").state == 5
        assert other.sql("select count(*) as n from events").n.tolist() == [1]

    def test_rule_3_a_closed_store_refuses_reads_and_writes(self, store):
        import pandas as pd

        store.append("s", [Noted("a"), Noted("b")])
        half_read = store.read_all()
        next(half_read)
        store.close()
        refused = [
            lambda: store.append("s", [Noted("c")]),
            lambda: store.append_many([("s", [Noted("c")], el.ANY)]),
            lambda: store.append_batch(pd.DataFrame(
                {"stream_id": ["s"], "type": ["T"], "data": ["{}"]})),
            lambda: list(store.read_stream("s")), lambda: list(store.read_all()),
            lambda: next(half_read), lambda: store.read_arrow(), lambda: store.head(),
            lambda: store.stream_version("s"), lambda: store.stream_ids(),
            lambda: store.delete_stream("s"), lambda: store.to_df(),
            lambda: store.sql("select 1"), lambda: store.save_snapshot("s", "k", 1, "{}"),
            lambda: store.load_snapshot("s", "k"), lambda: store.save_checkpoint("p", 1, None),
            lambda: store.load_checkpoint("p"), lambda: store.locate([uuid.uuid4()]),
        ]
        for number, call in enumerate(refused):
            with pytest.raises(el.StoreClosedError):
                call()
                pytest.fail(f"call #{number} did not refuse")
        store.close()   # twice is harmless
