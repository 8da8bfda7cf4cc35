"""Process analytics in DuckDB SQL, checked against pandas on both stores."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import eventlab as el
from eventlab import analytics
from eventlab.store.base import InvalidInputError

from conftest import new_store

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
CASES = {  # case -> [(type, minutes after T0)]
    "c1": [("open", 0), ("check", 30), ("close", 90)],
    "c2": [("open", 60), ("check", 70), ("close", 1500)],
    "c3": [("open", 2900), ("close", 2960)],
}


@pytest.fixture(params=["duckdb", "memory", "postgres"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    rows = [(T0 + timedelta(minutes=m), case, t) for case, steps in CASES.items()
            for t, m in steps]
    rows.sort()
    s.append_batch(pd.DataFrame({"stream_id": [r[1] for r in rows],
                                 "type": [r[2] for r in rows], "data": ["{}"] * len(rows),
                                 "recorded_at": pd.to_datetime([r[0] for r in rows])}))
    yield s
    s.close()


def test_events_over_time_counts_per_day_and_fills_gaps(store):
    daily = analytics.events_over_time(store, every="1D")
    assert list(daily.index) == [pd.Timestamp("2024-05-01", tz="UTC"),
                                 pd.Timestamp("2024-05-02", tz="UTC"),
                                 pd.Timestamp("2024-05-03", tz="UTC")]
    assert daily.to_dict("list") == {"check": [2, 0, 0], "close": [1, 1, 1],
                                     "open": [2, 0, 1]}
    hourly = analytics.events_over_time(store, every="6h")
    assert hourly.to_numpy().sum() == 8
    with pytest.raises(InvalidInputError, match="not a period"):
        analytics.events_over_time(store, every="soon")


def test_stream_lengths_and_throughput(store):
    lengths = analytics.stream_lengths(store)
    assert lengths[["stream_id", "events"]].values.tolist() == [["c1", 3], ["c2", 3],
                                                                 ["c3", 2]]
    times = analytics.throughput_times(store).set_index("stream_id")["duration"]
    assert times.to_dict() == {"c1": pd.Timedelta(minutes=90), "c2": pd.Timedelta(minutes=1440),
                               "c3": pd.Timedelta(minutes=60)}


def test_durations_between_consecutive_events(store):
    df = analytics.durations(store)
    c2 = df[df["stream_id"] == "c2"]["since_previous"].tolist()
    assert pd.isna(c2[0]) and c2[1:] == [pd.Timedelta(minutes=10), pd.Timedelta(minutes=1430)]


def test_directly_follows_counts_and_median(store):
    df = analytics.directly_follows(store).set_index(["source", "target"])
    assert df["count"].to_dict() == {("open", "check"): 2, ("check", "close"): 2,
                                     ("open", "close"): 1}
    assert df.loc[("open", "check"), "median_duration"] == pd.Timedelta(minutes=20)
    assert df.loc[("check", "close"), "median_duration"] == pd.Timedelta(minutes=745)


def test_variants_agree_with_a_python_count(store):
    df = analytics.variants(store)
    expected = Counter(tuple(t for t, _ in steps) for steps in CASES.values())
    assert dict(zip(df["variant"], df["count"], strict=True)) == dict(expected)
    assert df["variant"].iloc[0] == ("open", "check", "close")
    assert df["share"].sum() == pytest.approx(1.0)
    assert df["example"].iloc[0] == "c1"


def test_analytics_on_an_empty_store():
    store = el.InMemoryEventStore()
    assert analytics.events_over_time(store).empty
    assert analytics.variants(store).empty
    assert analytics.directly_follows(store).empty
