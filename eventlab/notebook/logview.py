"""LogView: one widget to look at a whole log through the plots of ``eventlab.notebook.plots``.

A row of buttons picks the picture (swimlanes, events over time, type counts,
stream lengths, the process map, the dotted chart, case durations); a row of
filter widgets (``FilterControls``) picks the cases. The chart is drawn to a
PNG so it shows in live and in static notebooks alike.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [Opened("ada"), Deposited(5.0)])
>>> view = LogView(store, kind="swimlanes")
>>> view.kind = "swimlanes"
>>> len(view.figure().axes[0].get_yticklabels())
1
>>> view.choose(min_events=3)          # the widgets show it, and the chart follows
>>> view.filter, view.cases
(Filter(min_events=3), 0)
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w
from matplotlib.figure import Figure

from ..errors import InvalidInputError
from ..filters import Filter
from ..store.base import EventStore
from . import plots, process_maps
from .filter_controls import FilterControls
from .render import figure_png, png_img, show_png
from .view import View

#: What LogView can draw: label -> plot function of ``eventlab.notebook.plots``.
KINDS: dict[str, Callable[..., Figure]] = {
    "swimlanes": plots.plot_swimlanes,
    "events over time": plots.plot_events_over_time,
    "type counts": plots.plot_type_counts,
    "stream lengths": plots.plot_stream_lengths,
    "process map": process_maps.process_map,
    "dotted chart": plots.plot_dotted_chart,
    "case durations": plots.plot_case_durations,
}


class LogView(View):
    """Charts of a store's log; ``kind`` (settable) picks one of ``KINDS``.

    ``options`` maps a kind to keyword arguments for its plot function, e.g.
    ``{"swimlanes": {"streams": ["a-1", "a-2"]}}``. ``refresh()`` redraws
    after new appends.

    ``filter=`` narrows every chart to some cases for good; the filter widgets
    narrow further (``choose(...)`` sets them from Python), and ``filter``
    holds the two together.
    """

    def __init__(self, store: EventStore, kind: str = "swimlanes",
                 options: dict[str, dict[str, Any]] | None = None, *,
                 filter: Filter | None = None) -> None:
        if filter is not None and not isinstance(filter, Filter):
            raise InvalidInputError(
                f"filter= takes an eventlab.Filter, got {type(filter).__name__}")
        self.store = store
        self.base_filter = filter
        self.cases = 0
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        unknown = set(self.options) - set(KINDS)
        if unknown:
            raise InvalidInputError(
                f"unknown LogView kind(s) {sorted(unknown)}; choose from {list(KINDS)}")
        self._kind = w.ToggleButtons(options=list(KINDS), value=self._checked(kind),
                                     style={"button_width": "120px"})
        self._refresh = w.Button(icon="refresh", tooltip="redraw with new events",
                                 layout=w.Layout(width="40px"))
        self._image = w.Image(format="png")
        self._caption = w.HTML()
        self._png = b""
        self.controls = FilterControls(store, on_change=self._draw)
        self._kind.observe(lambda ch: self._draw(), "value")
        self._refresh.on_click(lambda _: self.refresh())
        self.widget = w.VBox([w.HBox([self._kind, self._refresh]), self.controls.widget,
                              self._caption, self._image])
        self.widget.add_class("el-logview")
        self._draw()

    @property
    def kind(self) -> str:
        return self._kind.value

    @kind.setter
    def kind(self, kind: str) -> None:
        self._kind.value = self._checked(kind)

    @property
    def filter(self) -> Filter | None:
        """What the charts show: ``filter=`` and the widgets' choice together."""
        chosen = self.controls.filter
        if self.base_filter is None or chosen is None:
            return self.base_filter or chosen
        return self.base_filter & chosen

    def choose(self, **criteria: Any) -> None:
        """Set the filter widgets (see ``FilterControls.choose``) and redraw once."""
        self.controls.choose(**criteria)

    def figure(self, kind: str | None = None) -> Figure:
        """A fresh figure of ``kind`` (default: the one shown)."""
        kind = self._checked(kind or self.kind)
        return KINDS[kind](self.store, filter=self.filter, **self.options.get(kind, {}))

    def refresh(self) -> None:
        """Redraw the current chart from the log as it is now."""
        self._draw()

    def _draw(self) -> None:
        self._png = figure_png(self.figure())
        show_png(self._image, self._png)
        chosen = self.filter
        counted = self.store.sql("select count(distinct stream_id) as cases, count(*) as events "
                                 "from events", filter=chosen)
        self.cases = int(counted["cases"][0])
        shown = (f"{counted['events'][0]:,} events in {self.cases:,} streams" if chosen is None
                 else f"{counted['events'][0]:,} events in {self.cases:,} of "
                      f"{len(self.store.stream_ids()):,} streams: "
                      f"{html.escape(repr(chosen))}")
        self._caption.value = (f'<span class="el-logcaption" data-kind="{html.escape(self.kind)}"'
                               f' data-cases="{self.cases}">{shown}</span>')

    @staticmethod
    def _checked(kind: str) -> str:
        if kind not in KINDS:
            raise InvalidInputError(f"unknown LogView kind {kind!r}; choose from {list(KINDS)}")
        return kind

    def render(self) -> str:
        return f'<div class="el-logview">{self._caption.value}<br/>' \
               f"{png_img(self._png, self.kind)}</div>"
