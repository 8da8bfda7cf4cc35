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


