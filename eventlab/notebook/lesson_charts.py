"""Small pictures for the course: a fold drawn step by step, the log's positions and
versions, and panels shown side by side.

The course notebooks call these so that figure code stays out of the story. Each
chart function draws with matplotlib (no pyplot state) and returns the ``Figure``,
which shows itself as a PNG in a notebook; ``ax=`` draws into an existing axes.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Deposited:
...     amount: float
>>> fig = plot_fold([Deposited(5.0), Deposited(2.5)], [0.0, 5.0, 7.5])   # states: numbers
>>> [float(y) for y in fig.axes[0].lines[0].get_ydata()]
[0.0, 5.0, 7.5, 7.5]
>>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
['start', 'Deposited\\n5.0', 'Deposited\\n2.5']
>>> "<pre" in side_by_side({"a list": [1, 2]})._repr_html_()
True
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidInputError
from .render import ChartFigure, fields_of, short

if TYPE_CHECKING:
    from ..store.base import EventStore

__all__ = ["SideBySide", "plot_fold", "plot_positions", "side_by_side"]

LINE = "#4e79a7"


def _value(state: Any, field: str | None, index: int) -> float:
    """The plotted number of one state: the state itself, or its field ``field``."""
    if field is None:
        value = state
    else:
        fields = fields_of(state)
        if fields is None or field not in fields:
            have = sorted(fields) if fields else "none (it is a plain value)"
            raise InvalidInputError(
                f"state {index} has no field {field!r}; its fields: {have}")
        value = fields[field]
    try:
        return float(value)
    except (TypeError, ValueError):
        where = f"field {field!r}" if field else "value"
        raise InvalidInputError(
            f"state {index}: the {where} is {value!r}, not a number to plot") from None


def event_label(event: Any) -> str:
    """A short two-line tick label: the event's class name, then its field values.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opened:
    ...     owner: str
    >>> event_label(Opened("ada"))
    'Opened\\nada'
    """
    name = type(event).__name__
    fields = fields_of(event) if dataclasses.is_dataclass(event) else None
    if not fields:
        return name
    values = ", ".join(v if isinstance(v, str) else short(v, 12) for v in fields.values())
    return f"{name}\n{values}"


def plot_fold(events: Sequence[Any], states: Sequence[Any], field: str | None = None, *,
              title: str | None = None, ax: Axes | None = None) -> Figure:
    """The fold as a step line: ``field`` of the state after each event.

    ``states`` are the initial state followed by the state after each event (what
    ``itertools.accumulate(events, apply, initial=...)`` gives), so there is one
    more state than events. The line holds each value until the next event changes
    it; a dot marks each step with its value. Without ``field`` the states are
    plain numbers.
    """
    events, states = list(events), list(states)
    if len(states) != len(events) + 1:
        raise InvalidInputError(
            f"give the initial state and one state per event: {len(events)} events need "
            f"{len(events) + 1} states, got {len(states)}")
    ys = [_value(s, field, i) for i, s in enumerate(states)]
    xs = list(range(len(states)))
    if ax is None:
        ax = ChartFigure(figsize=(6.0, 2.5), layout="constrained").add_subplot()
    ax.plot([*xs, xs[-1] + 0.6], [*ys, ys[-1]], drawstyle="steps-post", color=LINE,
            linewidth=2)
    ax.plot(xs, ys, "o", color=LINE, markersize=5)
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(f"{y:g}", (x, y), xytext=(4, 5), textcoords="offset points", fontsize=8)
    ax.set_xticks(xs, labels=["start", *(event_label(e) for e in events)], fontsize=8)
    ax.set_xlim(-0.4, xs[-1] + 0.6)
    low, high = min(ys), max(ys)
    pad = (high - low) * 0.18 or 1.0
    ax.set_ylim(min(low, 0.0) - pad * 0.3, high + pad)
    ax.set_xlabel("after each event (oldest first)")
    ax.set_ylabel(field or "state")
    ax.set_title(title or f"{field or 'state'} after each event: the fold, step by step",
                 fontsize=10)
    ax.grid(axis="y", color="#eeeeee")
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure


def plot_positions(store: EventStore, streams: Sequence[str] | None = None, *,
                   ax: Axes | None = None) -> Figure:
    """The global log as lanes: one lane per stream, each event at its position in the
    store and labelled with its version in its stream.

    A swimlane chart (``plot_swimlanes``) with the versions written on the boxes, so
    the two counters are seen side by side: positions run across the whole store,
    versions restart at 1 in every stream. ``streams`` defaults to all of them.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Deposited, Opened
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("a-1", [Opened("ada")])
    >>> _ = store.append("a-2", [Opened("bob")])
    >>> _ = store.append("a-1", [Deposited(5.0)])
    >>> fig = plot_positions(store)
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['v1', 'v1', 'v2']
    """
    from .plots import plot_swimlanes

    streams = list(store.stream_ids() if streams is None else streams)
    if not streams:
        raise InvalidInputError("the store has no streams to draw")
    if ax is None:
        ax = ChartFigure(figsize=(6.0, 0.55 * len(streams) + 1.5),
                         layout="constrained").add_subplot()
    plot_swimlanes(store, streams, labels=False, ax=ax)
    lane = {sid: i for i, sid in enumerate(streams)}
    positions = []
    for event in store.read_all():
        if event.stream_id in lane:
            positions.append(event.position)
            ax.annotate(f"v{event.version}", (event.position, lane[event.stream_id]),
                        xytext=(0, 9), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(positions)
    ax.set_xlabel("position in the store (the global log)")
    ax.set_title("one log: positions count across the store, versions within each stream",
                 fontsize=10)
    return ax.figure


class SideBySide:
    """Panels shown next to each other, each under its title (see ``side_by_side``)."""

    def __init__(self, panels: Mapping[str, Any]) -> None:
        if not panels:
            raise InvalidInputError("side_by_side needs at least one panel: {title: value}")
        self.panels = dict(panels)

    @staticmethod
    def _panel_html(value: Any) -> str:
        rich = getattr(value, "_repr_html_", None)
        if callable(rich) and not isinstance(value, type):
            out = rich()
            if out is not None:
                return out
        lines = map(repr, value) if isinstance(value, list | tuple) else [repr(value)]
        text = "\n".join(html.escape(line) for line in lines)
        return f'<pre style="margin:0;font-size:12px">{text}</pre>'

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<div class="el-panel" style="flex:0 1 auto"><b>{html.escape(title)}</b>'
            f"{self._panel_html(value)}</div>"
            for title, value in self.panels.items())
        return (f'<div class="el-side-by-side" style="display:flex;gap:28px;'
                f'align-items:flex-start">{cells}</div>')

    def __repr__(self) -> str:
        parts = []
        for title, value in self.panels.items():
            body = "\n".join(map(repr, value)) if isinstance(value, list | tuple) else str(value)
            parts.append(f"{title}:\n{body}")
        return "\n\n".join(parts)


def side_by_side(panels: Mapping[str, Any]) -> SideBySide:
    """Show several values next to each other, each under its title.

    A value with an HTML view (a DataFrame, a chart) shows that; a list or a tuple
    shows one item a line; anything else its ``repr``.

    >>> print(repr(side_by_side({"row": {"balance": 25.0}, "log": ["Opened", "Deposited"]})))
    row:
    {'balance': 25.0}
    <BLANKLINE>
    log:
    'Opened'
    'Deposited'
    """
    return SideBySide(panels)
