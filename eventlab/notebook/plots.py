"""Pictures of the log: swimlanes, events over time, type counts, stream lengths, a dotted
chart and case durations (the process map is in ``process_maps``).

Each function takes a store, draws with matplotlib (no pyplot state) and
returns the ``Figure``, which shows itself as a PNG in a notebook. Pass
``ax=`` to draw into an existing axes instead, and ``filter=`` (an
``eventlab.Filter``) to draw only the cases it keeps. The numbers come from
``eventlab.analytics`` or SQL over the log; these functions only draw. An event
type has the same colour in every chart of a log (``type_colours``); grey
(``OTHER``) is "other", the rarest types folded together so no bar is a sliver.
Every chart labels both axes; bars are sorted, largest first, unless the title
says otherwise.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [Opened("ada"), Deposited(5.0)])
>>> _ = store.append("a-2", [Opened("bob")])
>>> fig = plot_swimlanes(store)
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
['a-1', 'a-2']
>>> fig = plot_dotted_chart(store, filter=el.Filter(min_events=2))
>>> sum(len(line.get_xdata()) for line in fig.axes[0].lines)
2
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import InvalidInputError
from ..store.base import EventStore
from ..store.frames import sql, to_df
from .render import OTHER, ChartFigure, colours

if TYPE_CHECKING:
    from ..filters import Filter

BARS = "#5f7285"           # histograms of cases: no event type, so none of a type's colours
#: Periods ``plot_events_over_time`` picks from (the shortest giving at most ``_MOST_BARS``
#: bars), with their length in seconds and their name.
_PERIODS = (("1min", 60, "minute"), ("5min", 300, "5 minutes"), ("15min", 900, "15 minutes"),
            ("1h", 3600, "hour"), ("6h", 21600, "6 hours"), ("1D", 86400, "day"),
            ("1W", 604800, "week"), ("1M", 2629746, "month"), ("1Y", 31556952, "year"))
_MOST_BARS = 100


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    return ChartFigure(figsize=figsize, layout="constrained").add_subplot()


def type_colours(store: EventStore, names: Iterable[str]) -> dict[str, str]:
    """Each of ``names`` coloured as in every chart of the log: ``render.colours`` over all
    the log's types in order of first appearance, so a filter changes no colour.

    >>> import eventlab as el
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("c1", [el.NewEvent({}, type="open"), el.NewEvent({}, type="close")])
    >>> type_colours(store, ["close"]) == {"close": colours(["open", "close"])["close"]}
    True
    """
    wanted = list(names)
    if not wanted:
        return {}
    order = sql(store, "select type from events group by type order by min(position)")
    every = colours([*order["type"], *wanted])
    return {n: every[n] for n in wanted}


def plot_swimlanes(store: EventStore, streams: Sequence[str] | None = None, *, limit: int = 6,
                   x: str = "position", labels: bool | None = None,
                   filter: Filter | None = None, ax: Axes | None = None) -> Figure:
    """A timeline of a few streams, Event Modeling style: one lane per stream.

    Time runs left to right (``x="position"``, the global order, or
    ``x="time"``, ``recorded_at``); each event is a box coloured by its type.
    ``streams`` defaults to the first ``limit`` streams of the log (with a
    ``filter``, of the cases it keeps; given ``streams`` are then narrowed to
    those). ``labels`` writes each event's type next to it (default: when there
    are few events).
    """
    if x not in ("position", "time"):
        raise InvalidInputError(f"x must be 'position' or 'time', got {x!r}")
    if filter is None:
        streams = list(streams) if streams is not None else store.stream_ids()[:limit]
    else:
        kept = filter.stream_ids(store)
        if streams is None:
            streams = kept[:limit]
        else:
            keep = set(kept)
            streams = [s for s in streams if s in keep]
    frames = [to_df(store, stream_id=s) for s in streams]
    ax = _axes(ax, (9.0, 0.7 * max(len(streams), 1) + 1.4))
    column = "position" if x == "position" else "recorded_at"
    palette = type_colours(store, dict.fromkeys(t for df in frames for t in df["type"]))
    total = sum(len(df) for df in frames)
    labels = total <= 40 if labels is None else labels
    for lane in range(len(streams)):
        ax.axhline(lane, color="#dddddd", linewidth=1, zorder=0)
    for kind, colour in palette.items():
        xs, ys = [], []
        for lane, df in enumerate(frames):
            picked = df[df["type"] == kind]
            xs.extend(picked[column])
            ys.extend([lane] * len(picked))
        ax.scatter(xs, ys, marker="s", s=120, color=colour, label=kind, zorder=2,
                   edgecolors="white")
    if labels:
        for lane, df in enumerate(frames):
            for at, kind in zip(df[column], df["type"], strict=True):
                ax.annotate(kind, (at, lane), xytext=(0, 9), textcoords="offset points",
                            ha="center", fontsize=7)
    ax.set_yticks(range(len(streams)), labels=streams)
    ax.set_ylim(len(streams) - 0.5, -0.7)
    ax.set_ylabel("stream")
    ax.set_xlabel("global position" if x == "position" else "recorded at (UTC)")
    ax.set_title(f"{len(streams)} streams, {total} events")
    if palette:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax.figure


def folded(counts: pd.Series, top: int | None, min_share: float = 0.0) -> tuple[pd.Series, int]:
    """``counts`` (by name, largest first) with all but the ``top`` largest, and those under
    ``min_share`` of the total, summed into one last entry ``"other"``; and how many
    names went into it (0: nothing folded). A single name is never folded (it would
    be an "other" of one).

    >>> folded(pd.Series({"a": 50, "b": 30, "c": 10, "d": 9, "e": 1}), 3, min_share=0.05)
    (a        50
    b        30
    c        10
    other    10
    dtype: int64, 2)
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InvalidInputError(f"top must be a whole number from 1 up (or None), got {top!r}")
    big = int((counts >= min_share * counts.sum()).sum()) if min_share else len(counts)
    keep = min(big, len(counts) if top is None else top)
    if len(counts) - keep < 2:
        return counts, 0
    return (pd.concat([counts.iloc[:keep], pd.Series({"other": counts.iloc[keep:].sum()})]),
            len(counts) - keep)


def period_for(store: EventStore, filter: Filter | None = None) -> str:
    """The shortest of minute, 5 and 15 minutes, hour, 6 hours, day, week, month and year
    that splits the log's time span into at most 100 periods.

    >>> import eventlab as el
    >>> from datetime import UTC, datetime
    >>> store = el.InMemoryEventStore()
    >>> at = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 31)]
    >>> _ = store.append("s", [el.NewEvent({}, type="T", recorded_at=t) for t in at])
    >>> period_for(store)
    '1D'
    """
    span = sql(store, "select date_diff('second', min(recorded_at), max(recorded_at)) as s "
                      "from events", filter=filter)["s"]
    seconds = 0 if span.isna().all() else int(span.iloc[0])
    return next((name for name, length, _ in _PERIODS if seconds / length < _MOST_BARS),
                _PERIODS[-1][0])


def plot_events_over_time(store: EventStore, every: str | None = None, *, top: int = 8,
                          min_share: float = 0.02, filter: Filter | None = None,
                          ax: Axes | None = None) -> Figure:
    """Stacked bars: how many events of each type were recorded in each period.

    ``every`` is a pandas-style period ("15min", "6h", "1D", "1W", "1M"; see
    ``eventlab.analytics.events_over_time``); by default the shortest of minute
    ... year giving at most 100 bars (``period_for``). One bar container per
    type, the most frequent at the bottom of the stack; past the ``top`` most
    frequent types, and types with less than ``min_share`` of the events (thin
    slivers), the rest are stacked, in grey, as "other".
    """
    from .. import analytics

    every = period_for(store, filter) if every is None else every
    wide = analytics.events_over_time(store, every, filter=filter)
    totals, rest = folded(wide.sum().sort_values(ascending=False, kind="stable"), top,
                          min_share)
    if rest:
        kept = list(totals.index[:-1])
        wide = wide[kept].assign(other=wide.drop(columns=kept).sum(axis=1))
    ax = _axes(ax, (9.0, 3.4))
    palette = type_colours(store, [c for c in totals.index if not (rest and c == "other")])
    if rest:
        palette["other"] = OTHER
    xs = list(range(len(wide.index)))
    bottom = [0] * len(xs)
    for kind, colour in palette.items():
        counts = wide[kind].tolist()
        label = f"other ({rest} types)" if rest and kind == "other" else kind
        ax.bar(xs, counts, bottom=bottom, color=colour, label=label, width=0.9)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ticks = xs[:: max(1, math.ceil(len(xs) / 8))]
    ax.set_xticks(ticks, labels=[wide.index[i].strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")
                                 for i in ticks], rotation=30, ha="right", fontsize=8)
    name = next((n for e, _, n in _PERIODS if e == every), f"period of {every}")
    ax.set_xlabel(f"{name} starting (UTC)")
    ax.set_ylabel(f"events per {name}")
    ax.set_title(f"{int(sum(bottom)):,} events in {len(xs)} {name}s"
                 + (", most frequent type at the bottom" if len(palette) > 1 else ""))
    if palette:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize=8, frameon=False)       # as stacked: the top of the stack on top
    return ax.figure


def plot_type_counts(store: EventStore, *, top: int | None = 20, filter: Filter | None = None,
                     ax: Axes | None = None) -> Figure:
    """Horizontal bars: how many events of each type the log holds, most frequent on top,
    each labelled with its count; past the ``top`` most frequent types (``None``:
    all), the rest as one grey bar, "other (k types)", at the bottom."""
    counts = sql(store, "select type, count(*) as events from events group by type "
                       "order by events desc, min(position)", filter=filter)
    shown, rest = folded(pd.Series(counts["events"].to_numpy(), index=counts["type"]), top)
    kinds = list(shown.index)
    palette = type_colours(store, kinds[:-1] if rest else kinds)
    labels = [f"other ({rest} types)" if rest and k == "other" else k for k in kinds]
    ax = _axes(ax, (7.0, 0.3 * max(len(kinds), 1) + 1.2))
    bars = ax.barh(range(len(kinds)), shown.tolist(),
                   color=[palette.get(k, OTHER) for k in kinds])
    ax.bar_label(bars, labels=[f"{n:,}" for n in shown.tolist()], fontsize=7, padding=2)
    ax.set_yticks(range(len(kinds)), labels=labels)
    ax.set_ylim(len(kinds) - 0.4, -0.6)
    ax.margins(x=0.08)
    ax.set_xlabel("events")
    ax.set_ylabel("event type")
    ax.set_title(f"{len(counts)} event types, most frequent first")
    return ax.figure


def plot_stream_lengths(store: EventStore, bins: int = 30, *, filter: Filter | None = None,
                        ax: Axes | None = None) -> Figure:
    """A histogram of how many events each stream (case) has: one bar per length when
    there are at most ``bins`` lengths (each bar labelled with its count), else
    ``bins`` bars."""
    from .. import analytics

    lengths = analytics.stream_lengths(store, filter=filter)["events"].to_numpy()
    ax = _axes(ax, (7.0, 3.2))
    if len(lengths):
        low, high = int(lengths.min()), int(lengths.max())
        each = high - low + 1 <= bins
        edges = np.arange(low, high + 2) - 0.5 if each else bins
        _, _, bars = ax.hist(lengths, bins=edges, color=BARS, edgecolor="white")
        if each:
            ax.bar_label(bars, labels=[f"{int(b.get_height()):,}" if b.get_height() else ""
                                       for b in bars], fontsize=7, padding=1)
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"{len(lengths):,} streams, mean {lengths.mean():.1f} events")
    else:
        ax.set_title("no streams")
    ax.set_xlabel("events in the stream")
    ax.set_ylabel("streams")
    return ax.figure


def plot_dotted_chart(store: EventStore, *, filter: Filter | None = None,
                      ax: Axes | None = None) -> Figure:
    """Every event as a dot: time on x, its case on y (cases in order of their first
    event, the first on top), coloured by type.

    The events are read in one SQL query and drawn as one line of dots per type
    (``ax.lines``, rasterized, so a big log stays a small PNG); the legend names
    every type drawn, in order of first appearance.
    """
    frame = sql(store, """
        with firsts as (select stream_id, min(recorded_at) as first_at, min(position) as first
                        from events group by stream_id),
             ranked as (select stream_id, row_number() over (order by first_at, first) - 1
                               as case_no from firsts)
        select e.recorded_at, e.type, r.case_no
        from events e join ranked r using (stream_id) order by e.position""", filter=filter)
    codes, kinds = pd.factorize(frame["type"])
    palette = type_colours(store, kinds)
    ax = _axes(ax, (9.5, max(4.5, 0.17 * len(kinds) + 1.2)))
    times = frame["recorded_at"].dt.tz_convert(None).to_numpy() if len(frame) else \
        np.array([], dtype="datetime64[us]")
    cases = frame["case_no"].to_numpy(dtype="int64")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(kinds) + 1))
    for k, kind in enumerate(kinds):           # one line of dots per type: fast to draw
        picked = order[bounds[k]:bounds[k + 1]]
        ax.plot(times[picked], cases[picked], ls="none", marker=".", markersize=2.5,
                markeredgewidth=0, color=palette[kind], label=kind, rasterized=True)
    total = int(cases.max()) + 1 if len(cases) else 0
    ax.set_ylim(total - 0.5 if total else 1, -0.5)
    ax.set_ylabel("cases, by first event")
    ax.set_xlabel("time (UTC)")
    if len(frame):
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_title(f"{len(frame):,} events in {total:,} cases")
    if len(kinds):
        handles = [Line2D([], [], ls="none", marker="o", markersize=5, color=palette[k],
                          label=k) for k in kinds]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                  frameon=False, ncols=1 if len(kinds) <= 32 else 2, labelspacing=0.3,
                  handletextpad=0.2, borderaxespad=0.2)
    return ax.figure


def human_duration(value: Any) -> str:
    """A wait in a unit a person reads at a glance.

    >>> [human_duration(pd.Timedelta(s, unit="s")) for s in (12, 2700, 11520, 276480)]
    ['12 s', '45 min', '3.2 h', '3.2 d']
    """
    if value is None or pd.isna(value):
        return "–"
    seconds = pd.Timedelta(value).total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def duration_unit(seconds: float) -> tuple[str, float]:
    """A unit for durations around ``seconds`` and its length in seconds.

    >>> duration_unit(90), duration_unit(5400), duration_unit(3 * 86400)
    (('seconds', 1.0), ('minutes', 60.0), ('days', 86400.0))
    """
    if seconds < 120:
        return "seconds", 1.0
    if seconds < 2 * 3600:
        return "minutes", 60.0
    if seconds < 2 * 86400:
        return "hours", 3600.0
    return "days", 86400.0


#: Ticks of a log-scaled duration axis: seconds and how a reader says them.
_TICKS = ((1, "1 s"), (10, "10 s"), (60, "1 min"), (600, "10 min"), (3600, "1 h"),
          (6 * 3600, "6 h"), (86400, "1 d"), (7 * 86400, "1 wk"), (30 * 86400, "30 d"),
          (365 * 86400, "1 yr"), (3650 * 86400, "10 yr"))


def plot_case_durations(store: EventStore, bins: int = 30, *, filter: Filter | None = None,
                        ax: Axes | None = None) -> Figure:
    """A histogram of how long cases take, first event to last (``throughput_times``); the
    title gives the number of cases and the median, a dashed line marks the median.

    Durations spread over more than two orders of magnitude (a long tail: minutes
    for most cases, months for a few) go on a log-scaled axis with ticks in
    human units (1 min, 1 h, 1 d, 1 wk, ...), each bar covering the same ratio of
    durations, so the short cases are not all in the first bar; cases that took
    no time (a single event) get a bar of their own, "0", at the left. ``bins``
    is then the number of bars in all. Otherwise the axis is linear, in
    seconds, minutes, hours or days, whichever suits the longer cases (the 90th
    percentile).
    """
    from .. import analytics

    durations = analytics.throughput_times(store, filter=filter)["duration"]
    ax = _axes(ax, (7.0, 3.2))
    ax.set_ylabel("cases")
    if durations.empty:
        ax.set_title("no cases")
        ax.set_xlabel("case duration")
        return ax.figure
    median = durations.median()
    seconds = durations.dt.total_seconds().to_numpy()
    positive = seconds[seconds > 0]
    if len(positive) and positive.max() > 100 * positive.min():
        _log_histogram(ax, positive, len(seconds) - len(positive), bins)
        length = 1.0
    else:
        unit, length = duration_unit(durations.quantile(0.9).total_seconds())
        ax.hist(seconds / length, bins=bins, color=BARS, edgecolor="white")
        ax.set_xlabel(f"case duration ({unit})")
    if median > pd.Timedelta(0):
        ax.axvline(median.total_seconds() / length, color="#222222", linestyle="--",
                   linewidth=1, label=f"median {human_duration(median)}")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_title(f"{len(seconds):,} cases, median {human_duration(median)}")
    return ax.figure


def _log_histogram(ax: Axes, positive: np.ndarray, zeros: int, bins: int) -> None:
    """Bars of equal ratio from the shortest to the longest duration (seconds, log axis),
    and a "0" bar, apart at the left, for the ``zeros`` cases that took no time."""
    from matplotlib.ticker import FixedLocator, NullLocator

    n = max(1, bins - (1 if zeros else 0))
    edges = np.geomspace(positive.min(), positive.max(), n + 1)
    counts, edges = np.histogram(positive, edges)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BARS,
           edgecolor="white", linewidth=0.5)
    ax.set_xscale("log")
    ticks = [(at, text) for at, text in _TICKS if edges[0] <= at <= edges[-1] * 1.5]
    if zeros:
        step = edges[1] / edges[0]
        left, right = edges[0] / step ** 2.5, edges[0] / step ** 1.5     # a gap of half a bar
        ax.bar(left, zeros, width=right - left, align="edge", color=BARS, edgecolor="white",
               hatch="//", linewidth=0.5)
        ticks.insert(0, (math.sqrt(left * right), "0"))
    ax.xaxis.set_major_locator(FixedLocator([at for at, _ in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([text for _, text in ticks])
    ax.set_xlabel("case duration (log scale)")
