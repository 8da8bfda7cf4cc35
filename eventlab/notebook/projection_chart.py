"""ProjectionChart: watch a projection build as the log is applied, event by event.

The chart folds the global log through a projection (``initial_state`` and
``apply(state, event)``) and redraws the user's ``plot(state, ax)`` every
``every`` events, with the current position and event count. ``run()`` drives
it to the head, ``follow()`` keeps it live through a subscription, and
``animate_projection`` renders frames into a matplotlib animation for slides.
``plot_project_history`` draws the projection's numbers as lines over the whole
log, sampled finely enough to show their shape.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited, Opened
>>> class Count(el.Projection):
...     def initial_state(self):
...         return 0
...     def apply(self, state, event):
...         return state + 1
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [Opened("ada"), Deposited(5.0)])
>>> chart = ProjectionChart(store, Count(), plot=lambda n, ax: ax.bar(["events"], [n]))
>>> chart.run(), chart.state, chart.position
(2, 2, 2)
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as w
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..envelope import RecordedEvent
from ..errors import InvalidInputError
from ..projection import apply_event, fold, project_history, type_names
from ..store.base import EventStore
from ..timetravel import state_record
from .render import ChartFigure, figure_png, png_img, show_png
from .view import View

Plot = Callable[[Any, Any], Any]


def _types(store: EventStore, projection: Any, types: list[str] | None) -> list[str] | None:
    names = type_names(store, types if types is not None else getattr(projection, "types", None))
    return None if names is None else sorted(names)


def _draw(fig: ChartFigure, plot: Plot, state: Any, position: int, count: int,
          title: str | None, labels: tuple[str | None, str]) -> None:
    """Draw one frame; the axis labels ``labels`` (x, y) go where ``plot`` set none."""
    fig.clear()
    ax = fig.add_subplot()
    plot(state, ax)
    xlabel, ylabel = labels
    if xlabel and not ax.get_xlabel():
        ax.set_xlabel(xlabel)
    if not ax.get_ylabel():
        ax.set_ylabel(ylabel)
    label = f"position {position} · {count} events applied"
    ax.set_title(f"{title}\n{label}" if title else label, fontsize=10)


class ProjectionChart(View):
    """Apply the log to ``projection`` step by step and redraw ``plot(state, ax)``.

    ``every`` is how many events pass between redraws (the last event applied
    always gets a frame). ``types`` restricts the events read to those type
    names (default: the projection's own ``types``). ``xlabel`` and ``ylabel``
    label the axes where ``plot`` does not (the y axis is labelled in any case:
    by default with the projection's class name). From Python: ``step(n)``,
    ``run(until=None, delay=0)``, ``reset()``, ``follow()`` / ``stop()``;
    ``state``, ``position``, ``count`` and ``frames`` (how many times the chart
    was drawn) show where it is.
    """

    def __init__(self, store: EventStore, projection: Any, plot: Plot, *, every: int = 1,
                 types: list[str] | None = None, title: str | None = None,
                 figsize: tuple[float, float] = (6.0, 3.2), xlabel: str | None = None,
                 ylabel: str | None = None) -> None:
        if not callable(plot):
            raise InvalidInputError(f"plot must be a callable plot(state, ax), got {plot!r}")
        if not isinstance(every, int) or every < 1:
            raise InvalidInputError(f"every must be a positive number of events, got {every!r}")
        self.store, self.projection, self.plot = store, projection, plot
        self.every, self.types, self.title = every, _types(store, projection, types), title
        self.labels = (xlabel, ylabel or type(projection).__name__)
        self.figure = ChartFigure(figsize=figsize, layout="constrained")
        self.subscription: Any = None
        self._head_seen = 0
        self._lock = threading.RLock()
        self._image = w.Image(format="png")
        self._label = w.HTML()
        buttons = {"step": ("step", "step-forward"), "run": ("run to head", "fast-forward"),
                   "reset": ("reset", "undo")}
        self._buttons = {k: w.Button(description=d, icon=i) for k, (d, i) in buttons.items()}
        self._follow = w.ToggleButton(description="follow live", icon="rss")
        self._buttons["step"].on_click(lambda _: self.step(every))
        self._buttons["run"].on_click(lambda _: self.run())
        self._buttons["reset"].on_click(lambda _: self.reset())
        self._follow.observe(lambda ch: self.follow() if ch["new"] else self.stop(), "value")
        self.widget = w.VBox([w.HBox([*self._buttons.values(), self._follow]),
                              self._label, self._image])
        self.reset()

    # -- stepping -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the projection's initial state, before position 1."""
        with self._lock:
            self.state = self.projection.initial_state()
            self.position = 0
            self.count = 0
            self.frames = 0
            self._redraw()

    def step(self, n: int = 1) -> int:
        """Apply up to ``n`` more events (fewer at the head); return how many were applied."""
        with self._lock:
            events = self.store.read_all(self.position + 1, limit=n, types=self.types)
            return self._consume(events, delay=0.0)

    def run(self, until: int | None = None, delay: float = 0.0) -> int:
        """Apply events up to position ``until`` (default: the head); return how many.

        ``delay`` sleeps between frames so a live notebook shows the build-up.
        """
        with self._lock:
            events = self.store.read_all(self.position + 1, types=self.types)
            if until is not None:
                events = (e for e in events if e.position <= until)
            return self._consume(events, delay)

    def _consume(self, events: Iterator[RecordedEvent], delay: float) -> int:
        applied = 0
        for event in events:
            self._apply_one(event)
            applied += 1
            if self.count % self.every == 0:
                self._redraw()
                if delay:
                    time.sleep(delay)
        if applied and self.count % self.every:
            self._redraw()
        return applied

    def _apply_one(self, event: RecordedEvent) -> None:
        self.state = apply_event(self.projection, self.state, event,
                                 f"{type(self.projection).__name__}.apply")
        self.position = event.position
        self.count += 1

    # -- live -------------------------------------------------------------------------------

    def follow(self) -> Any:
        """Catch up, then redraw as new events are appended (a store subscription)."""
        with self._lock:
            if self.subscription is None:
                self.subscription = self.store.subscribe(
                    self._on_live, from_position=self.position + 1, types=self.types)
            if not self._follow.value:
                self._follow.value = True
            return self.subscription

    def _on_live(self, event: RecordedEvent) -> None:
        with self._lock:
            if event.position <= self.position:   # already applied by step()/run()
                return
            self._apply_one(event)
            if self.count % self.every == 0 or self._caught_up(event.position):
                self._redraw()

    def _caught_up(self, position: int) -> bool:
        """True when ``position`` is the log's last: asks the store only once the head
        it last gave is reached (on a server, each ask is a round trip)."""
        if position < self._head_seen:
            return False
        self._head_seen = self.store.head()
        return position >= self._head_seen

    def stop(self) -> None:
        """Stop following live appends (raises if the subscription's handler failed)."""
        sub, self.subscription = self.subscription, None
        if self._follow.value:
            self._follow.value = False
        if sub is not None:
            sub.close()

    # -- drawing ----------------------------------------------------------------------------

    def _redraw(self) -> None:
        _draw(self.figure, self.plot, self.state, self.position, self.count, self.title,
              self.labels)
        self.frames += 1
        self._png = figure_png(self.figure)
        show_png(self._image, self._png)
        self._label.value = (f'<span class="el-progress" data-position="{self.position}" '
                             f'data-count="{self.count}">position <b>{self.position}</b> of '
                             f"{self.store.head()} · {self.count} events applied</span>")

    def render(self) -> str:
        return f"<div>{self._label.value}<br/>{png_img(self._png, 'projection chart')}</div>"

    def animation(self, frames: int | None = None, interval: int = 200) -> FuncAnimation:
        """A matplotlib animation of this chart's projection over the whole log."""
        return animate_projection(self.store, self.projection, self.plot, every=self.every,
                                  types=self.types, title=self.title, frames=frames,
                                  interval=interval, figsize=tuple(self.figure.get_size_inches()),
                                  xlabel=self.labels[0], ylabel=self.labels[1])

    def __repr__(self) -> str:
        return (f"<ProjectionChart {type(self.projection).__name__} at position "
                f"{self.position}, {self.count} events, {html.escape(str(self.frames))} frames>")


def animate_projection(store: EventStore, projection: Any, plot: Plot, *, every: int = 1,
                       types: list[str] | None = None, title: str | None = None,
                       frames: int | None = None, interval: int = 200,
                       figsize: tuple[float, float] = (6.0, 3.2), xlabel: str | None = None,
                       ylabel: str | None = None) -> FuncAnimation:
    """Render the projection's build-up as a ``FuncAnimation`` (for slides and static pages).

    One frame for the initial state, one every ``every`` events, and the final
    state. ``frames`` caps the frame count by widening ``every``. Show it with
    ``HTML(anim.to_jshtml())`` or save a GIF with
    ``anim.save("p.gif", writer=PillowWriter(fps=4))``.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Opened
    >>> class Count(el.Projection):
    ...     def initial_state(self): return 0
    ...     def apply(self, state, event): return state + 1
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("a-1", [Opened("ada")] * 3)
    >>> "<img" in animate_projection(store, Count(), lambda n, ax: ax.bar([0], [n])).to_jshtml()
    True
    """
    total = store.head()
    types = _types(store, projection, types)
    if frames is not None and frames > 0:
        every = max(every, -(-total // frames))
    fig = ChartFigure(figsize=figsize, layout="constrained")

    def states() -> Iterator[tuple[Any, int, int]]:
        start = state = projection.initial_state()
        count = position = 0
        yield state, position, count
        for state, event in fold(projection, start, store.read_all(types=types),
                                 where=f"{type(projection).__name__}.apply"):
            count, position = count + 1, event.position
            if count % every == 0:
                yield state, position, count
        if count % every:
            yield state, position, count

    def draw(frame: tuple[Any, int, int]) -> list[Any]:
        state, position, count = frame
        _draw(fig, plot, state, position, count, title,
              (xlabel, ylabel or type(projection).__name__))
        return []

    n_frames = 1 + total // every + (1 if total % every else 0)
    return FuncAnimation(fig, draw, frames=states, interval=interval, blit=False,
                         save_count=n_frames, cache_frame_data=False, repeat=False)


def plot_project_history(store: EventStore, projection: Any, columns: list[str] | None = None,
                         *, points: int = 400, title: str | None = None,
                         ylabel: str | None = None, ax: Axes | None = None) -> Figure:
    """Lines of a projection's numbers as the log is applied (``el.project_history``):
    each numeric field of its state (or ``columns``) against the global position.

    The state is sampled at about ``points`` evenly spaced events (at every event
    when the projection sees fewer), from the initial state to the head, so a
    cumulative line shows its shape. ``ylabel`` defaults to the projection's
    class name.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Deposited
    >>> class Total(el.Projection):
    ...     def initial_state(self): return 0.0
    ...     def apply(self, state, event): return state + event.data.amount
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("a", [Deposited(1.0)] * 1000)
    >>> line = plot_project_history(store, Total()).axes[0].lines[0]
    >>> len(line.get_xdata()), float(line.get_ydata()[-1])
    (501, 1000.0)
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise InvalidInputError(f"points must be a whole number from 2 up, got {points!r}")
    types = _types(store, projection, None)
    seen = int(store.sql("select count(*) as n from events" + (
        "" if types is None else " where list_contains($1, type)"),
        None if types is None else [types])["n"].iloc[0])
    history = project_history(store, projection, every=max(1, seen // points))
    fields = set(state_record(projection.initial_state()))     # a field may be "events"
    numeric = [c for c in history.columns if (c in fields or c not in ("position", "events"))
               and history[c].dtype.kind in "biuf"]
    columns = numeric if columns is None else list(columns)
    unknown = [c for c in columns if c not in numeric]
    if unknown or not columns:
        raise InvalidInputError(
            f"plot_project_history draws numeric fields of the state; {unknown or 'none'} "
            f"cannot be drawn; the numeric fields are {numeric}")
    if ax is None:
        ax = ChartFigure(figsize=(7.0, 3.2), layout="constrained").add_subplot()
    name = type(projection).__name__
    for column in columns:
        ax.plot(history["position"], history[column], label=column, linewidth=1.5)
    ax.set_xlabel("global position (events applied in log order)")
    ax.set_ylabel(ylabel or name)
    ax.set_title(title or f"{name} as the log is applied: {len(history):,} points "
                 f"over {seen:,} events", fontsize=10)
    if len(columns) > 1 or columns != ["state"]:
        ax.legend(fontsize=8, frameon=False)
    return ax.figure
