"""A picture of one causation chain: a swimlane per stream, an arrow from each cause to
its effect.

The chain is ``el.causation(store, event_id)``: every event that the same first
event led to, in the log's order. Each event is a box in its stream's lane, one
step to the right of the one before; an arrow joins it to the event that caused
it. A command the target refused shows as its ``ReactionFailed`` record, in red.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("order-1", [el.NewEvent({}, type="Placed")])
>>> placed = next(store.read_all())
>>> meta = {"causation_id": str(placed.event_id), "correlation_id": str(placed.event_id)}
>>> _ = store.append("stock-1", [el.NewEvent({}, type="Reserved", metadata=meta)])
>>> fig = plot_causation(store, placed.event_id)
>>> [(a.xyann, a.xy) for a in arrows(fig.axes[0])]
[((0.0, 0.0), (1.0, 1.0))]
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from ..chains import causation
from ..store.base import EventStore
from .render import PALETTE, ChartFigure, colours

_FAILED = "#d62728"
_CALM = tuple(c for c in PALETTE if c not in ("#e15759", "#ff9da7"))


def plot_causation(store: EventStore, event_id: uuid.UUID | str, *,
                   ax: Axes | None = None) -> Figure:
    """Draw the chain ``event_id`` belongs to; return the ``Figure``.

    Lanes are the chain's streams, top to bottom in the order the chain first
    reaches them; step ``i`` (left to right) is the chain's ``i``-th event.
    """
    chain = causation(store, event_id)
    lanes = list(dict.fromkeys(chain["stream_id"]))
    lane_of = {stream: n for n, stream in enumerate(lanes)}
    if ax is None:
        ax = ChartFigure(figsize=(max(6.0, 1.6 * len(chain) + 1.5),
                                  0.9 * len(lanes) + 1.3), layout="constrained").add_subplot()
    # the failure's red is kept for failures: other types take the palette's other colours
    palette = colours(chain["type"], _CALM)
    where: dict[str, tuple[float, float]] = {}
    for step, (event_id_text, stream, kind, cause, data) in enumerate(zip(
            chain["event_id"], chain["stream_id"], chain["type"], chain["causation_id"],
            chain["data"], strict=True)):
        at = (float(step), float(lane_of[stream]))
        where[event_id_text] = at
        failed = kind == "ReactionFailed"
        label = "\n".join(textwrap.wrap(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kind), 16))
        if failed:   # which stream refused, and why
            record = json.loads(data)
            label += f"\n{record.get('target')}:\n{record.get('error')}"
        ax.text(*at, label, ha="center", va="center", fontsize=8,
                color="white" if not failed else _FAILED, zorder=3,
                bbox={"boxstyle": "round,pad=0.4", "linewidth": 1.5,
                      "facecolor": "white" if failed else palette[kind],
                      "edgecolor": _FAILED if failed else palette[kind]})
        if isinstance(cause, str) and cause in where:
            ax.annotate("", xy=at, xytext=where[cause], zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": "#555555", "linewidth": 1.2,
                                    "shrinkA": 18, "shrinkB": 18,
                                    "connectionstyle": "arc3,rad=0.0" if where[cause][1] != at[1]
                                    else "arc3,rad=-0.3"})
    for lane in range(len(lanes)):
        ax.axhline(lane, color="#eeeeee", linewidth=8, zorder=0)
    ax.set_yticks(range(len(lanes)), labels=lanes)
    ax.set_ylim(len(lanes) - 0.4, -0.6)
    ax.set_xlim(-0.7, len(chain) - 0.3)
    ax.set_xticks(range(len(chain)), labels=[str(n) for n in range(len(chain))])
    ax.set_xlabel("step in the chain (the log's order)")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    first = chain.iloc[0]
    ax.set_title(f"what {first['type']} in {first['stream_id']} caused: "
                 f"{len(chain)} events in {len(lanes)} streams", fontsize=10)
    return ax.figure


def arrows(ax: Axes) -> list[Annotation]:
    """The cause-to-effect arrows drawn on ``ax`` (``.xyann`` the cause, ``.xy`` the effect)."""
    return [child for child in ax.get_children()
            if isinstance(child, Annotation) and child.arrow_patch is not None]


__all__ = ["arrows", "plot_causation"]
