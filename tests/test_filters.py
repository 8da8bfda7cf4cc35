"""Case filters: each criterion checked against pandas on the receipt log, filters that
combine, every analytic and frame narrowed exactly as a log holding only the kept cases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pandas as pd
import pytest

import eventlab as el
from eventlab import analytics


@pytest.fixture(scope="module")
def cases(receipt) -> pd.DataFrame:
    """Per case, computed with pandas from the events: length, first/last type and time,
    the variant and where the case first appears."""
    df = receipt.to_df().sort_values(["stream_id", "version"])
    grouped = df.groupby("stream_id", sort=False)
    return pd.DataFrame({
        "events": grouped.size(),
        "first_type": grouped["type"].first(),
        "last_type": grouped["type"].last(),
        "first_at": grouped["recorded_at"].min(),
        "last_at": grouped["recorded_at"].max(),
        "variant": grouped["type"].agg(tuple),
        "first": grouped["position"].min(),
    })


def kept(store, f: el.Filter) -> set[str]:
    return set(f.stream_ids(store))


def test_time_keeps_the_cases_contained_in_the_period(receipt, cases):
    start, end = "2011-01-01", "2011-07-01"
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    expected = set(cases.index[(cases.first_at >= lo) & (cases.last_at < hi)])
    assert 0 < len(expected) < len(cases)
    assert kept(receipt, el.Filter(time=(start, end))) == expected
    # an open end, and datetimes instead of text
    assert kept(receipt, el.Filter(time=(datetime(2011, 1, 1, tzinfo=UTC), None))) == \
        set(cases.index[cases.first_at >= lo])
    assert kept(receipt, el.Filter(time=(None, end))) == set(cases.index[cases.last_at < hi])


def test_a_case_crossing_the_end_of_the_period_is_left_out(receipt, cases):
    case = cases.sort_values("first").iloc[0]
    inside = (case.first_at.isoformat(), (case.last_at + pd.Timedelta("1us")).isoformat())
    cut = (case.first_at.isoformat(), case.last_at.isoformat())   # [a, b): b is outside
    assert case.name in kept(receipt, el.Filter(time=inside))
    assert case.name not in kept(receipt, el.Filter(time=cut))


def test_starts_with_and_ends_with_name_the_first_and_last_type(receipt, cases):
    first = cases.first_type.value_counts().index[0]
    ends = list(cases.last_type.value_counts().index[:2])
    assert kept(receipt, el.Filter(starts_with=first)) == \
        set(cases.index[cases.first_type == first])
    assert kept(receipt, el.Filter(ends_with=ends)) == \
        set(cases.index[cases.last_type.isin(ends)])
    assert kept(receipt, el.Filter(starts_with="no such activity")) == set()


def test_min_and_max_events_bound_the_length(receipt, cases):
    assert kept(receipt, el.Filter(min_events=2)) == set(cases.index[cases.events >= 2])
    assert kept(receipt, el.Filter(max_events=1)) == set(cases.index[cases.events <= 1])
    assert kept(receipt, el.Filter(min_events=5, max_events=8)) == \
        set(cases.index[cases.events.between(5, 8)])


def test_variants_top_keeps_the_cases_of_the_most_frequent_variants(receipt, cases):
    counted = cases.groupby("variant").agg(n=("events", "size"), seen=("first", "min"))
    top = counted.sort_values(["n", "seen"], ascending=[False, True]).index[:3]
    expected = set(cases.index[cases.variant.isin(top)])
    assert kept(receipt, el.Filter(variants_top=3)) == expected
    shown = analytics.variants(receipt, filter=el.Filter(variants_top=3))
    assert list(shown["variant"]) == list(top)
    assert list(shown["variant"]) == list(analytics.variants(receipt)["variant"][:3])


def test_variants_top_ranks_what_the_other_criteria_kept(receipt, cases):
    long = cases[cases.events >= 4]
    counted = long.groupby("variant").agg(n=("events", "size"), seen=("first", "min"))
    top = counted.sort_values(["n", "seen"], ascending=[False, True]).index[:2]
    expected = set(long.index[long.variant.isin(top)])
    assert kept(receipt, el.Filter(min_events=4, variants_top=2)) == expected
    assert kept(receipt, el.Filter(min_events=4) & el.Filter(variants_top=2)) == expected
    # the other way round: the top variants of the whole log, then the long ones
    overall = cases.groupby("variant").agg(n=("events", "size"), seen=("first", "min"))
    best = overall.sort_values(["n", "seen"], ascending=[False, True]).index[:2]
    then_long = set(cases.index[cases.variant.isin(best) & (cases.events >= 4)])
    assert kept(receipt, el.Filter(variants_top=2) & el.Filter(min_events=4)) == then_long


def test_streams_and_where(receipt, cases):
    some = list(cases.index[:5])
    assert kept(receipt, el.Filter(streams=some)) == set(some)
    assert kept(receipt, el.Filter(streams=some[0])) == {some[0]}
    activity = cases.last_type.value_counts().index[-1]
    df = receipt.to_df()
    expected = set(df.loc[df["type"] == activity, "stream_id"])
    where = el.Filter(where=f"type = '{activity}'")
    assert kept(receipt, where) == expected
    # whole cases: the kept cases keep their other events too
    assert len(receipt.to_df(filter=where)) == int(df["stream_id"].isin(expected).sum())


def test_filters_combine_with_and_as_an_intersection(receipt):
    a = el.Filter(min_events=3)
    b = el.Filter(time=("2011-01-01", "2011-12-31"))
    c = el.Filter(ends_with=list(analytics.end_activities(receipt)["type"][:3]))
    assert kept(receipt, a & b & c) == kept(receipt, a) & kept(receipt, b) & kept(receipt, c)
    assert kept(receipt, b & a) == kept(receipt, a & b)
    assert b & a == el.Filter(min_events=3, time=("2011-01-01", "2011-12-31"))
    assert "min_events=3" in repr(a & b)


def test_stream_ids_come_in_the_log_order(receipt, cases):
    f = el.Filter(min_events=10)
    assert f.stream_ids(receipt) == list(cases[cases.events >= 10].sort_values("first").index)


def copy_of_cases(store, f: el.Filter) -> el.EventStore:
    """A new store holding only the events of the cases ``f`` keeps, made with pandas."""
    df = store.to_df()
    picked = df[df["stream_id"].isin(set(f.stream_ids(store)))]
    target = el.connect()
    target.append_batch(pd.DataFrame({
        "stream_id": picked["stream_id"], "type": picked["type"],
        "data": ["{}"] * len(picked), "recorded_at": picked["recorded_at"]}))
    return target


@pytest.mark.parametrize("analytic", [
    analytics.variants, analytics.directly_follows, analytics.start_activities,
    analytics.end_activities, analytics.stream_lengths, analytics.throughput_times,
    analytics.bottlenecks, lambda s, filter=None: analytics.events_over_time(s, "1W",
                                                                              filter=filter),
])
def test_every_analytic_sees_only_the_kept_cases(receipt, analytic):
    f = el.Filter(min_events=3) & el.Filter(time=("2011-01-01", "2011-09-01"))
    alone = copy_of_cases(receipt, f)
    narrowed = analytic(receipt, filter=f)
    expected = analytic(alone)
    assert len(narrowed) > 0
    pd.testing.assert_frame_equal(narrowed.drop(columns=["example"], errors="ignore"),
                                  expected.drop(columns=["example"], errors="ignore"),
                                  check_dtype=False)
    alone.close()


def test_frames_and_sql_see_only_the_kept_cases(receipt):
    f = el.Filter(max_events=2)
    ids = set(f.stream_ids(receipt))
    whole = receipt.to_df()
    narrowed = receipt.to_df(filter=f)
    pd.testing.assert_frame_equal(narrowed.reset_index(drop=True),
                                  whole[whole["stream_id"].isin(ids)].reset_index(drop=True),
                                  check_dtype=False)
    assert receipt.to_arrow(filter=f).num_rows == len(narrowed)
    counted = receipt.sql("select count(distinct stream_id) as n, count(*) as e from events",
                          filter=f)
    assert counted.values.tolist() == [[len(ids), len(narrowed)]]
    flat = receipt.sql("select count(*) as e from events_flat", filter=f)
    assert int(flat["e"][0]) == len(narrowed)
    # the store itself is untouched afterwards
    assert receipt.sql("select count(*) as e from events")["e"][0] == len(whole)


def test_a_filter_works_on_every_store(store):
    for case, steps in {"c1": ["open", "close"], "c2": ["open"], "c3": ["open", "check",
                                                                         "close"]}.items():
        store.append(case, [el.NewEvent({"n": i}, type=t) for i, t in enumerate(steps)])
    f = el.Filter(ends_with="close", max_events=2)
    assert f.stream_ids(store) == ["c1"]
    assert store.to_df(filter=f)["type"].tolist() == ["open", "close"]
    assert analytics.variants(store, filter=el.Filter(min_events=2))["count"].tolist() == [1, 1]
    assert store.sql("select count(*) as n from events", filter=f)["n"].tolist() == [2]


def test_start_and_end_activities_match_pandas(receipt, cases):
    starts = analytics.start_activities(receipt)
    assert dict(zip(starts["type"], starts["count"], strict=True)) == \
        dict(Counter(cases.first_type))
    ends = analytics.end_activities(receipt)
    assert dict(zip(ends["type"], ends["count"], strict=True)) == dict(Counter(cases.last_type))
    assert ends["count"].is_monotonic_decreasing
    assert ends["share"].sum() == pytest.approx(1.0)


def test_directly_follows_median_and_p90_match_pandas(receipt):
    df = receipt.to_df().sort_values(["stream_id", "version"])
    df["target"] = df.groupby("stream_id")["type"].shift(-1)
    df["wait"] = df.groupby("stream_id")["recorded_at"].shift(-1) - df["recorded_at"]
    steps = df.dropna(subset=["target"])
    waits = steps.groupby(["type", "target"])["wait"]
    edges = analytics.directly_follows(receipt).set_index(["source", "target"])
    assert len(edges) == waits.ngroups
    for (source, target), series in waits:
        row = edges.loc[(source, target)]
        micros = series.dt.total_seconds() * 1e6
        assert row["count"] == len(series)
        assert abs(row["median_duration"].total_seconds() * 1e6 - micros.quantile(0.5)) <= 1
        assert abs(row["p90_duration"].total_seconds() * 1e6 - micros.quantile(0.9)) <= 1


def test_bottlenecks_rank_by_median_wait_times_count(receipt):
    edges = analytics.directly_follows(receipt)
    impact = edges["median_duration"] * edges["count"]
    expected = edges.assign(impact=impact).sort_values("impact", ascending=False).head(5)
    ranked = analytics.bottlenecks(receipt, top=5)
    assert list(zip(ranked["source"], ranked["target"], strict=True)) == \
        list(zip(expected["source"], expected["target"], strict=True))
    assert ranked["impact"].is_monotonic_decreasing
    assert (analytics.bottlenecks(receipt, min_count=50)["count"] >= 50).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time": ("2011-07-01", "2011-01-01")}, "end is not after the start"),
    ({"time": "2011"}, "pair"),
    ({"time": ("yesterday-ish", None)}, "cannot read"),
    ({"min_events": -1}, "min_events"),
    ({"variants_top": 2.5}, "variants_top"),
    ({"starts_with": []}, "starts_with"),
    ({"streams": [1, 2]}, "streams"),
    ({"where": ""}, "where"),
])
def test_bad_criteria_name_the_problem(kwargs, message):
    with pytest.raises(el.InvalidInputError, match=message):
        el.Filter(**kwargs)


def test_a_bad_where_or_a_non_filter_is_a_clear_error(receipt):
    with pytest.raises(el.InvalidInputError, match="no_such_column"):
        analytics.variants(receipt, filter=el.Filter(where="no_such_column = 1"))
    with pytest.raises(el.InvalidInputError, match=r"eventlab\.Filter"):
        receipt.to_df(filter={"min_events": 2})
    assert receipt.sql("select count(*) as n from events")["n"][0] == receipt.head()


# -- LogView: filter widgets that show what the code chose --------------------------------

def test_logview_filter_widgets_follow_python_and_narrow_every_chart(receipt, cases):
    from eventlab.notebook import LogView

    view = LogView(receipt, kind="type counts", filter=el.Filter(min_events=2))
    assert view.cases == int((cases.events >= 2).sum())
    view.choose(ends_with="T10 Determine necessity to stop indication", variants_top=3)
    assert view.controls.ends_with.value == "T10 Determine necessity to stop indication"
    assert view.controls.variants_top.value == 3
    expected = el.Filter(min_events=2) & el.Filter(
        ends_with="T10 Determine necessity to stop indication", variants_top=3)
    assert view.filter == expected
    assert view.cases == len(expected.stream_ids(receipt))
    assert f'data-cases="{view.cases}"' in view.render()
    bars = view.figure().axes[0].patches
    shown = receipt.to_df(filter=expected)
    assert sum(b.get_width() for b in bars) == len(shown)
    # a widget changed by hand narrows the filter too, and redraws
    before = view._png
    view.controls.min_events.value = 8
    assert view.filter == el.Filter(min_events=2) & el.Filter(
        ends_with="T10 Determine necessity to stop indication", min_events=8, variants_top=3)
    assert view._png != before
    # back to every case the widgets keep
    view.choose()
    assert view.filter == el.Filter(min_events=2)


def test_logview_period_slider_picks_months(receipt, cases):
    from eventlab.notebook import LogView

    view = LogView(receipt, kind="stream lengths")
    view.choose(time=("2011-01-01", "2011-07-01"))
    assert view.controls.period.value == ("2011-01", "2011-07")
    assert set(view.filter.stream_ids(receipt)) == kept(
        receipt, el.Filter(time=("2011-01-01", "2011-07-01")))
    with pytest.raises(el.InvalidInputError, match="no case does"):
        view.choose(starts_with="T99 nothing")
    assert view.controls.period.value == ("2011-01", "2011-07")   # a refused choice changes nothing
