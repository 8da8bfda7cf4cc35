"""Pictures of the log: swimlanes, events over time, type counts, stream lengths, a dotted
chart and case durations (the process map is in ``process_maps``).

Each function takes a store, draws with matplotlib (no pyplot state) and
returns the ``Figure``, which shows itself as a PNG in a notebook. Pass
``ax=`` to draw into an existing axes instead, and ``filter=`` (an
``eventlab.Filter``) to draw only the cases it keeps. The numbers come from
``eventlab.analytics`` or SQL over the log; these functions only draw. An event
type has the same colour in every chart of a log (``type_colours``).

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
from .render import ChartFigure, colours

if TYPE_CHECKING:
    from ..filters import Filter

OTHER = "#bab0ac"          # the colour of "other" (types folded together)


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
    ax.set_xlabel("global position" if x == "position" else "recorded at")
    ax.set_title(f"{len(streams)} streams, {total} events")
    if palette:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax.figure


def plot_events_over_time(store: EventStore, every: str = "1D", *, top: int = 8,
                          filter: Filter | None = None, ax: Axes | None = None) -> Figure:
    """Stacked bars: how many events of each type were recorded in each period.

    ``every`` is a pandas-style period ("15min", "6h", "1D", "1W", "1M"); see
    ``eventlab.analytics.events_over_time``. One bar container per type; past
    the ``top`` most frequent types the rest are stacked as "other".
    """
    from .. import analytics

    wide = analytics.events_over_time(store, every, filter=filter)
    folded = len(wide.columns) > top
    if folded:
        keep = wide.sum().sort_values(ascending=False).index[:top]
        rest = wide.drop(columns=keep).sum(axis=1)
        wide = wide[list(keep)].assign(other=rest)
    ax = _axes(ax, (9.0, 3.4))
    palette = type_colours(store, [c for c in wide.columns if not (folded and c == "other")])
    if folded:
        palette["other"] = OTHER
    xs = list(range(len(wide.index)))
    bottom = [0] * len(xs)
    for kind, colour in palette.items():
        counts = wide[kind].tolist()
        ax.bar(xs, counts, bottom=bottom, color=colour, label=kind, width=0.9)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ticks = xs[:: max(1, math.ceil(len(xs) / 8))]
    ax.set_xticks(ticks, labels=[wide.index[i].strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")
                                 for i in ticks], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"events per {every}")
    ax.set_title(f"{int(sum(bottom))} events over {len(xs)} periods")
    if palette:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax.figure


def plot_type_counts(store: EventStore, *, filter: Filter | None = None,
                     ax: Axes | None = None) -> Figure:
    """Horizontal bars: how many events of each type the log holds, most frequent on top."""
    counts = sql(store, "select type, count(*) as events from events group by type "
                       "order by events desc, min(position)", filter=filter)
    ax = _axes(ax, (7.0, 0.35 * max(len(counts), 1) + 1.2))
    kinds = counts["type"].tolist()
    palette = type_colours(store, kinds)
    ax.barh(kinds, counts["events"].tolist(), color=[palette[k] for k in kinds])
    ax.invert_yaxis()
    ax.set_xlabel("events")
    ax.set_title(f"{len(kinds)} event types")
    return ax.figure


def plot_stream_lengths(store: EventStore, bins: int = 30, *, filter: Filter | None = None,
                        ax: Axes | None = None) -> Figure:
    """A histogram of how many events each stream (case) has."""
    from .. import analytics

    lengths = analytics.stream_lengths(store, filter=filter)["events"].tolist()
    ax = _axes(ax, (7.0, 3.2))
    if lengths:
        ax.hist(lengths, bins=min(bins, max(1, max(lengths) - min(lengths) + 1)),
                color="#4e79a7", edgecolor="white")
        ax.set_title(f"{len(lengths)} streams, mean {sum(lengths) / len(lengths):.1f} events")
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


def plot_case_durations(store: EventStore, bins: int = 30, *, filter: Filter | None = None,
                        ax: Axes | None = None) -> Figure:
    """A histogram of how long cases take, first event to last (``throughput_times``), in
    seconds, minutes, hours or days, whichever suits the longer cases (the 90th
    percentile); the title gives the number of cases and the median."""
    from .. import analytics

    durations = analytics.throughput_times(store, filter=filter)["duration"]
    ax = _axes(ax, (7.0, 3.2))
    ax.set_ylabel("cases")
    if durations.empty:
        ax.set_title("no cases")
        ax.set_xlabel("case duration")
        return ax.figure
    median = durations.median()
    unit, length = duration_unit(durations.quantile(0.9).total_seconds())
    values = durations.dt.total_seconds().to_numpy() / length
    ax.hist(values, bins=bins, color="#4e79a7", edgecolor="white")
    ax.set_xlabel(f"case duration ({unit})")
    ax.set_title(f"{len(values):,} cases, median {human_duration(median)}")
    return ax.figure
