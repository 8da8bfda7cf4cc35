"""ProjectionChart: watch a projection build as the log is applied, event by event.

The chart folds the global log through a projection (``initial_state`` and
``apply(state, event)``) and redraws the user's ``plot(state, ax)`` every
``every`` events, with the current position and event count. ``run()`` drives
it to the head, ``follow()`` keeps it live through a subscription, and
``animate_projection`` renders frames into a matplotlib animation for slides.

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

from ..envelope import RecordedEvent
from ..errors import InvalidInputError
from ..projection import apply_event, fold, type_names
from ..store.base import EventStore
from .render import ChartFigure, figure_png, png_img
from .view import View

Plot = Callable[[Any, Any], Any]


def _types(store: EventStore, projection: Any, types: list[str] | None) -> list[str] | None:
    names = type_names(store, types if types is not None else getattr(projection, "types", None))
    return None if names is None else sorted(names)


def _draw(fig: ChartFigure, plot: Plot, state: Any, position: int, count: int,
          title: str | None) -> None:
    fig.clear()
    ax = fig.add_subplot()
    plot(state, ax)
    label = f"position {position} · {count} events applied"
    ax.set_title(f"{title}\n{label}" if title else label, fontsize=10)


class ProjectionChart(View):
    """Apply the log to ``projection`` step by step and redraw ``plot(state, ax)``.

    ``every`` is how many events pass between redraws (the last event applied
    always gets a frame). ``types`` restricts the events read to those type
    names (default: the projection's own ``types``). From Python: ``step(n)``,
    ``run(until=None, delay=0)``, ``reset()``, ``follow()`` / ``stop()``;
    ``state``, ``position``, ``count`` and ``frames`` (how many times the chart
    was drawn) show where it is.
    """

    def __init__(self, store: EventStore, projection: Any, plot: Plot, *, every: int = 1,
                 types: list[str] | None = None, title: str | None = None,
                 figsize: tuple[float, float] = (6.0, 3.2)) -> None:
        if not callable(plot):
            raise InvalidInputError(f"plot must be a callable plot(state, ax), got {plot!r}")
        if not isinstance(every, int) or every < 1:
            raise InvalidInputError(f"every must be a positive number of events, got {every!r}")
        self.store, self.projection, self.plot = store, projection, plot
        self.every, self.types, self.title = every, _types(store, projection, types), title
        self.figure = ChartFigure(figsize=figsize)
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
        _draw(self.figure, self.plot, self.state, self.position, self.count, self.title)
        self.frames += 1
        self._png = figure_png(self.figure)
        self._image.value = self._png
        self._label.value = (f'<span class="el-progress" data-position="{self.position}" '
                             f'data-count="{self.count}">position <b>{self.position}</b> of '
                             f"{self.store.head()} · {self.count} events applied</span>")

    def render(self) -> str:
        return f"<div>{self._label.value}<br/>{png_img(self._png, 'projection chart')}</div>"

    def animation(self, frames: int | None = None, interval: int = 200) -> FuncAnimation:
        """A matplotlib animation of this chart's projection over the whole log."""
        return animate_projection(self.store, self.projection, self.plot, every=self.every,
                                  types=self.types, title=self.title, frames=frames,
                                  interval=interval, figsize=tuple(self.figure.get_size_inches()))

    def __repr__(self) -> str:
        return (f"<ProjectionChart {type(self.projection).__name__} at position "
                f"{self.position}, {self.count} events, {html.escape(str(self.frames))} frames>")


def animate_projection(store: EventStore, projection: Any, plot: Plot, *, every: int = 1,
                       types: list[str] | None = None, title: str | None = None,
                       frames: int | None = None, interval: int = 200,
                       figsize: tuple[float, float] = (6.0, 3.2)) -> FuncAnimation:
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
    fig = ChartFigure(figsize=figsize)

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
        _draw(fig, plot, state, position, count, title)
        return []

    n_frames = 1 + total // every + (1 if total % every else 0)
    return FuncAnimation(fig, draw, frames=states, interval=interval, blit=False,
                         save_count=n_frames, cache_frame_data=False, repeat=False)
