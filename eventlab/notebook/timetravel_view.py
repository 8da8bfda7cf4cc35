"""TimeTravel: scrub one stream's versions and see each event and the state it made.

A slider (with play and step buttons) moves over versions 0..current, or over
``recorded_at`` time. At each version the view shows the event just applied,
the state after it with the fields that event changed highlighted, what it
changed (before and after, path by path), a strip of the whole stream with the
current event marked, and a list of the events around it: click one to jump
there, untick it to see the state without it. What-if mode drops or edits
events and shows the alternative state next to the real one; the store is
never touched.

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
>>> tt.skipped = {2}
>>> tt.whatif.alternative_state.balance, tt.skipped
(5.0, frozenset({2}))
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import ipywidgets as w

from ..aggregate import Aggregate
from ..envelope import RecordedEvent
from ..errors import EventlabError
from ..events import dumps, to_builtins
from ..store.base import EventStore, InvalidInputError
from ..timelines import check_version
from ..timetravel import Diff, Timeline, WhatIf, timeline, what_if
from .plots import type_colours
from .render import (
    diff_table,
    event_card,
    event_rows,
    short,
    state_table,
    timeline_marks,
    timeline_svg,
)
from .timetravel_parts import EventRow, TimeAxis
from .view import View

AXES = ("version", "time")
KINDS = ("drop this event", "edit this event")
#: How many events the list shows around the current version (the rows are reused).
ROWS = 11


class TimeTravel(View):
    """A widget over one stream's history under an aggregate.

    Python-side API: ``version`` (settable), ``at`` (settable datetime),
    ``axis`` ("version" or "time"), ``state``, ``event``, ``changes``,
    ``skipped`` (settable set of versions left out), ``step(n)``,
    ``what_if(drop=True | edit=event_or_dict)``, ``render()``, ``snapshot()``.
    The stream is read through the cached ``eventlab.timetravel`` timeline;
    each step folds a few events and reads only the events the list shows.
    """

    def __init__(self, store: EventStore, aggregate: Aggregate, stream_id: str, *,
                 version: int | None = None, axis: str = "version", width: int = 560) -> None:
        self.store, self.aggregate, self.stream_id = store, aggregate, stream_id
        self.timeline: Timeline = timeline(store, aggregate, stream_id)
        self.width = width
        self.whatif: WhatIf | None = None
        self._skipped: frozenset[int] = frozenset()
        self._edit: tuple[int, Any] | None = None   # (version, replacement) of the what-if
        self._quiet = False      # controls being set from Python: their observers stand still
        self._from_time = False  # the version is being set by the time slider
        self._build()
        self._wire()
        self._load()
        self.axis = axis
        start = self.length if version is None else self._checked(version)
        self._slider.value = start
        self._show(start)   # observers fire only on change: draw the first frame here

    def _build(self) -> None:
        self._slider = w.IntSlider(value=0, min=0, max=0, description="version",
                                   continuous_update=True, layout=w.Layout(width="420px"))
        self._play = w.Play(value=0, min=0, max=0, interval=700, description="play")
        w.jslink((self._play, "value"), (self._slider, "value"))
        self._back = w.Button(icon="step-backward", tooltip="previous version",
                              layout=w.Layout(width="40px"))
        self._forward = w.Button(icon="step-forward", tooltip="next version",
                                 layout=w.Layout(width="40px"))
        self._axis = w.ToggleButtons(options=AXES, value="version",
                                     style={"button_width": "70px"})
        # Whole steps only: a value set from Python reaches the browser unrounded, so
        # the browser never sends back a different one.
        self._time = w.IntSlider(value=0, min=0, max=0, readout=False, description="time",
                                 layout=w.Layout(width="420px"))
        self._time_label = w.HTML()
        self._time_row = w.HBox([self._time, self._time_label], layout=w.Layout(display="none"))
        self._header, self._timeline_html = w.HTML(), w.HTML()
        self._event_html, self._state_html, self._diff_html = w.HTML(), w.HTML(), w.HTML()
        self._list_caption = w.HTML()
        self._rows = [EventRow() for _ in range(ROWS)]
        self._whatif_toggle = w.ToggleButton(description="what if…", icon="flask")
        self._whatif_kind = w.Dropdown(options=KINDS, layout=w.Layout(width="170px"))
        self._whatif_edit = w.Textarea(placeholder='payload as JSON, e.g. {"amount": 5}',
                                       layout=w.Layout(width="300px", height="60px",
                                                       display="none"))
        self._whatif_run = w.Button(description="replay", icon="play")
        self._whatif_html = w.HTML()
        self._whatif_box = w.VBox(
            [w.HBox([self._whatif_kind, self._whatif_edit, self._whatif_run]),
             self._whatif_html], layout=w.Layout(display="none"))
        event_list = w.VBox([self._list_caption, *(r.box for r in self._rows)],
                            layout=w.Layout(min_width="400px"))
        self.widget = w.VBox([
            w.HBox([self._play, self._back, self._forward, self._slider]),
            self._time_row, w.HBox([w.Label("scrub by"), self._axis, self._whatif_toggle]),
            self._header, self._timeline_html,
            w.HBox([event_list, w.VBox([w.HBox([self._event_html, self._state_html]),
                                        self._diff_html])]),
            self._whatif_box], layout=w.Layout(width="100%"))

    def _wire(self) -> None:
        self._slider.observe(lambda ch: self._show(ch["new"]), "value")
        self._back.on_click(lambda _: self.step(-1))
        self._forward.on_click(lambda _: self.step(1))
        self._axis.observe(lambda ch: self._set_axis(ch["new"]), "value")
        self._time.observe(lambda ch: self._on_time(ch["new"]), "value")
        self._whatif_toggle.observe(lambda ch: self._toggle_whatif(ch["new"]), "value")
        self._whatif_kind.observe(lambda ch: self._quiet or self._sync_whatif(), "value")
        self._whatif_run.on_click(lambda _: self._run_whatif())
        for row in self._rows:
            row.jump.on_click(lambda _, row=row: self._jump(row))
            row.keep.observe(lambda ch, row=row: self._tick(row, ch["new"]), "value")

    def _load(self) -> None:
        """Take the timeline's length, types and times into the sliders, strip and colours."""
        line = self.timeline
        n = line.version
        types = line.types
        names = list(getattr(types, "names", None) or dict.fromkeys(types))
        self._types = types
        self._palette = type_colours(self.store, names)
        self._marks = timeline_marks(types, self.width, palette=self._palette)
        self._play.max = self._slider.max = n
        self._axis_map = TimeAxis(line.time_of(1), line.time_of(n)) if n else None
        self._time.max = self._axis_map.ticks if self._axis_map else 0
        self._skipped = frozenset(v for v in self._skipped if v <= n)

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
        return self.timeline.time_of(self.version) if self.version else None

    @at.setter
    def at(self, moment: datetime) -> None:
        self.version = self.timeline.version_at(moment)

    @property
    def skipped(self) -> frozenset[int]:
        """The versions left out (unticked in the list); the what-if replays without them."""
        return self._skipped

    @skipped.setter
    def skipped(self, versions: Iterable[int]) -> None:
        if isinstance(versions, (str, bytes, int)) or not isinstance(versions, Iterable):
            raise InvalidInputError(f"skipped must be a set of versions, got {versions!r}")
        self._skip(frozenset(self._checked(v, low=1) for v in versions))

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
        kept in ``.whatif`` and shown next to the real state; the controls
        (the tick boxes, the drop/edit choice and the edit box) show it too.
        """
        version = self.version if version is None else self._checked(version)
        if version == 0:
            raise InvalidInputError("version 0 is the initial state: pick an event to change")
        if drop == (edit is not None):
            raise InvalidInputError("what_if needs exactly one of drop=True or edit=...")
        if drop:
            return self._skip(frozenset({version}))   # one version chosen: never None
        new = self._edited(self.timeline.event(version), edit)
        result = what_if(self.store, self.aggregate, self.stream_id, replace={version: new})
        self._set_whatif(result, f"v{version} as {short(new, 50)}", frozenset(), (version, new))
        return result

    # -- internals ------------------------------------------------------------------------

    def _checked(self, version: Any, low: int = 0) -> int:
        return check_version(self.stream_id, version, self.length, low)

    def _skip(self, chosen: frozenset[int]) -> WhatIf | None:
        """Replay without the ``chosen`` versions (none: no what-if) and show it."""
        result = None
        if chosen:
            result = what_if(self.store, self.aggregate, self.stream_id, drop=sorted(chosen))
        label = "without " + ", ".join(f"v{v}" for v in sorted(chosen))
        self._set_whatif(result, label, chosen, None)
        return result

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
        changes = self.timeline.changes(version)
        colour = self._palette.get(event.type) if event else None
        self._event_html.value = event_card(event, title="event just applied", colour=colour)
        self._state_html.value = state_table(state, changed=changes.fields,
                                             title=f"state after version {version}")
        self._diff_html.value = diff_table(changes, title=f"what version {version} changed")
        self._timeline_html.value = timeline_svg(self._types, version, self.width,
                                                 marks=self._marks)
        self._show_rows(version)
        if not self._from_time:
            self._quietly(self._time, "value",
                          self._axis_map.tick_of(event.recorded_at) if event else 0)
            self._time_label.value = html.escape(short(event.recorded_at)) if event \
                else "before the first event"
        self._sync_whatif()
        # The header goes last: once it names the version, the whole frame is sent.
        when = f" · recorded {html.escape(short(event.recorded_at))}" if event else ""
        self._header.value = (f'<div class="el-header" data-version="{version}">'
                              f"<b>{html.escape(self.stream_id)}</b> · version "
                              f"<b>{version}</b> of {n}{when}</div>")

    def _window(self, version: int) -> tuple[int, int]:
        """The versions the list shows: ``ROWS`` of them around ``version``."""
        first = min(max(version - ROWS // 2, 1), max(self.length - ROWS + 1, 1))
        return first, min(first + ROWS - 1, self.length)

    def _show_rows(self, version: int) -> None:
        first, last = self._window(version)
        self._listed = self.timeline.events_between(first, last)
        self._list_caption.value = (
            f'<div class="el-events-caption"><b>events {first}–{last} of {self.length}</b>'
            " · click to go there, untick to leave out</div>"
            if self._listed else "<b>no events yet</b>")
        for i, row in enumerate(self._rows):
            event = self._listed[i] if i < len(self._listed) else None
            row.show(event, event is not None and event.version == version,
                     self._palette.get(event.type) if event else None)
        self._sync_ticks()

    def _sync_ticks(self) -> None:
        for row in self._rows:
            if row.version:
                self._quietly(row.keep, "value", row.version not in self._skipped)

    def _quietly(self, widget: Any, name: str, value: Any) -> None:
        """Set a control from Python without its observer taking it for the user's doing."""
        self._quiet, before = True, self._quiet
        try:
            setattr(widget, name, value)
        finally:
            self._quiet = before

    def _jump(self, row: EventRow) -> None:
        if row.version:
            self.version = row.version

    def _tick(self, row: EventRow, keep: bool) -> None:
        if self._quiet or not row.version:
            return
        wanted = self._skipped - {row.version} if keep else self._skipped | {row.version}
        try:
            self.skipped = wanted
        except (EventlabError, ValueError, TypeError) as problem:
            self._quietly(row.keep, "value", not keep)   # the box shows what is in force
            self._quietly(self._whatif_toggle, "value", True)
            self._whatif_box.layout.display = "flex"
            self._whatif_html.value = _error(f"leaving out v{row.version} failed: {problem}")

    def _set_axis(self, axis: str) -> None:
        self._time_row.layout.display = "flex" if axis == "time" else "none"

    def _on_time(self, tick: int) -> None:
        if self._quiet or self._axis_map is None:
            return
        moment = self._axis_map.moment(tick)
        self._from_time = True
        try:
            self._slider.value = self.timeline.version_at(moment) if moment else 0
        finally:
            self._from_time = False
        self._time_label.value = html.escape(short(moment)) if moment else "before the first event"

    def _set_whatif(self, result: WhatIf | None, label: str, skipped: frozenset[int],
                    edit: tuple[int, Any] | None) -> None:
        self.whatif, self._skipped, self._edit = result, skipped, edit
        self._whatif_html.value = "" if result is None else _render_whatif(result, label)
        if result is not None:
            self._quietly(self._whatif_toggle, "value", True)
            self._whatif_box.layout.display = "flex"
            self._quietly(self._whatif_kind, "value", KINDS[1] if edit else KINDS[0])
        self._sync_ticks()
        self._sync_whatif()

    def _toggle_whatif(self, on: bool) -> None:
        self._whatif_box.layout.display = "flex" if on else "none"
        if not on and not self._quiet:
            self._set_whatif(None, "", frozenset(), None)

    def _sync_whatif(self) -> None:
        """The edit box shows the edit in force at this version, else this event's payload."""
        editing = self._whatif_kind.value == KINDS[1]
        self._whatif_edit.layout.display = "flex" if editing else "none"
        text = ""
        if editing and self._edit is not None and self._edit[0] == self.version:
            text = dumps(to_builtins(self._edit[1]))
        elif editing and self.version:
            text = dumps(to_builtins(self.timeline.event(self.version).data))
        self._quietly(self._whatif_edit, "value", text)

    def _run_whatif(self) -> None:
        try:
            if self._whatif_kind.value == KINDS[0]:
                self.what_if(drop=True)
            else:
                self.what_if(edit=json.loads(self._whatif_edit.value or "{}"))
        except (EventlabError, ValueError, TypeError) as problem:
            self._whatif_html.value = _error(str(problem))

    def render(self) -> str:
        listed = event_rows(self._listed, self.version, self.length, self._skipped,
                            self._palette)
        parts = [self._header.value, self._timeline_html.value,
                 f'<div style="display:flex;gap:8px;flex-wrap:wrap">{listed}'
                 f"{self._event_html.value}{self._state_html.value}{self._diff_html.value}"
                 "</div>"]
        if self.whatif is not None:
            parts.append(self._whatif_html.value)
        return f'<div class="el-timetravel">{"".join(parts)}</div>'

    def __repr__(self) -> str:
        return (f"<TimeTravel {self.aggregate.name} {self.stream_id!r} "
                f"version {self.version} of {self.length}>")


def _error(text: str) -> str:
    return f'<div class="el-error" style="color:#c33">{html.escape(text)}</div>'


def _render_whatif(result: WhatIf, label: str) -> str:
    table = state_table(result.actual_state, compare=result.alternative_state,
                        title=f"at the head: actual vs what-if ({label})")
    return (f'<div class="el-whatif">{table}<small>{result.actual_length} events actual, '
            f"{result.alternative_length} in the what-if; the store is unchanged</small></div>")


__all__ = ["TimeTravel"]

