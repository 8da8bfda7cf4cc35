"""Process analytics over a store's log, computed in DuckDB SQL, returned as DataFrames.

Every function works on every store (it is SQL over ``store.sql``'s ``events``
view) and treats each stream as a case and each event type as an activity.
Each takes ``filter=`` (an ``eventlab.Filter``) to look at some cases only.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> for case in ("c1", "c2"):
...     _ = store.append(case, [el.NewEvent({}, type="open"), el.NewEvent({}, type="close")])
>>> directly_follows(store)[["source", "target", "count"]].values.tolist()
[['open', 'close', 2]]
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

from .errors import InvalidInputError

if TYPE_CHECKING:
    from .filters import Filter
    from .store.base import EventStore

_UNITS = {"s": "second", "sec": "second", "second": "second", "min": "minute",
          "t": "minute", "minute": "minute", "h": "hour", "hour": "hour", "d": "day",
          "day": "day", "w": "week", "week": "week", "m": "month", "ms": "month",
          "me": "month", "month": "month", "q": "quarter", "quarter": "quarter",
          "y": "year", "a": "year", "ys": "year", "year": "year"}


def _query(store: EventStore, query: str, timedeltas: tuple[str, ...] = (),
           filter: Filter | None = None) -> pd.DataFrame:
    """Run SQL over the store's ``events``; ``timedeltas`` name microsecond columns."""
    frame = store.sql(query, filter=filter)
    for name, dtype in frame.dtypes.items():
        if name in timedeltas:
            frame[name] = pd.to_timedelta(frame[name].astype("float64"), unit="us")
        elif dtype == "Int64" and not frame[name].hasnans:
            frame[name] = frame[name].astype("int64")   # counts as plain numbers
    return frame


def interval(every: str) -> str:
    """A pandas-style period (``"1D"``, ``"6h"``, ``"15min"``, ``"1W"``, ``"1M"``) as a
    DuckDB interval.

    As in pandas, ``ms`` is a millisecond and ``MS`` a month (its start).

    >>> interval("15min"), interval("1D"), interval("2W"), interval("100ms"), interval("1MS")
    ('15 minute', '1 day', '2 week', '100 millisecond', '1 month')
    """
    match = re.fullmatch(r"\s*(\d*)\s*([A-Za-z]+)\s*", every)
    unit = None
    if match:
        unit = ("millisecond" if match.group(2) in ("ms", "millisecond")
                else _UNITS.get(match.group(2).lower()))
    if unit is None:
        raise InvalidInputError(
            f"every={every!r} is not a period; use e.g. '1D', '6h', '15min', '1W', '1M'")
    return f"{int(match.group(1) or 1)} {unit}"


def events_over_time(store: EventStore, every: str = "1D", *,
                     filter: Filter | None = None) -> pd.DataFrame:
    """Events per type in each period: one row per period (empty periods count 0),
    one column per type; the index is the period's start (UTC)."""
    step = interval(every)
    frame = _query(store, f"""
        with counted as (
            select time_bucket(interval '{step}', recorded_at) as period, type,
                   count(*) as events
            from events group by all),
        periods as (
            select unnest(generate_series(min(period), max(period), interval '{step}'))
                   as period from counted)
        select p.period, c.type, coalesce(c.events, 0) as events
        from periods p left join counted c using (period) order by p.period""",
                   filter=filter)
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="period"))
    periods = pd.DatetimeIndex(sorted(frame["period"].unique()))
    counted = frame.dropna(subset=["type"])
    wide = counted.pivot_table(index="period", columns="type", values="events",
                               aggfunc="sum", fill_value=0)
    wide = wide.reindex(periods).fillna(0).astype("int64")
    wide.columns.name = None
    wide.index = pd.DatetimeIndex(wide.index, name="period")
    return wide


def stream_lengths(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """Per stream (case): its number of events, first and last time; longest first."""
    return _query(store, """
        select stream_id, count(*) as events, min(recorded_at) as first,
               max(recorded_at) as last
        from events group by stream_id
        order by events desc, min(position)""", filter=filter)


def durations(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """Every event with the time since the previous event of its stream
    (``since_previous``; missing for a stream's first event)."""
    return _query(store, """
        select position, stream_id, version, type, recorded_at,
               date_diff('microsecond', lag(recorded_at) over w, recorded_at)
                   as since_previous
        from events window w as (partition by stream_id order by version)
        order by position""", ("since_previous",), filter)


def throughput_times(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """Per stream (case): start, end, events and the time from first to last event."""
    return _query(store, """
        select stream_id, min(recorded_at) as start, max(recorded_at) as "end",
               count(*) as events,
               date_diff('microsecond', min(recorded_at), max(recorded_at)) as duration
        from events group by stream_id order by min(position)""", ("duration",), filter)


def directly_follows(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """The directly-follows relation: how often type ``target`` comes right after
    ``source`` in a stream, and the wait between them (``median_duration``,
    ``p90_duration``: nine in ten waits are shorter); most frequent first.

    The quantiles interpolate between waits, as ``pandas.Series.quantile`` does.
    """
    return _query(store, """
        with steps as (
            select type as source, lead(type) over w as target,
                   date_diff('microsecond', recorded_at, lead(recorded_at) over w) as gap
            from events window w as (partition by stream_id order by version))
        select source, target, count(*) as count,
               quantile_cont(gap, 0.5)::bigint as median_duration,
               quantile_cont(gap, 0.9)::bigint as p90_duration
        from steps where target is not null
        group by source, target order by count desc, source, target""",
                  ("median_duration", "p90_duration"), filter)


def start_activities(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """How many cases begin with each type (``count``, ``share`` of all cases);
    most frequent first."""
    return _boundary(store, "arg_min", filter)


def end_activities(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """How many cases end with each type (``count``, ``share`` of all cases); most
    frequent first. A case that ends early (still open, or abandoned) shows here."""
    return _boundary(store, "arg_max", filter)


def _boundary(store: EventStore, pick: str, filter: Filter | None) -> pd.DataFrame:
    frame = _query(store, f"""
        with cases as (select {pick}(type, version) as type, min(position) as first
                       from events group by stream_id)
        select type, count(*) as count from cases
        group by type order by count desc, min(first)""", filter=filter)
    frame["share"] = frame["count"] / frame["count"].sum() if len(frame) else []
    return frame


def bottlenecks(store: EventStore, top: int = 10, min_count: int = 1, *,
                filter: Filter | None = None) -> pd.DataFrame:
    """The steps (directly-follows edges) where cases wait longest in all: ranked by
    ``impact``, the median wait times how often the step is taken. A rare step with
    a long wait can lead the ranking: ``min_count`` leaves out steps taken fewer
    times.

    >>> import eventlab as el
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("c1", [el.NewEvent({}, type="open"), el.NewEvent({}, type="close")])
    >>> bottlenecks(store)[["source", "target", "count"]].values.tolist()
    [['open', 'close', 1]]
    """
    edges = directly_follows(store, filter=filter)
    edges = edges[edges["count"] >= min_count].copy()
    edges["impact"] = edges["median_duration"] * edges["count"]
    ranked = edges.sort_values(["impact", "count"], ascending=False, kind="stable")
    return ranked.head(top).reset_index(drop=True)


def variants(store: EventStore, *, filter: Filter | None = None) -> pd.DataFrame:
    """Process variants: each distinct sequence of types in a stream, how many streams
    follow it (``count``, ``share``) and one example stream; most frequent first."""
    frame = _query(store, """
        with sequences as (
            select stream_id, list(type order by version) as variant, min(position) as first
            from events group by stream_id)
        select variant, count(*) as count, arg_min(stream_id, first) as example,
               len(any_value(variant)) as length
        from sequences group by variant order by count desc, min(first)""", filter=filter)
    if not frame.empty:
        frame["variant"] = [tuple(v) for v in frame["variant"]]
        frame.insert(2, "share", frame["count"] / frame["count"].sum())
    return frame


# Conformance checking (replaying cases through a decider) lives in its own module.
from .conformance import Conformance, conformance  # noqa: E402, F401
