"""TimeTravel: scrub one stream's versions and see each event and the state it made.

A slider (with play and step buttons) moves over versions 0..current, or over
``recorded_at`` time. At each version the view shows the event just applied,
the state after it with the fields that event changed highlighted, and a strip
of the whole stream with the current event marked. What-if mode drops or edits
the event at the current version and shows the alternative state next to the
real one; the store is never touched.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("acc-1", [Opened("ada"), Deposited(10.0), Deposited(5.0)])
>>> tt = TimeTravel(store, Account(), "acc-1", version=2)
>>> tt.state.balance, sorted(tt.changes.fields)
(10.0, ['balance', 'transactions'])
>>> tt.version = 3
>>> tt.state.balance
15.0
>>> tt.what_if(drop=True).alternative_state.balance
10.0
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

import ipywidgets as w

from ..aggregate import Aggregate
from ..envelope import RecordedEvent
from ..events import dumps, to_builtins
from ..store.base import EventStore, InvalidInputError
from ..timetravel import Diff, Timeline, WhatIf, timeline, what_if
from .render import event_card, short, state_table, timeline_marks, timeline_svg
from .view import View

AXES = ("version", "time")
_TIME_STEPS = 1000


class TimeTravel(View):
    """A widget over one stream's history under an aggregate.

    Python-side API: ``version`` (settable), ``at`` (settable datetime),
    ``axis`` ("version" or "time"), ``state``, ``event``, ``changes``,
    ``step(n)``, ``what_if(drop=True | edit=event_or_dict)``, ``render()``.
    The stream is read once (through the cached ``eventlab.timetravel``
    timeline); each step folds at most a few dozen events.
    """

    def __init__(self, store: EventStore, aggregate: Aggregate, stream_id: str, *,
                 version: int | None = None, axis: str = "version", width: int = 560) -> None:
        self.store, self.aggregate, self.stream_id = store, aggregate, stream_id
        self.timeline: Timeline = timeline(store, aggregate, stream_id)
        self.width = width
        self.whatif: WhatIf | None = None
        self._syncing = False
        n = self.timeline.version
        self._slider = w.IntSlider(value=0, min=0, max=n, description="version",
                                   continuous_update=True, layout=w.Layout(width="420px"))
        self._play = w.Play(value=0, min=0, max=n, interval=700, description="play")
        w.jslink((self._play, "value"), (self._slider, "value"))
        self._back = w.Button(icon="step-backward", tooltip="previous version",
                              layout=w.Layout(width="40px"))
        self._forward = w.Button(icon="step-forward", tooltip="next version",
                                 layout=w.Layout(width="40px"))
        self._axis = w.ToggleButtons(options=AXES, value="version",
                                     style={"button_width": "70px"})
        self._time = w.FloatSlider(value=0.0, min=0.0, max=1.0, readout=False,
                                   description="time", layout=w.Layout(width="420px"))
        self._time_label = w.HTML()
        self._header = w.HTML()
        self._event_html = w.HTML()
        self._state_html = w.HTML()
        self._timeline_html = w.HTML()
        self._whatif_toggle = w.ToggleButton(description="what if…", icon="flask")
        self._whatif_kind = w.Dropdown(options=["drop this event", "edit this event"],
                                       layout=w.Layout(width="170px"))
        self._whatif_edit = w.Textarea(placeholder='payload as JSON, e.g. {"amount": 5}',
                                       layout=w.Layout(width="300px", height="60px"))
        self._whatif_run = w.Button(description="replay", icon="play")
        self._whatif_html = w.HTML()
        self._whatif_box = w.VBox(
            [w.HBox([self._whatif_kind, self._whatif_edit, self._whatif_run]),
             self._whatif_html], layout=w.Layout(display="none"))
        self._time_row = w.HBox([self._time, self._time_label],
                                layout=w.Layout(display="none"))
        self._marks = ""
        self._types: list[str] = []
        self._start: datetime | None = None
        self._span = 0.0
        self._wire()
        self.widget = w.VBox([
            w.HBox([self._play, self._back, self._forward, self._slider]),
            self._time_row, w.HBox([w.Label("scrub by"), self._axis, self._whatif_toggle]),
            self._header,
            self._timeline_html, w.HBox([self._event_html, self._state_html]),
            self._whatif_box], layout=w.Layout(width="100%"))
        self._load()
        self.axis = axis
        start = n if version is None else self._checked(version)
        self._slider.value = start
        self._show(start)   # observers fire only on change: draw the first frame here

    def _wire(self) -> None:
        self._slider.observe(lambda ch: self._show(ch["new"]), "value")
        self._back.on_click(lambda _: self.step(-1))
        self._forward.on_click(lambda _: self.step(1))
        self._axis.observe(lambda ch: self._set_axis(ch["new"]), "value")
        self._time.observe(lambda ch: self._on_time(ch["new"]), "value")
        self._whatif_toggle.observe(lambda ch: self._toggle_whatif(ch["new"]), "value")
        self._whatif_kind.observe(lambda ch: self._fill_edit(), "value")
        self._whatif_run.on_click(lambda _: self._run_whatif())

    def _load(self) -> None:
        """Take the timeline's events into the slider range, the strip and the time axis."""
        events = self.timeline.events
        n = len(events)
        self._types = [e.type for e in events]
        self._marks = timeline_marks(self._types, self.width)
        self._play.max = self._slider.max = n
        if n:
            self._start = events[0].recorded_at
            self._span = max((events[-1].recorded_at - self._start).total_seconds(), 0.0)
        self._time.max = max(self._span, 1e-6)
        self._time.step = self._time.max / _TIME_STEPS

    # -- the Python-side API ----------------------------------------------------------------

    @property
    def version(self) -> int:
        """The version shown (0 is the initial state)."""
        return self._slider.value

    @version.setter
    def version(self, version: int) -> None:
        self._slider.value = self._checked(version)

    @property
    def length(self) -> int:
        """How many events the stream had when last loaded (the slider's maximum)."""
        return self._slider.max

    @property
    def state(self) -> Any:
        """The aggregate's state after the shown version."""
        return self.timeline.state_at(self.version)

    @property
    def event(self) -> RecordedEvent | None:
        """The event that made the shown version (None at version 0)."""
        return self.timeline.event(self.version) if self.version else None

    @property
    def changes(self) -> Diff:
        """What the shown event changed (``.fields`` are the highlighted ones)."""
        return self.timeline.changes(self.version)

    @property
    def axis(self) -> str:
        return self._axis.value

    @axis.setter
    def axis(self, axis: str) -> None:
        if axis not in AXES:
            raise InvalidInputError(f"axis must be one of {AXES}, got {axis!r}")
        self._axis.value = axis
        self._set_axis(axis)

    @property
    def at(self) -> datetime | None:
        """The ``recorded_at`` of the shown event; set a datetime to jump to that moment."""
        event = self.event
        return event.recorded_at if event else None

    @at.setter
    def at(self, moment: datetime) -> None:
        self.version = self.timeline.version_at(moment)

    def step(self, n: int = 1) -> int:
        """Move ``n`` versions (negative: back), stopping at the ends; return the version."""
        self._slider.value = min(max(self.version + n, 0), self.length)
        return self.version

    def refresh(self) -> int:
        """Pick up events appended since the view was made; return the stream's version."""
        self.timeline.refresh()
        self._load()
        self._show(self.version)
        return self.length

    def what_if(self, *, drop: bool = False, edit: Any = None,
                version: int | None = None) -> WhatIf:
        """Replay the stream without (``drop=True``) or with an edited event at ``version``.

        ``edit`` is a replacement event, or a dict of payload fields to change
        on the current event. The result (``eventlab.timetravel.WhatIf``) is
        kept in ``.whatif`` and shown next to the real state.
        """
        version = self.version if version is None else self._checked(version)
        if version == 0:
            raise InvalidInputError("version 0 is the initial state: pick an event to change")
        if drop == (edit is not None):
            raise InvalidInputError("what_if needs exactly one of drop=True or edit=...")
        if drop:
            result = what_if(self.store, self.aggregate, self.stream_id, drop=[version])
            label = f"without v{version}"
        else:
            new = self._edited(self.timeline.event(version), edit)
            result = what_if(self.store, self.aggregate, self.stream_id,
                             replace={version: new})
            label = f"v{version} as {short(new, 50)}"
        self.whatif = result
        self._whatif_html.value = self._render_whatif(result, label)
        self._whatif_toggle.value = True
        return result

    # -- internals ------------------------------------------------------------------------

    def _checked(self, version: Any) -> int:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInputError(f"version must be an int, got {version!r}")
        if not 0 <= version <= self.length:
            raise InvalidInputError(
                f"stream {self.stream_id!r} has versions 0 to {self.length}; "
                f"there is no version {version}")
        return version

    def _edited(self, original: RecordedEvent, edit: Any) -> Any:
        if not isinstance(edit, dict):
            return edit
        fields = to_builtins(original.data)
        if not isinstance(fields, dict):
            raise InvalidInputError(f"the event at v{original.version} has no fields to edit")
        unknown = set(edit) - set(fields)
        if unknown:
            raise InvalidInputError(
                f"{original.type} at v{original.version} has no field(s) {sorted(unknown)}; "
                f"its fields are {sorted(fields)}")
        return self.store.registry.decode(original.type, dumps({**fields, **edit}, "edit"))

    def _show(self, version: int) -> None:
        n = self.length
        event = self.timeline.event(version) if version else None
        state = self.timeline.state_at(version)
        changed = self.timeline.changes(version).fields if version else set()
        when = f" · recorded {html.escape(short(event.recorded_at))}" if event else ""
        self._event_html.value = event_card(event, title="event just applied")
        self._state_html.value = state_table(state, changed=changed,
                                             title=f"state after version {version}")
        self._timeline_html.value = timeline_svg(self._types, version, self.width,
                                                 marks=self._marks)
        # The header goes last: once it names the version, the whole frame is sent.
        self._header.value = (f'<div class="el-header" data-version="{version}">'
                              f"<b>{html.escape(self.stream_id)}</b> · version "
                              f"<b>{version}</b> of {n}{when}</div>")
        if self._whatif_toggle.value:
            self._fill_edit()
        if self.axis == "time" and not self._syncing and event is not None:
            self._syncing = True
            try:
                self._time.value = (event.recorded_at - self._start).total_seconds()
                self._time_label.value = html.escape(short(event.recorded_at))
            finally:
                self._syncing = False

    def _set_axis(self, axis: str) -> None:
        self._time_row.layout.display = "flex" if axis == "time" else "none"
        if axis == "time":
            self._show(self.version)

    def _on_time(self, seconds: float) -> None:
        if self._syncing or self._start is None:
            return
        moment = self._start + timedelta(seconds=seconds)
        self._time_label.value = html.escape(short(moment))
        self._syncing = True
        try:
            self.version = self.timeline.version_at(moment)
        finally:
            self._syncing = False

    def _toggle_whatif(self, on: bool) -> None:
        self._whatif_box.layout.display = "flex" if on else "none"
        if on:
            self._fill_edit()
        else:
            self.whatif = None
            self._whatif_html.value = ""

    def _fill_edit(self) -> None:
        event = self.event
        editing = self._whatif_kind.value.startswith("edit")
        self._whatif_edit.layout.display = "flex" if editing else "none"
        self._whatif_edit.value = dumps(to_builtins(event.data)) if event and editing else ""

    def _run_whatif(self) -> None:
        try:
            if self._whatif_kind.value.startswith("drop"):
                self.what_if(drop=True)
            else:
                import json

                self.what_if(edit=json.loads(self._whatif_edit.value or "{}"))
        except (InvalidInputError, ValueError, TypeError) as problem:
            self._whatif_html.value = (f'<div class="el-error" style="color:#c33">'
                                       f"{html.escape(str(problem))}</div>")

    @staticmethod
    def _render_whatif(result: WhatIf, label: str) -> str:
        table = state_table(result.actual_state, compare=result.alternative_state,
                            title=f"at the head: actual vs what-if ({label})")
        return (f'<div class="el-whatif">{table}<small>{len(result.actual)} events actual, '
                f"{len(result.alternative)} in the what-if; the store is unchanged</small></div>")

    def render(self) -> str:
        parts = [self._header.value, self._timeline_html.value,
                 f'<div style="display:flex;gap:8px">{self._event_html.value}'
                 f"{self._state_html.value}</div>"]
        if self.whatif is not None:
            parts.append(self._whatif_html.value)
        return f'<div class="el-timetravel">{"".join(parts)}</div>'

    def __repr__(self) -> str:
        return (f"<TimeTravel {self.aggregate.name} {self.stream_id!r} "
                f"version {self.version} of {self.length}>")
