"""A race of writers on one stream, drawn: a lane per writer, a box per step, one time axis.

Each step (read, decide, append) sits in its writer's lane at its logical time,
so the picture shows the interleaving the race really had. An append refused by
the store (a version conflict) is red, with a red arrow from the append that
moved the stream under it; a decision the aggregate refused is brown; the steps
of a retry have dashed purple edges, sit in a shaded band labelled "retry", and
a purple arrow leads to them from the conflict that caused them.

Every step's box is a text artist with gid ``step:<time>:<outcome>``; the marks
have gids ``conflict-cause``, ``retry``, ``retry-label`` and ``retry-arrow``.
Steps are anything with ``time``, ``writer``, ``kind``, ``attempt``, ``outcome``
and ``label`` (``concurrency.Step`` is the one the lab records).

>>> from types import SimpleNamespace as S
>>> steps = [S(time=0, writer="A", kind="read", attempt=1, outcome="loaded", label="read"),
...          S(time=1, writer="B", kind="read", attempt=1, outcome="loaded", label="read"),
...          S(time=2, writer="A", kind="append", attempt=1, outcome="appended", label="ok"),
...          S(time=3, writer="B", kind="append", attempt=1, outcome="conflict", label="no"),
...          S(time=4, writer="B", kind="read", attempt=2, outcome="loaded", label="read")]
>>> ax = plot_race(steps).axes[0]
>>> [t.get_text() for t in ax.get_yticklabels()], ax.get_xlabel()
(['writer A', 'writer B'], 'time (steps)')
>>> [t.get_gid() for t in ax.texts if t.get_gid().endswith("conflict")]
['step:3:conflict']
>>> sorted(a.get_gid() for a in ax.get_children() if "retry" in (a.get_gid() or ""))
['retry', 'retry-arrow', 'retry-label']
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Protocol

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from .render import ChartFigure

#: Fill colour of a step box, by its outcome.
OUTCOME_COLOURS = {"loaded": "#4e79a7", "decided": "#f28e2b", "appended": "#59a14f",
                   "conflict": "#d62728", "refused": "#8c564b"}
#: What the legend calls each outcome.
OUTCOME_NAMES = {"loaded": "read", "decided": "decide", "appended": "append: landed",
                 "conflict": "append: conflict", "refused": "refused by the aggregate"}
RETRY = "#7b3294"          # the retry's edges, band, label and arrow
RETRY_BAND = "#f1e6f7"
FONT = 8
SIZE = (7.0, 2.5)          # inches, drawn at 100 dpi: fits a notebook cell's width


class RaceStep(Protocol):
    """What the chart needs of one step."""

    time: int
    writer: str
    kind: str
    attempt: int
    outcome: str

    @property
    def label(self) -> str: ...


def plot_race(steps: Sequence[RaceStep], *, title: str | None = None,
              ax: Axes | None = None) -> Figure:
    """Draw the steps of a race; return the ``Figure``.

    The figure is 7 x 2.5 in (``SIZE``, 100 dpi in the lab), wider only when
    the steps' boxes would not fit side by side (more than 9 steps, long labels).

    Lanes are the writers, in alphabetical order from the top ("writer A",
    "writer B"); the x axis is the steps' logical time.
    """
    steps = sorted(steps, key=lambda s: s.time)
    writers = sorted({s.writer for s in steps}) or ["A", "B"]
    lane = {name: n for n, name in enumerate(writers)}
    span = (steps[-1].time + 1) if steps else 1
    if ax is None:
        width = max(SIZE[0], _step_width(steps) * span + 1.3)
        ax = ChartFigure(figsize=(width, SIZE[1]), layout="constrained").add_subplot()
    for n in range(len(writers)):
        ax.axhline(n, color="#eeeeee", linewidth=10, zorder=0)
    for s in steps:
        _box(ax, s, lane[s.writer])
    for s in steps:
        if s.outcome == "conflict":
            _mark_conflict(ax, s, steps, lane)
    for name in writers:
        retry = [s for s in steps if s.writer == name and s.attempt > 1]
        if retry:
            _mark_retry(ax, retry, steps, lane[name])
    ax.set_yticks(range(len(writers)), labels=[f"writer {n}" for n in writers], fontsize=9)
    ax.set_ylim(len(writers) - 0.35, -0.65)
    ax.set_xlim(-0.6, span - 0.4)
    ax.set_xticks(range(span), labels=[str(t) for t in range(span)], fontsize=FONT)
    ax.set_xlabel("time (steps)", fontsize=9)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    shown = list(dict.fromkeys(s.outcome for s in steps if s.outcome in OUTCOME_COLOURS))
    handles = [Patch(facecolor=OUTCOME_COLOURS[o], label=OUTCOME_NAMES[o]) for o in shown]
    if any(s.attempt > 1 for s in steps):
        handles.append(Patch(facecolor=RETRY_BAND, edgecolor=RETRY, linestyle="--",
                             label="retry"))
    if handles:
        ax.figure.legend(handles=handles, loc="outside lower center", ncol=len(handles),
                         fontsize=FONT, frameon=False, handlelength=1.2, columnspacing=1.0)
    return ax.figure


def _step_width(steps: Sequence[RaceStep]) -> float:
    """Inches per time step, so that neighbouring boxes in one lane do not overlap."""
    need = 0.0
    for one, two in pairwise(steps):
        if one.writer == two.writer and two.time == one.time + 1:
            need = max(need, (_box_width(one) + _box_width(two)) / 2 + 0.05)
    return max(0.62, need)


def _box_width(step: RaceStep) -> float:
    """A box's width in inches, estimated from its longest line (DejaVu Sans at 8 pt)."""
    widest = max(sum(0.072 if c.isupper() else 0.061 for c in line)
                 for line in step.label.splitlines() or [""])
    return widest * (1.1 if step.outcome == "conflict" else 1.0) + 0.07


def _box(ax: Axes, step: RaceStep, y: int) -> None:
    """One step: its label in a box filled with its outcome's colour."""
    retried = step.attempt > 1
    colour = OUTCOME_COLOURS.get(step.outcome, "#999999")
    ax.text(step.time, y, step.label, ha="center", va="center", fontsize=FONT,
            color="white", linespacing=1.1, zorder=3,
            fontweight="bold" if step.outcome == "conflict" else "normal",
            gid=f"step:{step.time}:{step.outcome}",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colour,
                  "edgecolor": RETRY if retried else colour,
                  "linestyle": "--" if retried else "-",
                  "linewidth": 1.6 if retried else 1.0})


def _mark_conflict(ax: Axes, step: RaceStep, steps: Sequence[RaceStep],
                   lane: dict[str, int]) -> None:
    """A red arrow from the last append that landed before ``step`` (it moved the stream)."""
    moved = [s for s in steps if s.time < step.time and s.outcome == "appended"]
    if not moved:
        return
    cause = moved[-1]
    ax.annotate("", xy=(step.time, lane[step.writer]), xytext=(cause.time, lane[cause.writer]),
                zorder=2, gid="conflict-cause",
                arrowprops={"arrowstyle": "-|>", "color": OUTCOME_COLOURS["conflict"],
                            "linewidth": 1.4, "linestyle": "--", "shrinkA": 14,
                            "shrinkB": 14})


def _mark_retry(ax: Axes, retry: Sequence[RaceStep], steps: Sequence[RaceStep],
                y: int) -> None:
    """A shaded band behind the retry's steps, a "retry" label outside the lanes, and an
    arrow from the writer's conflict to the retry's first step."""
    start, end = retry[0].time, retry[-1].time
    ax.add_patch(FancyBboxPatch((start - 0.46, y - 0.4), end - start + 0.92, 0.8,
                                boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=RETRY_BAND, edgecolor=RETRY, linestyle="--",
                                linewidth=1.0, zorder=1, gid="retry"))
    outward = -1 if y == 0 else 1          # the top lane's label above it, others below
    ax.text(start - 0.42, y + outward * 0.42, "↻ retry", color=RETRY, fontsize=FONT,
            fontweight="bold", ha="left", va="bottom" if outward < 0 else "top", zorder=4,
            gid="retry-label")
    conflicts = [s for s in steps if s.writer == retry[0].writer and s.time < start
                 and s.outcome == "conflict"]
    if conflicts:
        bend = 0.45 * outward / (start - conflicts[-1].time) ** 0.75   # flatter when longer
        ax.annotate("", xy=(start, y), xytext=(conflicts[-1].time, y), zorder=2,
                    gid="retry-arrow",
                    arrowprops={"arrowstyle": "-|>", "color": RETRY, "linewidth": 1.4,
                                "shrinkA": 16, "shrinkB": 16,
                                "connectionstyle": f"arc3,rad={bend:.3f}"})


__all__ = ["OUTCOME_COLOURS", "RaceStep", "plot_race"]
