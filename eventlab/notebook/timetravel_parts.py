"""The parts TimeTravel is built from: the time slider's whole steps and the event list's rows.

``TimeAxis`` maps a stream's recorded times onto whole slider steps and back;
``EventRow`` is one reusable line of the event list (a tick box and a button),
so a list over a stream of any length has the same few widgets.

>>> from datetime import UTC, datetime, timedelta
>>> start = datetime(2024, 1, 1, tzinfo=UTC)
>>> axis = TimeAxis(start, start + timedelta(hours=10))
>>> axis.ticks, axis.moment(axis.tick_of(start + timedelta(hours=3))) >= start + timedelta(hours=3)
(1000, True)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ipywidgets as w

from ..envelope import RecordedEvent
from .render import payload_line, swatch

#: The most steps the time slider has (fewer when the stream spans fewer microseconds).
TIME_TICKS = 1000
_US = timedelta(microseconds=1)


class TimeAxis:
    """Whole steps over a stream's recorded times, for the time slider.

    Step 0 is before the first event; steps 1..``ticks`` are moments spread
    evenly (to the microsecond) from ``first`` to ``last``. An event recorded
    at ``t`` sits at the first step whose moment is at or after ``t``, so the
    step before it is a moment without it. The steps are whole numbers: a
    browser has nothing to round, and sends no other value back.

    >>> from datetime import UTC
    >>> axis = TimeAxis(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), 5)
    >>> axis.ticks, str(axis.moment(2)), axis.tick_of(datetime(2024, 1, 1, 7, tzinfo=UTC))
    (5, '2024-01-01 06:00:00+00:00', 3)
    """

    def __init__(self, first: datetime, last: datetime, most: int = TIME_TICKS) -> None:
        self.start = first
        self.span = max((last - first) // _US, 0)
        self.ticks = max(min(most, self.span + 1), 1)

    def moment(self, tick: int) -> datetime | None:
        """The moment step ``tick`` stands for (None for step 0, before every event)."""
        if tick <= 0:
            return None
        if self.ticks == 1:
            return self.start + _US * self.span
        return self.start + _US * (self.span * (min(tick, self.ticks) - 1) // (self.ticks - 1))

    def tick_of(self, at: datetime) -> int:
        """The first step whose moment is at or after ``at``."""
        if self.ticks == 1:
            return 1
        offset = min(max((at - self.start) // _US, 0), self.span)
        return 1 + -(-offset * (self.ticks - 1) // self.span)


class EventRow:
    """One line of the event list: a tick box (kept or left out) and a button to go there.

    A list has a fixed number of these whatever the stream's length: moving re-labels them.
    """

    def __init__(self) -> None:
        self.version = 0
        self.keep = w.Checkbox(value=True, indent=False, description="",
                               layout=w.Layout(width="22px"))
        self.colour = w.HTML(layout=w.Layout(width="16px"))
        self.jump = w.Button(layout=w.Layout(width="360px"))
        self.box = w.HBox([self.keep, self.colour, self.jump],
                          layout=w.Layout(display="none"))
        self.box.add_class("el-row")

    def show(self, event: RecordedEvent | None, current: bool, colour: str | None) -> None:
        """Show ``event`` (None hides the row); ``current`` marks the version shown."""
        if event is None:
            self.version = 0
            self.box.layout.display = "none"
            return
        self.version = event.version
        self.jump.description = f"v{event.version} {event.type} {payload_line(event.data, 40)}"
        self.jump.tooltip = f"go to version {event.version}"
        self.jump.button_style = "info" if current else ""
        self.colour.value = swatch(colour)
        self.box.layout.display = "flex"
