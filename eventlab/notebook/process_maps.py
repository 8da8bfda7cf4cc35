"""The process map: the log's directly-follows graph drawn as a layered picture, start on top.

``process_map(store)`` draws one box per activity (event type) with how many
events it has, a "start" node feeding the activities cases begin with and an
"end" node fed by the ones they end with, and an arrow ``a -> b`` wherever
``b`` came right after ``a`` in a case. ``measure="frequency"`` labels and
thickens arrows by how often the step was taken; ``"median"`` and ``"p90"`` by
the wait between the two events (in minutes, hours or days).

A big log is simplified as Disco does: ``activities=`` keeps the most frequent
activities (a count, or a share of them), ``paths=`` the most frequent arrows
between those (a count or share, plus whatever keeps every box connected). What
was left out is said in the footnote and kept on the figure as
``fig.left_out``. Boxes carry the gid ``node:<type>``, arrows
``edge:<source>-><target>``, the start and end arcs ``start:<type>`` and
``end:<type>``.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> for case, steps in (("c1", "abc"), ("c2", "ac"), ("c3", "abb")):
...     _ = store.append(case, [el.NewEvent({}, type=t) for t in steps])
>>> fig = process_map(store)
>>> sorted(p.get_gid() for p in fig.axes[0].patches if p.get_gid().startswith("edge:"))
['edge:a->b', 'edge:a->c', 'edge:b->b', 'edge:b->c']
>>> fig.left_out
LeftOut(activities=(), edges=())
>>> process_map(store, activities=2).left_out
LeftOut(activities=('c',), edges=(('a', 'c'), ('b', 'c')))
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from ..errors import InvalidInputError
from ..store.base import EventStore
from .layered import Edge, Layout, layout
from .plots import human_duration, type_colours
from .render import OTHER, ChartFigure

if TYPE_CHECKING:
    from ..filters import Filter

MEASURES = ("frequency", "median", "p90")
FONT = 8.0                      # points: every text on the map
_START, _END = ("map", "start"), ("map", "end")
_SAYS = {"frequency": "times taken", "median": "median wait", "p90": "90th-percentile wait"}
_PAD = 10.0                     # points around the drawing
_EDGE = "#52606d"
_SLOW = "#b5452f"
_HALO = {"boxstyle": "square,pad=0.08", "facecolor": "white", "edgecolor": "none",
         "alpha": 0.8}


@dataclass(frozen=True)
class LeftOut:
    """What a simplified map does not show: activities, and directly-follows edges
    (``(source, target)``), most frequent first."""
    activities: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]

    def __bool__(self) -> bool:
        return bool(self.activities or self.edges)


@dataclass
class MapData:
    """The numbers behind a map: what is drawn and what was left out."""
    counts: dict[str, int]                 # activity -> events, kept activities only
    edges: pd.DataFrame                    # directly_follows rows that are drawn
    starts: dict[str, int]                 # activity -> cases starting there (kept only)
    ends: dict[str, int]
    cases: int
    steps: dict[str, float]                # activity -> mean step of its first occurrence
    activities_total: int
    edges_total: int
    left_out: LeftOut


def map_data(store: EventStore, *, activities: int | float | None = None,
             paths: int | float | None = None, filter: Filter | None = None) -> MapData:
    """Choose what a map shows: see ``process_map`` for ``activities`` and ``paths``."""
    from .. import analytics

    counted = store.sql("""
        with firsts as (select type, min(version) as step from events
                        group by stream_id, type)
        select type, count(*) as count, min(position) as first,
               (select avg(step) from firsts f where f.type = e.type) as step
        from events e group by type order by count desc, first""", filter=filter)
    names = counted["type"].tolist()
    if not names:
        nothing = pd.DataFrame(columns=["source", "target", "count", "median_duration",
                                        "p90_duration"])
        return MapData({}, nothing, {}, {}, 0, {}, 0, 0, LeftOut((), ()))
    count_of = dict(zip(names, (int(c) for c in counted["count"]), strict=True))
    df = analytics.directly_follows(store, filter=filter)
    starts = analytics.start_activities(store, filter=filter)
    ends = analytics.end_activities(store, filter=filter)
    kept = names[:_how_many("activities", activities, len(names), len(names))]
    keep = set(kept)
    among = df[df["source"].isin(keep) & df["target"].isin(keep)]
    start_of = {t: int(c) for t, c in zip(starts["type"], starts["count"], strict=True)
                if t in keep}
    end_of = {t: int(c) for t, c in zip(ends["type"], ends["count"], strict=True) if t in keep}
    pairs = list(zip(among["source"], among["target"], strict=True))
    chosen = set(pairs[:_how_many("paths", paths, len(pairs), len(pairs))])
    entered, left = set(start_of), set(end_of)
    entered |= {t for s, t in chosen if s != t}
    left |= {s for s, t in chosen if s != t}
    for s, t in pairs:                       # most frequent first: each box gets a way in/out
        if s != t and t not in entered:
            chosen.add((s, t))
            entered.add(t)
        if s != t and s not in left:
            chosen.add((s, t))
            left.add(s)
    shown = pd.Series([(s, t) in chosen for s, t in zip(df["source"], df["target"],
                                                         strict=True)], index=df.index, dtype=bool)
    drawn, missing = df[shown], df[~shown]
    left_out = LeftOut(tuple(n for n in names if n not in keep),
                       tuple(zip(missing["source"], missing["target"], strict=True)))
    step_of = dict(zip(names, (float(v) for v in counted["step"]), strict=True))
    return MapData({n: count_of[n] for n in kept}, drawn.reset_index(drop=True), start_of,
                   end_of, int(starts["count"].sum()) if len(starts) else 0,
                   {n: step_of[n] for n in kept}, len(names), len(df), left_out)


def _how_many(name: str, value: int | float | None, total: int, default: int) -> int:
    """A count from ``value``: a whole number is a count, a fraction in [0, 1] a share."""
    if value is None:
        return min(default, total)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
            (isinstance(value, float) and value > 1):
        raise InvalidInputError(
            f"{name}= takes a count (a whole number >= 0) or a share (0.0 to 1.0), "
            f"got {value!r}")
    if isinstance(value, float):
        return min(total, math.ceil(value * total))
    return min(total, value)


def process_map(store: EventStore, measure: str = "frequency", *,
                activities: int | float | None = 20, paths: int | float | None = 30,
                filter: Filter | None = None, ax: Axes | None = None) -> Figure:
    """The process map of the log (or of the cases ``filter`` keeps), start at the top.

    ``measure``: ``"frequency"`` (arrows by how often the step was taken),
    ``"median"`` or ``"p90"`` (by the wait between the two events; nine in ten
    waits are shorter than the p90). ``activities``: how many activities to
    keep, the most frequent first: a count, or a share such as ``0.5`` (``None``:
    all). ``paths``: which arrows between them: the most frequent ones, a count
    or a share (``1.0``: all), plus the most frequent way into and out of every
    box. The figure's ``left_out`` says what was left out; so does its footnote.

    Texts are 8 pt and one point of the drawing is one point of the figure, so
    the defaults fit a notebook's width (about 9.5 inches at 100 dpi; the map
    grows downward); more activities and paths make it wider. With ``ax=`` the
    map is scaled into that axes instead.
    """
    _check_measure(measure)
    data = map_data(store, activities=activities, paths=paths, filter=filter)
    return draw_map(data, measure, type_colours(store, list(data.counts)), ax=ax)


def plot_directly_follows(store: EventStore, *, top: int | None = None, min_count: int = 1,
                          measure: str = "frequency", activities: int | float | None = 20,
                          filter: Filter | None = None, ax: Axes | None = None) -> Figure:
    """The process map under its older name: ``top`` is ``paths`` (default 30), and
    ``min_count`` leaves out edges taken fewer times than that."""
    _check_measure(measure)
    data = map_data(store, activities=activities, paths=30 if top is None else top,
                    filter=filter)
    if min_count > 1:
        rare = data.edges["count"] < min_count
        dropped = tuple(zip(data.edges["source"][rare], data.edges["target"][rare],
                            strict=True))
        data.edges = data.edges[~rare].reset_index(drop=True)
        data.left_out = LeftOut(data.left_out.activities, data.left_out.edges + dropped)
    return draw_map(data, measure, type_colours(store, list(data.counts)), ax=ax)


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise InvalidInputError(f"measure must be one of {MEASURES}, got {measure!r}")


# -- drawing -------------------------------------------------------------------------------

class _Measurer:
    """Text sizes in points, from the Agg renderer matplotlib draws with."""

    def __init__(self) -> None:
        self._renderer = RendererAgg(10, 10, 72)
        self._font = FontProperties(size=FONT)
        self._bold = FontProperties(size=FONT, weight="bold")

    def size(self, text: str, bold: bool = False) -> tuple[float, float]:
        """Width and height of ``text``; ``bold``: all its lines but the last are bold."""
        lines = text.split("\n")
        widths = [self._renderer.get_text_width_height_descent(
            line, self._bold if bold and i < len(lines) - 1 else self._font, ismath=False)[0]
            for i, line in enumerate(lines)]
        return max(widths), len(lines) * FONT * 1.25


def _box_text(name: str, count: int) -> str:
    return "\n".join(textwrap.wrap(name, 22, break_long_words=False) or [name]) + \
        f"\n{count:,}"


def _label(measure: str, row: Any) -> tuple[str, float]:
    """An edge's label and the number its thickness follows."""
    if measure == "frequency":
        return f"{int(row.count):,}", float(row.count)
    value = row.median_duration if measure == "median" else row.p90_duration
    seconds = 0.0 if pd.isna(value) else pd.Timedelta(value).total_seconds()
    return human_duration(value), seconds


def draw_map(data: MapData, measure: str, palette: dict[str, str], *,
             ax: Axes | None = None, engine: Callable[..., Layout] = layout) -> Figure:
    """Lay out (with ``engine``, ``layered.layout``'s signature) and draw ``data`` (from
    ``map_data``); see ``process_map``."""
    measurer = _Measurer()
    texts = {n: _box_text(n, c) for n, c in data.counts.items()}
    sizes: dict[Any, tuple[float, float]] = {}
    for name, text in texts.items():
        w, h = measurer.size(text, bold=True)
        sizes[name] = (w + 12, h + 6)
    for key, text in ((_START, "start"), (_END, "end")):
        w, _ = measurer.size(text)
        sizes[key] = (w + 18, FONT * 2.2)
    labelled = [(*_label(measure, row), row) for row in data.edges.itertuples(index=False)]
    edges, loops = [], {}
    for text, value, row in labelled:
        w, h = measurer.size(text)
        if row.source == row.target:
            loops[row.source] = (text, value, w)
        else:
            edges.append((Edge(row.source, row.target, w, h, weight=float(row.count)), text,
                          value))
    arcs = [(Edge(_START, t, *measurer.size(f"{c:,}"), weight=float(c)), f"{c:,}", float(c))
            for t, c in data.starts.items()]
    arcs += [(Edge(t, _END, *measurer.size(f"{c:,}"), weight=float(c)), f"{c:,}", float(c))
             for t, c in data.ends.items()]
    if not data.counts:
        sizes = {}
    placed = engine(sizes, [e for e, _, _ in edges + arcs], top=_START if sizes else None,
                    bottom=_END if sizes else None,
                    margins={n: 20 + w for n, (_, _, w) in loops.items()}, order=data.steps)
    ax, k = _canvas(ax, placed, data, measure)
    most = max([v for _, _, v in edges] + [v for _, v, _ in loops.values()] + [1e-9] +
               ([v for _, _, v in arcs] if measure == "frequency" else []))
    for route, (e, text, value) in zip(placed.routes, edges + arcs, strict=True):
        arc = _START in (e.source, e.target) or _END in (e.source, e.target)
        share = value / most if measure == "frequency" or not arc else None
        gid = (f"start:{e.target}" if e.source == _START else
               f"end:{e.source}" if e.target == _END else f"edge:{e.source}->{e.target}")
        _arrow(ax, route.points, route.label, share, measure, gid, k, dashed=arc)
        if route.label is not None:
            ax.text(*route.label, text, fontsize=FONT * k, ha="left", va="center",
                    color="#222222", zorder=5, gid=f"label:{gid}", bbox=_HALO)
    for name, (text, value, _) in loops.items():
        _loop(ax, placed, name, text, value / most, measure, k)
    for key in placed.nodes:
        _node(ax, placed, key, texts, palette, k)
    return ax.figure


def _canvas(ax: Axes | None, placed: Layout, data: MapData,
            measure: str) -> tuple[Axes, float]:
    """Axes where one data unit is one point (in a figure of its own), with the title and
    the footnote; and the scale of the drawing (1, or less in a given ``ax``)."""
    note = _footnote(data)
    width = max(placed.width, 6.5 * 72 - 2 * _PAD)
    if ax is None:
        k = 1.0
        note_lines = textwrap.wrap(note, int((width + 2 * _PAD) / (FONT * 0.55)))
        top, bottom = 34.0, 8.0 + 12.0 * len(note_lines)
        fig_w, fig_h = width + 2 * _PAD, placed.height + 2 * _PAD + top + bottom
        fig = ChartFigure(figsize=(fig_w / 72, fig_h / 72))
        ax = fig.add_axes((_PAD / fig_w, (bottom + _PAD) / fig_h,
                           width / fig_w, (placed.height) / fig_h))
    else:                           # shrink the drawing, texts and lines alike, to fit
        box = ax.get_position()
        fig_w, fig_h = ax.figure.get_size_inches() * 72
        room_w, room_h = box.width * fig_w, box.height * fig_h
        k = min(1.0, room_w / (width + _PAD), room_h / (placed.height + _PAD))
        note_lines = textwrap.wrap(note, int(room_w / (FONT * k * 0.55)))
    xmid = placed.width / 2
    ax.set_xlim(xmid - width / 2 - _PAD * 0.5, xmid + width / 2 + _PAD * 0.5)
    ax.set_ylim(placed.height + _PAD * 0.5, -_PAD * 0.5)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    shown = len(data.edges)
    ax.set_title(f"{len(data.counts)} of {data.activities_total} activities, {shown} of "
                 f"{data.edges_total} paths, {data.cases:,} cases; arrows: {_SAYS[measure]}",
                 fontsize=10, loc="left")
    if note_lines:
        ax.text(0.0, -8.0 / max(placed.height, 1.0), "\n".join(note_lines),
                transform=ax.transAxes, fontsize=FONT * k, color="#555555", va="top",
                ha="left", gid="left-out")
    ax.figure.left_out = data.left_out           # type: ignore[attr-defined]
    return ax, k


def _footnote(data: MapData) -> str:
    out = data.left_out
    if not out:
        return ""
    parts = []
    if out.activities:
        parts.append(f"{len(out.activities)} activit{'y' if len(out.activities) == 1 else 'ies'}"
                     f" ({', '.join(out.activities)})")
    if out.edges:
        parts.append(f"{len(out.edges)} path{'' if len(out.edges) == 1 else 's'}")
    return "left out: " + ", ".join(parts)


def _curve(points: list[tuple[float, float]], label: tuple[float, float] | None) -> Path:
    """A smooth path through ``points``: it leaves and enters the boxes vertically, and
    passes its label vertically too, so the line stays clear of the text."""
    n = len(points)
    tangents = []
    for i, (x, y) in enumerate(points):
        if i in (0, n - 1):
            other = points[1] if i == 0 else points[-2]
            down = 1 if points[-1][1] >= points[0][1] else -1
            tangents.append((0.0, 1.5 * abs(other[1] - y) * down))
            continue
        (xa, ya), (xb, yb) = points[i - 1], points[i + 1]
        dx, dy = (xb - xa) / 2, (yb - ya) / 2
        if label is not None and abs(x + 4.5 - label[0]) < 0.01 and abs(y - label[1]) < 0.01:
            dx = 0.0
        tangents.append((dx, dy))
    verts = [points[0]]
    codes = [Path.MOVETO]
    for i in range(n - 1):
        (x0, y0), (x1, y1) = points[i], points[i + 1]
        (a0, b0), (a1, b1) = tangents[i], tangents[i + 1]
        verts += [(x0 + a0 / 3, y0 + b0 / 3), (x1 - a1 / 3, y1 - b1 / 3), (x1, y1)]
        codes += [Path.CURVE4] * 3
    return Path(verts, codes)


def _arrow(ax: Axes, points: list[tuple[float, float]], label: tuple[float, float] | None,
           share: float | None, measure: str, gid: str, k: float, dashed: bool = False,
           ) -> None:
    """An edge; ``share`` (0 to 1) of the biggest value sets its width; ``None``: a plain
    thin line (start and end arcs on a map of waits). ``k`` scales the line."""
    width, alpha = _stroke(share, k) if share is not None else (k, 0.6)
    colour = _SLOW if measure != "frequency" and share is not None else _EDGE
    _add(ax, FancyArrowPatch(
        path=_curve(points, label), arrowstyle="-|>", mutation_scale=7 * k + 1.5 * width,
        linewidth=width, color=colour, alpha=alpha, linestyle="--" if dashed else "-",
        shrinkA=0, shrinkB=0.5, zorder=2, gid=gid, joinstyle="round", capstyle="round"))


def _stroke(share: float, k: float) -> tuple[float, float]:
    """Line width (scaled by ``k``) and opacity of an edge at ``share`` (0 to 1) of the
    biggest value: both grow with its square root, so small values stay visible."""
    root = math.sqrt(max(share, 0.0))
    return k * (0.8 + 4.2 * root), 0.45 + 0.45 * root


def _loop(ax: Axes, placed: Layout, name: str, text: str, share: float, measure: str,
          k: float) -> None:
    x, y = placed.nodes[name]
    w, h = placed.sizes[name]
    right = x + w / 2
    points = [(right, y - h / 4), (right + 16, y - h / 4), (right + 16, y + h / 4),
              (right, y + h / 4)]
    path = Path(points, [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4])
    width, alpha = _stroke(share, k)
    colour = _EDGE if measure == "frequency" else _SLOW
    _add(ax, FancyArrowPatch(
        path=path, arrowstyle="-|>", mutation_scale=6 * k + width, linewidth=width, color=colour,
        alpha=alpha, shrinkA=0, shrinkB=0.5, zorder=2, gid=f"edge:{name}->{name}"))
    ax.text(right + 18, y, text, fontsize=FONT * k, ha="left", va="center", color="#222222",
            zorder=5, gid=f"label:edge:{name}->{name}")


def _node(ax: Axes, placed: Layout, key: Any, texts: dict[str, str],
          palette: dict[str, str], k: float) -> None:
    x, y = placed.nodes[key]
    w, h = placed.sizes[key]
    if key in (_START, _END):
        word = key[1]
        _add(ax, FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle=f"round,pad=0,rounding_size={h / 2}",
                                facecolor="#3b4752", edgecolor="none", zorder=3, gid=word))
        ax.text(x, y, word, fontsize=FONT * k, ha="center", va="center", color="white",
                zorder=6, gid=f"label:{word}")
        return
    colour = palette.get(key, OTHER)
    _add(ax, FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                            boxstyle="round,pad=0,rounding_size=4",
                            facecolor=(*to_rgb(colour), 0.22), edgecolor=colour,
                            linewidth=1.2 * k, zorder=3, gid=f"node:{key}"))
    lines = texts[key].split("\n")
    step = FONT * 1.25
    top = y - h / 2 + 3
    ax.text(x, top + (len(lines) - 1) * step / 2, "\n".join(lines[:-1]), fontsize=FONT * k,
            ha="center", va="center", weight="bold", color="#1d2329", zorder=6,
            linespacing=1.1, gid=f"label:node:{key}")
    ax.text(x, top + (len(lines) - 0.5) * step, lines[-1], fontsize=FONT * k, ha="center",
            va="center", color="#1d2329", zorder=6, gid=f"count:node:{key}")


def _add(ax: Axes, patch: Any) -> None:
    """Add a patch without matplotlib recomputing the data limits (they are set already)."""
    patch.set_clip_on(False)
    ax.add_artist(patch)
