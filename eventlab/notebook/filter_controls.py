"""FilterControls: widgets for the common case filters, and the ``Filter`` they make.

A period slider (whole months, or days for a log shorter than three months),
the first and the last activity, a least number of events and the top
variants. What the widgets show is what ``filter`` holds: set them from Python
with ``choose(...)`` and both the widgets and the filter change.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("c1", [el.NewEvent({}, type="open"), el.NewEvent({}, type="close")])
>>> controls = FilterControls(store)
>>> controls.filter is None                      # nothing chosen: every case
True
>>> controls.choose(ends_with="close", min_events=2)
>>> controls.filter
Filter(ends_with=['close'], min_events=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

from .. import analytics
from ..errors import InvalidInputError
from ..filters import Filter
from ..store.base import EventStore

ANY = "(any)"
_CHOSEN = ("time", "starts_with", "ends_with", "min_events", "variants_top")


class FilterControls:
    """The widgets (``.widget``) and the filter they make (``.filter``, None for all)."""

    def __init__(self, store: EventStore, on_change: Callable[[], None] | None = None) -> None:
        self._on_change = on_change
        self._quiet = False
        self._periods = _periods(store)
        labels = [label for label, _ in self._periods] or [""]
        self.period = w.SelectionRangeSlider(options=labels, index=(0, len(labels) - 1),
                                             description="period", continuous_update=False,
                                             layout=w.Layout(width="420px"))
        self.starts_with = w.Dropdown(options=[ANY, *_types(analytics.start_activities(store))],
                                      description="starts with")
        self.ends_with = w.Dropdown(options=[ANY, *_types(analytics.end_activities(store))],
                                    description="ends with")
        self.min_events = w.BoundedIntText(value=0, min=0, max=10**9, description="min events",
                                           layout=w.Layout(width="160px"))
        self.variants_top = w.BoundedIntText(value=0, min=0, max=10**9,
                                             description="top variants",
                                             tooltip="0 keeps every variant",
                                             layout=w.Layout(width="170px"))
        for control in self._controls():
            control.observe(lambda _: self._changed(), "value")
        self.widget = w.VBox([w.HBox([self.period, self.min_events, self.variants_top]),
                              w.HBox([self.starts_with, self.ends_with])])
        self.widget.add_class("el-filter-controls")

    def _controls(self) -> list[w.Widget]:
        return [self.period, self.starts_with, self.ends_with, self.min_events,
                self.variants_top]

    @property
    def filter(self) -> Filter | None:
        """The filter the widgets show, or None when they keep every case."""
        criteria: dict[str, Any] = {}
        first, last = self.period.index
        if self._periods and (first, last) != (0, len(self._periods) - 1):
            criteria["time"] = (self._periods[first][1], self._periods[last][1])
        for name in ("starts_with", "ends_with"):
            value = getattr(self, name).value
            if value != ANY:
                criteria[name] = value
        for name in ("min_events", "variants_top"):
            if getattr(self, name).value > 0:
                criteria[name] = getattr(self, name).value
        return Filter(**criteria) if criteria else None

    def choose(self, *, time: tuple[Any, Any] | None = None, starts_with: str | None = None,
               ends_with: str | None = None, min_events: int = 0,
               variants_top: int = 0) -> None:
        """Set every widget at once (what is not named goes back to "all"); one change.

        ``time=(start, end)`` picks the periods of the slider that hold them:
        the first period starting at or before ``start``, the first boundary at
        or after ``end``.
        """
        period = (0, max(len(self._periods) - 1, 0))
        if time is not None:
            period = self._period_index(time)
        for name, value in (("starts_with", starts_with), ("ends_with", ends_with)):
            options = getattr(self, name).options
            if value is not None and value not in options:
                raise InvalidInputError(f"{name}={value!r}: no case does; choose from "
                                        f"{list(options[1:])}")
        self._quiet = True
        try:
            self.period.index = period
            self.starts_with.value = starts_with or ANY
            self.ends_with.value = ends_with or ANY
            self.min_events.value = min_events
            self.variants_top.value = variants_top
        finally:
            self._quiet = False
        self._changed()

    def _period_index(self, time: tuple[Any, Any]) -> tuple[int, int]:
        if not self._periods:
            raise InvalidInputError("time=: the log is empty, there is no period to pick")
        bounds = [at for _, at in self._periods]
        start = bounds[0] if time[0] is None else pd.Timestamp(time[0], tz="UTC")
        end = bounds[-1] if time[1] is None else pd.Timestamp(time[1], tz="UTC")
        first = max([i for i, at in enumerate(bounds) if at <= start] or [0])
        last = min([i for i, at in enumerate(bounds) if at >= end] or [len(bounds) - 1])
        if last <= first:
            raise InvalidInputError(f"time={time!r}: the end is not after the start")
        return (first, last)

    def _changed(self) -> None:
        if not self._quiet and self._on_change is not None:
            self._on_change()


def _types(frame: pd.DataFrame) -> list[str]:
    return [str(t) for t in frame["type"]]


def _periods(store: EventStore) -> list[tuple[str, pd.Timestamp]]:
    """Period boundaries covering the log: month starts, or days for a short log; the
    last one lies after the last event, so the whole range keeps every case."""
    span = store.sql("select min(recorded_at) as first, max(recorded_at) as last from events")
    first, last = span["first"][0], span["last"][0]
    if pd.isna(first):
        return []
    first, last = pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")
    if last - first > pd.Timedelta(days=90):
        start = first.normalize().replace(day=1)
        bounds = pd.date_range(start, last + pd.offsets.MonthBegin(1), freq="MS")
        label = "%Y-%m"
    else:
        bounds = pd.date_range(first.normalize(), last.normalize() + pd.Timedelta(days=1),
                               freq="D")
        label = "%Y-%m-%d"
    if bounds[-1] <= last:
        bounds = bounds.append(pd.DatetimeIndex([bounds[-1] + (bounds[-1] - bounds[-2])]))
    return [(at.strftime(label), at) for at in bounds]
