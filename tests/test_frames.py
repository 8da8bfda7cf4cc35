"""The log as data: to_df/to_arrow, SQL, Parquet export and batch appends, on both stores."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

import eventlab as el
from eventlab.store.base import InvalidInputError
from eventlab.store.batches import batch_groups

from conftest import DATA, new_store

RUNNING_XES = DATA / "running-example" / "running-example.xes"
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["duckdb-file", "memory", "postgres"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    yield s
    s.close()


def fill(store):
    store.append("a-1", [el.NewEvent({"amount": 5, "who": {"name": "ada", "age": 36}},
                                     type="Deposited", recorded_at=T0,
                                     metadata={"user": "ada"}),
                         el.NewEvent({"amount": 2}, type="Withdrew",
                                     recorded_at=T0 + timedelta(hours=1))])
    store.append("b-1", [el.NewEvent({"note": "hi", "tags": ["x", "y"]}, type="Remarked",
                                     recorded_at=T0 + timedelta(days=1))])


def test_to_df_envelope_and_flattened_payload(store):
    fill(store)
    df = store.to_df()
    assert list(df.columns) == ["position", "stream_id", "version", "type", "recorded_at",
                                "event_id", "metadata", "amount", "note", "tags", "who.age",
                                "who.name"]
    assert df["position"].tolist() == [1, 2, 3]
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert df["recorded_at"].iloc[2] == pd.Timestamp(T0 + timedelta(days=1))
    assert [uuid.UUID(x).version for x in df["event_id"]] == [4, 4, 4]
    assert df["amount"].tolist()[:2] == [5, 2] and pd.isna(df["amount"].iloc[2])
    assert df["who.name"].iloc[0] == "ada" and pd.isna(df["who.name"].iloc[1])
    assert list(df["tags"].iloc[2]) == ["x", "y"]
    assert json.loads(df["metadata"].iloc[0]) == {"user": "ada"}
    assert json.loads(df["metadata"].iloc[1]) == {}


def test_to_df_filters(store):
    fill(store)
    assert store.to_df(stream_id="a-1")["version"].tolist() == [1, 2]
    assert store.to_df(types=["Remarked"])["stream_id"].tolist() == ["b-1"]
    assert store.to_df(from_position=2, to_position=2)["type"].tolist() == ["Withdrew"]
    assert store.to_df(since=T0 + timedelta(minutes=30))["position"].tolist() == [2, 3]
    assert store.to_df(until=T0)["position"].tolist() == [1]
    empty = store.to_df(stream_id="nobody")
    assert len(empty) == 0 and "stream_id" in empty.columns


def test_payload_field_named_like_the_envelope_is_prefixed(store):
    store.append("x", [el.NewEvent({"type": "inner", "version": 7}, type="Outer")])
    df = store.to_df()
    assert df["type"].tolist() == ["Outer"]
    assert df["data.type"].tolist() == ["inner"] and df["data.version"].tolist() == [7]


def test_to_arrow_matches_to_df(store):
    fill(store)
    table = store.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column_names == list(store.to_df().columns)
    assert table.schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")


def roundtrip_view(store):
    return [(e.stream_id, e.version, e.type, e.data, e.metadata, e.recorded_at)
            for e in store.read_all()]


def test_to_df_round_trips_through_import(store):
    fill(store)
    frame = store.to_df()
    for again in (el.InMemoryEventStore(), el.connect()):   # into either kind of store
        with again:
            assert el.import_log(again, frame).written == 3
            assert roundtrip_view(again) == roundtrip_view(store)
            assert [e.event_id for e in again.read_all()] == [
                e.event_id for e in store.read_all()]


def test_real_log_round_trips_through_to_df_and_parquet(tmp_path):
    store = el.connect()
    el.import_log(store, RUNNING_XES)
    from_frame, from_parquet = el.connect(), el.InMemoryEventStore()
    el.import_log(from_frame, store.to_df())
    assert roundtrip_view(from_frame) == roundtrip_view(store)
    out = store.export_parquet(tmp_path / "log")
    el.import_log(from_parquet, out)
    assert roundtrip_view(from_parquet) == roundtrip_view(store)


def test_export_parquet_is_hive_partitioned_and_readable(store, tmp_path):
    fill(store)
    out = store.export_parquet(tmp_path / "log")
    assert sorted(p.name for p in out.iterdir()) == [".eventlab-export.json", "type=Deposited",
                                                     "type=Remarked", "type=Withdrew"]
    back = pd.read_parquet(out).sort_values("position")
    assert back["stream_id"].tolist() == ["a-1", "a-1", "b-1"]
    assert back["type"].astype(str).tolist() == ["Deposited", "Withdrew", "Remarked"]
    counted = duckdb.sql(f"select type, count(*) from read_parquet('{out}/**/*.parquet', "
                         "hive_partitioning = true) group by 1 order by 1").fetchall()
    assert counted == [("Deposited", 1), ("Remarked", 1), ("Withdrew", 1)]
    with pytest.raises(InvalidInputError, match="not empty"):
        store.export_parquet(out)
    assert store.export_parquet(out, overwrite=True).rows == 3
    with pytest.raises(InvalidInputError, match="envelope columns"):
        store.export_parquet(tmp_path / "other", partition_by=["amount"])


def test_sql_over_events_and_events_flat(store):
    fill(store)
    counts = store.sql("select type, count(*) as n from events group by type order by type")
    assert counts.values.tolist() == [["Deposited", 1], ["Remarked", 1], ["Withdrew", 1]]
    total = store.sql("select sum((data->>'amount')::int) as s from events")["s"][0]
    assert total == 7
    flat = store.sql("select sum(amount) as s from events_flat where stream_id = ?", ["a-1"])
    assert flat["s"][0] == 7
    with pytest.raises(InvalidInputError, match="the query failed"):
        store.sql("select nope from events")


# -- append_batch -------------------------------------------------------------------------

def test_append_batch_keeps_order_and_continues_versions(store):
    fill(store)
    rows = pd.DataFrame({"stream_id": ["a-1", "c-1", "a-1"], "type": ["T", "T", "U"],
                         "data": [{"k": 1}, '{"k": 2}', {"k": 3}],
                         "recorded_at": pd.to_datetime([T0, T0, T0], utc=True)})
    assert store.append_batch(rows) == 3
    got = [(e.position, e.stream_id, e.version, e.data) for e in store.read_all(4)]
    assert got == [(4, "a-1", 3, {"k": 1}), (5, "c-1", 1, {"k": 2}), (6, "a-1", 4, {"k": 3})]
    assert store.stream_version("a-1") == 4 and store.head() == 6


def test_append_batch_from_arrow_with_metadata_and_ids(store):
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    table = pa.table({"stream_id": ["s", "s"], "type": ["A", "B"], "data": ["{}", "{}"],
                      "metadata": ['{"m": 1}', None], "event_id": ids})
    store.append_batch(table)
    events = list(store.read_all())
    assert [str(e.event_id) for e in events] == ids
    assert [e.metadata for e in events] == [{"m": 1}, {}]
    assert store.append_batch(table) == 2          # the same ids again: a safe retry
    assert store.head() == 2


@pytest.mark.parametrize(("rows", "message"), [
    ({"stream_id": ["a", ""], "type": ["T", "T"], "data": ["{}", "{}"]},
     "row 2: stream_id is empty"),
    ({"stream_id": ["a", "b"], "type": ["T", None], "data": ["{}", "{}"]},
     "row 2 \\(stream 'b'\\): type is empty"),
    ({"stream_id": ["a", "b"], "type": ["T", "T"], "data": ["{}", "{oops"]},
     "row 2 \\(stream 'b'\\): data is not valid JSON"),
    ({"stream_id": ["a"], "type": ["T"], "data": ["[1]"]}, "data is not a JSON object"),
    ({"stream_id": ["a"], "type": ["T"], "data": ["{}"], "event_id": ["nope"]},
     "event_id is not a UUID"),
    ({"stream_id": ["a"], "type": ["T"]}, "missing \\['data'\\]"),
])
def test_append_batch_rejects_bad_rows_and_writes_nothing(store, rows, message):
    with pytest.raises(InvalidInputError, match=message):
        store.append_batch(pd.DataFrame(rows))
    assert store.head() == 0


def test_batch_groups_are_runs_in_row_order():
    rows = pd.DataFrame({"stream_id": ["a", "a", "b", "a"], "type": ["T"] * 4,
                         "data": ["{}"] * 4})
    groups = batch_groups(rows)
    assert [(sid, len(batch)) for sid, batch in groups] == [("a", 2), ("b", 1), ("a", 1)]
    with pytest.raises(InvalidInputError, match="DataFrame or a pyarrow Table"):
        batch_groups([{"stream_id": "a"}])


def test_a_field_of_different_shapes_across_types_keeps_every_value():
    store = el.connect()
    store.append("s", [el.NewEvent({"amount": 1, "info": {"x": 1}}, type="Whole"),
                       el.NewEvent({"amount": 2.5, "info": "plain"}, type="Part"),
                       el.NewEvent({"amount": None, "note": "n"}, type="Empty")])
    frame = store.to_df()
    assert frame["amount"].tolist()[:2] == [1.0, 2.5]
    assert pd.isna(frame["amount"].tolist()[2])
    info = frame["info"].tolist()
    assert [json.loads(v) for v in info[:2]] == [{"x": 1}, "plain"]  # a JSON column
    assert frame["note"].tolist()[2] == "n"


def test_arrow_and_duckdb_flattening_agree():
    from eventlab.store import frames

    store = el.datasets.orders(n_orders=30, seed=2)
    store.append("odd", [el.NewEvent({"nested": {"deep": {"x": 1}}, "tags": ["a"]}, type="Odd")])
    log = store.read_arrow()
    by_arrow = frames._flatten_in_arrow(log)
    with frames.over_arrow(log) as con:
        by_duckdb = con.sql(frames.flat_select(con)).to_arrow_table()
    assert by_arrow is not None, "these payloads fit Arrow's JSON reader"
    assert sorted(by_arrow.column_names) == sorted(by_duckdb.column_names)
    for name in by_duckdb.column_names:
        assert by_arrow.column(name).to_pylist() == by_duckdb.column(name).to_pylist(), name
