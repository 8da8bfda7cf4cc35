"""CQRS, drawn: the write side and the read side, and a read model lagging the log.

``plot_cqrs()`` draws the architecture: commands go to an aggregate, which
decides; its events are appended to the log; projections fold the log into
read models; queries read those. ``measure_lag`` runs writes at a steady pace
while a projector follows the log with a small cost per event, sampling how far
the log's head and the read model's position are apart; ``plot_lag`` draws the
samples, the lag shaded between the two lines.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited
>>> class Total(el.Projection):
...     def initial_state(self): return 0.0
...     def apply(self, state, event): return state + event.data.amount
>>> store = el.InMemoryEventStore()
>>> lag = measure_lag(store, Total(), lambda: store.append("a-1", [Deposited(1.0)]),
...                   writes=5, interval=0.002, cost=0.01)
>>> bool((lag["head"] >= lag["position"]).all()), int(lag["lag"].iloc[-1])
(True, 0)
>>> [t.get_text() for t in plot_cqrs().axes[0].texts if t.get_text().endswith("side")]
['write side', 'read side']
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..envelope import RecordedEvent
from ..errors import EventlabError, InvalidInputError
from ..projection import Projection, Projector
from ..store.base import EventStore
from .render import ChartFigure

if TYPE_CHECKING:
    import pandas as pd

WRITE = "#4e79a7"      # the write side, and the log's head in the lag chart
READ = "#f28e2b"       # the read side, and the read model's position
LOG = "#59a14f"        # the log, shared by both sides
FONT = 9               # the smallest text in these figures (points)

#: The stages of the architecture, left to right: (title, what happens there, side).
STAGES = (("commands", "requests:\nDeposit(5)", "write"),
          ("aggregate", "decides:\nhandle()", "write"),
          ("event log", "append-only:\nthe truth", "log"),
          ("projections", "fold the log:\napply()", "read"),
          ("queries", "read the\nread models", "read"))
#: What travels along each arrow, from one stage to the next.
ARROWS = ("command", "append\n(expected version)", "subscribe\n(catch up, live)", "read")
_COLOUR = {"write": WRITE, "log": LOG, "read": READ}


def plot_cqrs(*, ax: Axes | None = None) -> Figure:
    """The architecture of the course in one picture; return the ``Figure`` (8 x 2.5 in).

    The write side decides, one stream at a time, and is consistent; the read
    side follows the log and is eventually consistent. The log sits between.
    """
    if ax is None:
        ax = ChartFigure(figsize=(8.0, 2.5), layout="constrained").add_subplot()
    width, gap = 1.3, 0.45
    left = [n * (width + gap) for n in range(len(STAGES))]
    middle = left[2] + width / 2
    total = left[-1] + width
    for start, end, name, note in ((-0.15, middle, "write side",
                                    "consistent: one stream decides, its version guards it"),
                                   (middle, total + 0.15, "read side",
                                    "eventually consistent: read models lag the log")):
        colour = WRITE if name == "write side" else READ
        ax.add_patch(FancyBboxPatch((start, -0.15), end - start, 1.95, facecolor=colour,
                                    alpha=0.08, edgecolor="none",
                                    boxstyle="round,pad=0,rounding_size=0.08"))
        ax.text((start + end) / 2, 1.62, name, ha="center", va="center", fontsize=FONT + 2,
                fontweight="bold", color=colour)
        ax.text((start + end) / 2, -0.02, note, ha="center", va="center", fontsize=FONT,
                color="#333333", style="italic")
    for x, (title, what, side) in zip(left, STAGES, strict=True):
        colour = _COLOUR[side]
        ax.add_patch(FancyBboxPatch((x, 0.45), width, 0.8, facecolor="white",
                                    edgecolor=colour, linewidth=2,
                                    boxstyle="round,pad=0,rounding_size=0.1"))
        ax.text(x + width / 2, 1.07, title, ha="center", va="center", fontsize=FONT + 1,
                fontweight="bold", color=colour)
        ax.text(x + width / 2, 0.71, what, ha="center", va="center", fontsize=FONT,
                color="#333333")
    for x, label in zip(left[:-1], ARROWS, strict=True):
        ax.annotate("", xy=(x + width + gap, 0.85), xytext=(x + width, 0.85),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "linewidth": 1.5,
                                "shrinkA": 1, "shrinkB": 1})
        ax.text(x + width + gap / 2, 1.32, label, ha="center", va="bottom", fontsize=FONT - 1
                if "\n" in label else FONT, color="#555555")
    ax.set_xlim(-0.2, total + 0.2)
    ax.set_ylim(-0.2, 1.8)
    ax.set_axis_off()
    return ax.figure


class _Costly(Projection):
    """Another projection, slowed down by ``cost`` seconds for every event it applies."""

    def __init__(self, inner: Projection) -> None:
        self.inner, self.cost = inner, 0.0
        self.types = inner.types        # type: ignore[misc]  # the inner one's filter

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def apply(self, state: Any, event: RecordedEvent) -> Any:
        if self.cost:
            time.sleep(self.cost)
        return self.inner.apply(state, event)

    @property
    def name(self) -> str:
        return self.inner.name


def _seconds(name: str, value: Any, positive: bool = False) -> float:
    """``value`` as a finite number of seconds, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0 or (positive and value == 0):
        wanted = "a finite, positive" if positive else "a finite, non-negative"
        raise InvalidInputError(f"{name} must be {wanted} number of seconds, got {value!r}")
    return float(value)


def measure_lag(store: EventStore, projection: Projection, write: Callable[[], Any], *,
                writes: int = 50, interval: float = 0.01, cost: float = 0.02,
                sample_every: float = 0.005, timeout: float = 10.0) -> pd.DataFrame:
    """Run ``write()`` ``writes`` times, one every ``interval`` seconds, in a thread of its
    own, while a projector follows the log, taking ``cost`` seconds per event it applies.

    The projector (unnamed: it leaves no checkpoint) first catches up with the
    log as it is, at no cost. Then, every ``sample_every`` seconds, one row is
    sampled: ``seconds`` since the writes began, the log's ``head``, the read
    model's ``position``, the ``lag`` between them (events written, not yet
    applied) and whether the writer is still ``writing``. Sampling goes on
    until the writer is done and the read model has caught up with the last
    write (the last row's lag is 0), and a few rows more.

    The position is read before the head, so ``head >= position`` in every
    row. A failing ``write`` or ``apply`` raises here; so does a read model
    that has not caught up ``timeout`` seconds after the writes began.
    """
    import pandas as pd

    if not isinstance(projection, Projection):
        raise InvalidInputError(f"projection must be an el.Projection instance, got {projection!r}")
    if not callable(write):
        raise InvalidInputError(f"write must be a callable taking no arguments, got {write!r}")
    if isinstance(writes, bool) or not isinstance(writes, int) or writes < 1:
        raise InvalidInputError(f"writes must be a positive int, got {writes!r}")
    interval, cost = _seconds("interval", interval), _seconds("cost", cost)
    sample_every = _seconds("sample_every", sample_every, positive=True)
    timeout = _seconds("timeout", timeout, positive=True)

    costly = _Costly(projection)
    projector = Projector(store, costly)
    projector.run()
    costly.cost = cost
    finished = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        start = time.perf_counter()
        try:
            for n in range(writes):
                write()
                time.sleep(max(0.0, start + (n + 1) * interval - time.perf_counter()))
        except BaseException as exc:
            failures.append(exc)
        finally:
            finished.set()

    subscription = projector.follow(poll_interval=sample_every)
    thread = threading.Thread(target=writer, name="eventlab-lag-writer", daemon=True)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    thread.start()
    try:
        tail = 0
        while True:
            writing = not finished.is_set()   # first: a finished writer's last write is in head
            position = projector.position     # before the head: the head can only be ahead
            head = store.head()
            seconds = time.perf_counter() - start
            rows.append({"seconds": seconds, "head": head, "position": position,
                         "lag": head - position, "writing": writing})
            if failures:
                raise EventlabError(f"a write failed after {seconds:.2f} s: "
                                    f"{type(failures[0]).__name__}: {failures[0]}") \
                    from failures[0]
            subscription.raise_error()
            if not writing and position >= head:
                tail += 1
                if tail > 10:
                    break
            elif seconds > timeout:
                raise EventlabError(
                    f"the read model had not caught up after {timeout} s (at position "
                    f"{position} of {head}): raise timeout, or lower cost or writes")
            time.sleep(sample_every)
    finally:
        finished.wait(timeout)
        thread.join(timeout)
        subscription.close()
    frame = pd.DataFrame(rows)
    frame.attrs.update(writes=writes, interval=interval, cost=cost)
    return frame


def plot_lag(frame: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Draw a ``measure_lag`` frame: the log's head and the read model's position over
    time, the lag shaded between them; return the ``Figure`` (8 x 3 in)."""
    missing = {"seconds", "head", "position", "lag", "writing"} - set(frame.columns)
    if missing:
        raise InvalidInputError(f"plot_lag wants a frame from measure_lag; it has no "
                                f"{sorted(missing)} column")
    if frame.empty:
        raise InvalidInputError("plot_lag has nothing to draw: the frame has no rows")
    if ax is None:
        ax = ChartFigure(figsize=(8.0, 3.0), layout="constrained").add_subplot()
    t, head, position = frame["seconds"], frame["head"], frame["position"]
    ax.plot(t, head, color=WRITE, linewidth=2, drawstyle="steps-post",
            label="log head (write side: events appended)")
    ax.plot(t, position, color=READ, linewidth=2, drawstyle="steps-post",
            label="read model position (read side: events applied)")
    ax.fill_between(t, position, head, step="post", color=READ, alpha=0.2, linewidth=0,
                    label="lag: written, not yet readable")
    stopped = float(frame["seconds"][~frame["writing"]].iloc[0]) if not frame["writing"].all() \
        else float(t.iloc[-1])
    ax.axvline(stopped, color="#777777", linestyle="--", linewidth=1)
    ax.annotate("writes stop", xy=(stopped, float(head.max())), xytext=(4, -4),
                textcoords="offset points", fontsize=FONT, color="#555555", va="top")
    worst = frame.loc[frame["lag"].idxmax()]
    if worst["lag"] > 0:
        ax.annotate(f"{int(worst['lag'])} events behind", fontsize=FONT,
                    xy=(worst["seconds"], (worst["head"] + worst["position"]) / 2),
                    xytext=(25, -12), textcoords="offset points", color="#333333",
                    va="center",
                    arrowprops={"arrowstyle": "-", "color": "#777777", "linewidth": 0.8})
    caught = frame[(~frame["writing"]) & (frame["lag"] == 0)]
    if not caught.empty:
        at = float(caught["seconds"].iloc[0])
        ax.annotate(f"caught up after {at - stopped:.2f} s more", fontsize=FONT,
                    xy=(at, float(caught["head"].iloc[0])), xytext=(-5, -62),
                    textcoords="offset points", color="#333333", ha="right",
                    arrowprops={"arrowstyle": "-", "color": "#777777", "linewidth": 0.8})
    settings = frame.attrs
    if {"writes", "interval", "cost"} <= set(settings):
        ax.set_title(f"{settings['writes']} writes, one every {settings['interval'] * 1000:.0f} "
                     f"ms; the projection takes {settings['cost'] * 1000:.0f} ms per event",
                     fontsize=FONT + 1)
    ax.set_xlabel("seconds since the writes began", fontsize=FONT)
    ax.set_ylabel("log position", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.legend(loc="lower right", fontsize=FONT, frameon=False)
    ax.margins(x=0.01)
    return ax.figure


__all__ = ["measure_lag", "plot_cqrs", "plot_lag"]
