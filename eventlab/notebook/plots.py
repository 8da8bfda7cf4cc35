"""Pictures of the log: events over time, type counts, stream lengths, swimlanes, process maps.

Each function takes a store, draws with matplotlib (no pyplot state, no
graphviz) and returns the ``Figure``, which shows itself as a PNG in a
notebook. Pass ``ax=`` to draw into an existing axes instead. The numbers come
from ``eventlab.analytics``; these functions only draw.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [Opened("ada"), Deposited(5.0)])
>>> _ = store.append("a-2", [Opened("bob")])
>>> fig = plot_swimlanes(store)
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
['a-1', 'a-2']
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path

from ..errors import InvalidInputError
from ..store.base import EventStore
from ..store.frames import sql, to_df
from .render import ChartFigure, colours


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    return ChartFigure(figsize=figsize, layout="constrained").add_subplot()


def plot_swimlanes(store: EventStore, streams: Sequence[str] | None = None, *, limit: int = 6,
                   x: str = "position", labels: bool | None = None,
                   ax: Axes | None = None) -> Figure:
    """A timeline of a few streams, Event Modeling style: one lane per stream.

    Time runs left to right (``x="position"``, the global order, or
    ``x="time"``, ``recorded_at``); each event is a box coloured by its type.
    ``streams`` defaults to the first ``limit`` streams of the log. ``labels``
    writes each event's type next to it (default: when there are few events).
    """
    if x not in ("position", "time"):
        raise InvalidInputError(f"x must be 'position' or 'time', got {x!r}")
    streams = list(streams) if streams is not None else store.stream_ids()[:limit]
    frames = [to_df(store, stream_id=s) for s in streams]
    ax = _axes(ax, (9.0, 0.7 * max(len(streams), 1) + 1.4))
    column = "position" if x == "position" else "recorded_at"
    palette = colours(t for df in frames for t in df["type"])
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
                          ax: Axes | None = None) -> Figure:
    """Stacked bars: how many events of each type were recorded in each period.

    ``every`` is a pandas-style period ("15min", "6h", "1D", "1W", "1M"); see
    ``eventlab.analytics.events_over_time``. One bar container per type; past
    the ``top`` most frequent types the rest are stacked as "other".
    """
    from .. import analytics

    wide = analytics.events_over_time(store, every)
    if len(wide.columns) > top:
        keep = wide.sum().sort_values(ascending=False).index[:top]
        rest = wide.drop(columns=keep).sum(axis=1)
        wide = wide[list(keep)].assign(other=rest)
    ax = _axes(ax, (9.0, 3.4))
    palette = colours(wide.columns)
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


def plot_type_counts(store: EventStore, *, ax: Axes | None = None) -> Figure:
    """Horizontal bars: how many events of each type the log holds, most frequent on top."""
    counts = sql(store, "select type, count(*) as events from events group by type "
                       "order by events desc, min(position)")
    ax = _axes(ax, (7.0, 0.35 * max(len(counts), 1) + 1.2))
    kinds = counts["type"].tolist()
    palette = colours(kinds)
    ax.barh(kinds, counts["events"].tolist(), color=[palette[k] for k in kinds])
    ax.invert_yaxis()
    ax.set_xlabel("events")
    ax.set_title(f"{len(kinds)} event types")
    return ax.figure


def plot_stream_lengths(store: EventStore, bins: int = 30, *, ax: Axes | None = None) -> Figure:
    """A histogram of how many events each stream (case) has."""
    from .. import analytics

    lengths = analytics.stream_lengths(store)["events"].tolist()
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


def _curve(start: tuple[float, float], end: tuple[float, float], bend: float = 0.2,
           gap: float = 0.3) -> tuple[Path, tuple[float, float]]:
    """A quadratic curve from ``start`` to ``end`` bending left, trimmed by ``gap`` at both
    ends (so the arrow stops outside the node boxes), and the curve's midpoint."""
    (x0, y0), (x2, y2) = start, end
    dx, dy = x2 - x0, y2 - y0
    control = ((x0 + x2) / 2 - bend * dy, (y0 + y2) / 2 + bend * dx)
    trim = min(0.4, gap / max(math.hypot(dx, dy), 1e-9))
    a, b = trim, 1 - trim

    def blossom(s: float, t: float) -> tuple[float, float]:
        w0, w1, w2 = (1 - s) * (1 - t), (1 - s) * t + s * (1 - t), s * t
        return (w0 * x0 + w1 * control[0] + w2 * x2, w0 * y0 + w1 * control[1] + w2 * y2)

    path = Path([blossom(a, a), blossom(a, b), blossom(b, b)],
                [Path.MOVETO, Path.CURVE3, Path.CURVE3])
    return path, blossom(0.5, 0.5)


def plot_directly_follows(store: EventStore, *, top: int | None = 30, min_count: int = 1,
                          ax: Axes | None = None) -> Figure:
    """The directly-follows graph of the log as a picture (a simple process map).

    Activities (event types) are boxes laid out left to right in order of
    first occurrence, zig-zagging over three rows; an arrow ``a → b`` means
    ``b`` came right after ``a`` in some stream, its width and label give how
    often. ``top`` keeps the most frequent edges, ``min_count`` drops rare
    ones. Nodes carry the gid ``node:<type>``, edges ``edge:<source>-><target>``.
    """
    from .. import analytics

    edges = analytics.directly_follows(store)
    edges = edges[edges["count"] >= min_count]
    if top is not None:
        edges = edges.head(top)
    order = sql(store, "select type from events group by type order by min(position)")
    used = set(edges["source"]) | set(edges["target"])
    nodes = [t for t in order["type"] if t in used] if len(edges) else list(order["type"])
    place = {t: (float(i), (0.0, 1.0, -1.0)[i % 3]) for i, t in enumerate(nodes)}
    ax = _axes(ax, (max(6.0, 1.6 * len(nodes)), 4.2))
    most = max(edges["count"].max(), 1) if len(edges) else 1
    for source, target, count in edges[["source", "target", "count"]].itertuples(index=False):
        width = 0.8 + 4.0 * count / most
        if source == target:
            x, y = place[source]
            ax.annotate(f"↻ {count}", (x, y + 0.32), ha="center", fontsize=8,
                        color="#555555", gid=f"edge:{source}->{target}")
            continue
        path, label_at = _curve(place[source], place[target])
        arrow = FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=12,
                                linewidth=width, color="#7f7f7f", alpha=0.7, zorder=1,
                                gid=f"edge:{source}->{target}")
        ax.add_patch(arrow)
        ax.text(*label_at, str(count), fontsize=7, ha="center", va="center", color="#333333",
                zorder=3, bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                                "edgecolor": "none", "alpha": 0.8})
    palette = colours(nodes)
    for name, (x, y) in place.items():
        ax.text(x, y, name, ha="center", va="center", fontsize=8, zorder=4, gid=f"node:{name}",
                bbox={"boxstyle": "round,pad=0.4", "facecolor": palette[name], "alpha": 0.25,
                      "edgecolor": palette[name]})
    ax.set_xlim(-0.8, max(len(nodes) - 0.2, 0.8))
    ax.set_ylim(-1.8, 1.8)
    ax.set_axis_off()
    ax.set_title(f"directly-follows: {len(nodes)} activities, {len(edges)} edges")
    return ax.figure
