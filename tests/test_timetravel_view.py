"""TimeTravel driven from Python, without a browser: real stores, real widgets.

Clicks are the widgets' own handlers (``button.click()``) or trait changes, as
the browser would send them.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

import eventlab as el
from eventlab.examples.bank import Account, AccountState, Deposited, Opened, Withdrew
from eventlab.notebook import ProjectionChart, TimeTravel
from eventlab.notebook.plots import type_colours
from eventlab.notebook.timetravel_parts import TimeAxis
from eventlab.notebook.timetravel_view import ROWS

from conftest import ACCOUNTS_T0 as T0
from conftest import new_store, state_cell, two_accounts

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_US = timedelta(microseconds=1)


@pytest.fixture(params=["duckdb-file", "memory", "postgres"])
def store(request, tmp_path):
    """The two accounts of ``conftest.two_accounts``, on each kind of store."""
    s = two_accounts(new_store(request.param, request, tmp_path))
    yield s
    s.close()


# Forty events at uneven times: gaps of 7 s to 29 h, with odd microseconds, so no
# version's time falls on an even split of the stream's span.
GAPS = [timedelta(seconds=7 + (i * 7919) % 104_000, microseconds=(i * 104_729) % 1_000_000)
        for i in range(40)]
TIMES = [T0 + sum(GAPS[:i + 1], timedelta()) for i in range(40)]


@pytest.fixture(params=["memory", "duckdb"])
def long_store(request, tmp_path):
    """account-1: opened, then 39 deposits of 1..39 at the uneven TIMES."""
    s = new_store(request.param, request, tmp_path)
    events = [Opened("ada")] + [Deposited(float(i)) for i in range(1, 40)]
    s.append("account-1", [el.NewEvent(e, recorded_at=t)
                           for e, t in zip(events, TIMES, strict=True)])
    yield s
    s.close()


def _row_of(tt: TimeTravel, version: int):
    """The row of the event list that shows ``version``."""
    [row] = [r for r in tt._rows if r.version == version]
    return row


# -- versions and the state they show -----------------------------------------------------

def test_timetravel_version_drives_state_and_html(store):
    tt = TimeTravel(store, Account(), "account-1", version=2)
    assert tt.length == 4
    assert (tt.version, tt.state.balance) == (2, 100.0)
    assert state_cell(tt.render(), "balance") == "100.0"
    tt.version = 3
    assert tt.state.balance == 70.0
    html = tt.render()
    assert state_cell(html, "balance") == "70.0"
    assert 'data-version="3"' in html and "Withdrew" in html and "user=" in html
    # the fields the withdrawal changed are highlighted, the others are not
    assert 'class="el-changed" data-field="balance"' in html
    assert 'class="el-changed" data-field="transactions"' in html
    assert 'class="el-changed" data-field="owner"' not in html
    assert tt.event.type == "Withdrew" and tt.changes.fields == {"balance", "transactions"}


def test_timetravel_slider_is_the_same_version(store):
    tt = TimeTravel(store, Account(), "account-1")
    assert tt.version == 4 and tt.state.balance == 82.5       # opens at the head
    tt._slider.value = 1                                      # as the browser would
    assert tt.version == 1 and tt.state.owner == "ada"
    assert 'data-field="owner">&#x27;ada&#x27;' in tt._state_html.value.replace(
        '<mark class="el-changed" data-field="owner">', "")
    tt.version = 0
    assert tt.event is None and "none yet" in tt.render()
    assert 'data-current="0"' in tt.render()


def test_timetravel_steps_stop_at_the_ends(store):
    tt = TimeTravel(store, Account(), "account-1", version=1)
    assert tt.step(-5) == 0
    assert tt.step(2) == 2
    tt._forward.click()
    assert tt.version == 3
    assert tt.step(10) == 4
    tt._back.click()
    assert tt.version == 3


def test_timetravel_rejects_a_version_outside_the_stream(store):
    tt = TimeTravel(store, Account(), "account-1", version=2)
    with pytest.raises(el.InvalidInputError, match="versions 0 to 4"):
        tt.version = 5
    with pytest.raises(el.InvalidInputError, match="must be an int"):
        tt.version = "3"
    assert tt.version == 2


def test_timetravel_picks_up_new_events(store):
    tt = TimeTravel(store, Account(), "account-1")
    store.append("account-1", [Withdrew(2.5)])
    assert tt.refresh() == 5
    tt.version = 5
    assert tt.state.balance == 80.0 and 'data-length="5"' in tt.render()
    assert tt._time.max == TimeAxis(T0, tt.timeline.time_of(5)).ticks


def test_the_diff_shows_before_and_after_of_each_changed_path(store):
    tt = TimeTravel(store, Account(), "account-1", version=3)
    rows = {path: re.findall(r"<td[^>]*>(.*?)</td>", row)[1:]
            for path, row in re.findall(r'data-path="(\w+)">(.*?)</tr>', tt._diff_html.value)}
    assert rows == {"balance": ["100.0", "70.0"], "transactions": ["1", "2"]}
    assert set(rows) == set(tt.changes)
    tt.version = 0
    assert "nothing changed" in tt._diff_html.value


# -- the time axis: whole steps, and what Python sets stays set ---------------------------

def test_time_axis_puts_each_event_at_the_first_step_at_or_after_it(long_store):
    line = el.timetravel.timeline(long_store, Account(), "account-1")
    for most in (1000, 37, 2):
        axis = TimeAxis(line.time_of(1), line.time_of(40), most)
        assert axis.ticks == most and axis.moment(axis.ticks) == TIMES[-1]
        assert axis.moment(0) is None and axis.moment(1) == TIMES[0]
        for v in range(1, 41):
            tick = axis.tick_of(line.time_of(v))
            assert line.version_at(axis.moment(tick)) >= v
            before = axis.moment(tick - 1)
            assert (0 if before is None else line.version_at(before)) < v
    tiny = TimeAxis(T0, T0 + timedelta(microseconds=3))
    assert tiny.ticks == 4 and [tiny.moment(i) for i in (1, 4)] == [T0, T0 + tiny.span * _US]


@pytest.mark.parametrize("axis", ["version", "time"])
def test_a_version_set_from_python_stays_that_version(long_store, axis):
    tt = TimeTravel(long_store, Account(), "account-1", axis=axis, version=0)
    for version in (10, 9, 11, 1, 40, 10):
        tt.version = version
        assert (tt.version, tt._slider.value, tt._play.max) == (version, version, 40)
        assert f'data-version="{version}"' in tt._header.value
        # What a browser sends back: its sliders round the value to their step.
        for slider in (tt._slider, tt._time):
            assert isinstance(slider.value, int) and slider.step == 1
            slider.value = round(slider.value / slider.step) * slider.step
        assert tt.version == version and tt.state.balance == sum(range(version))
        assert tt._time_label.value == TIMES[version - 1].isoformat(" ", "seconds")
    tt.at = TIMES[9]
    assert tt.version == 10 and tt.at == TIMES[9]
    tt.at = TIMES[9] - _US
    assert tt.version == 9


def test_the_time_slider_moves_to_the_moment_it_names(long_store):
    tt = TimeTravel(long_store, Account(), "account-1", axis="time", version=0)
    axis = TimeAxis(TIMES[0], TIMES[-1])
    assert tt._time_row.layout.display == "flex" and tt._time.max == axis.ticks == 1000
    for tick in (0, 1, 137, 500, 999, 1000):
        tt._time.value = tick                                   # as the browser would
        want = 0 if tick == 0 else tt.timeline.version_at(axis.moment(tick))
        assert tt.version == want and tt._time.value == tick    # the handle stays put
        if tick:
            assert tt._time_label.value == axis.moment(tick).isoformat(" ", "seconds")
    tt.axis = "version"
    assert tt._time_row.layout.display == "none"
    with pytest.raises(el.InvalidInputError, match="axis"):
        tt.axis = "position"


def test_timetravel_scrubs_by_recorded_time(store):
    tt = TimeTravel(store, Account(), "account-1", version=0, axis="time")
    tt.at = T0 + timedelta(hours=1, minutes=30)
    assert tt.version == 2 and tt.at == T0 + timedelta(hours=1)
    axis = TimeAxis(T0, T0 + timedelta(hours=3))
    tt._time.value = axis.tick_of(T0 + timedelta(hours=2, minutes=30))
    assert tt.version == 3 and tt.state.balance == 70.0


# -- what-ifs: Python and the controls agree -------------------------------------------------

def test_timetravel_what_if_shows_both_states(store):
    tt = TimeTravel(store, Account(), "account-1", version=3)
    result = tt.what_if(drop=True)                            # without the withdrawal of 30
    assert (result.actual_state.balance, result.alternative_state.balance) == (82.5, 112.5)
    html = tt.render()
    assert 'class="el-alt" data-field="balance"><mark class="el-differs" ' in html
    assert "82.5" in html and "112.5" in html
    edited = tt.what_if(edit={"amount": 50.0})
    assert edited.alternative_state.balance == 62.5
    assert store.stream_version("account-1") == 4             # the store is untouched
    with pytest.raises(el.InvalidInputError, match=r"no field\(s\) \['amout'\]"):
        tt.what_if(edit={"amout": 1.0})
    with pytest.raises(el.InvalidInputError, match="exactly one"):
        tt.what_if()


def test_timetravel_what_if_from_the_widgets(store):
    tt = TimeTravel(store, Account(), "account-1", version=2)
    tt._whatif_toggle.value = True
    tt._whatif_kind.value = "edit this event"
    assert tt._whatif_edit.value == '{"amount":100.0}'
    tt._whatif_edit.value = '{"amount": 10}'
    tt._whatif_run.click()
    assert tt.whatif.alternative_state.balance == -7.5
    tt._whatif_edit.value = '{"nope": 1}'
    tt._whatif_run.click()
    assert "nope" in tt._whatif_html.value and "el-error" in tt._whatif_html.value
    tt._whatif_toggle.value = False
    assert tt.whatif is None and "el-whatif" not in tt.render()


def test_the_controls_follow_a_what_if_set_from_python(store):
    tt = TimeTravel(store, Account(), "account-1", version=4)
    tt.what_if(edit={"amount": 800.0})
    assert tt._whatif_toggle.value is True and tt._whatif_box.layout.display == "flex"
    assert tt._whatif_kind.value == "edit this event"
    assert tt._whatif_edit.layout.display == "flex"
    assert json.loads(tt._whatif_edit.value) == {"amount": 800.0}
    assert tt.whatif.alternative_state.balance == 870.0 and tt.skipped == frozenset()
    tt.version = 3                          # another event: the box offers that one's payload
    assert json.loads(tt._whatif_edit.value) == {"amount": 30.0}
    tt.version = 4
    assert json.loads(tt._whatif_edit.value) == {"amount": 800.0}
    tt.what_if(drop=True)
    assert tt._whatif_kind.value == "drop this event" and tt.skipped == {4}
    assert tt._whatif_edit.layout.display == "none"
    assert _row_of(tt, 4).keep.value is False and _row_of(tt, 3).keep.value is True
    tt._whatif_run.click()                  # replay what the controls say: the same what-if
    assert tt.skipped == {4} and tt.whatif.alternative_state.balance == 70.0


def test_skipped_versions_are_a_what_if_shown_in_the_tick_boxes(store):
    tt = TimeTravel(store, Account(), "account-1", version=1)
    tt.skipped = {3}
    assert tt.skipped == frozenset({3}) and isinstance(tt.skipped, frozenset)
    want = el.what_if(store, Account(), "account-1", drop=[3])
    assert tt.whatif.alternative_state == want.alternative_state
    assert [r.keep.value for r in tt._rows if r.version] == [True, True, False, True]
    assert "without v3" in tt.render() and "<s>v3</s>" in tt.render()
    tt.skipped = {2, 3}
    assert tt.whatif.alternative_state.balance == 12.5
    tt.skipped = set()
    assert tt.whatif is None and all(r.keep.value for r in tt._rows if r.version)
    for bad, message in (({5}, "no version 5"), ({0}, "versions 1 to 4"),
                         ({"2"}, "must be an int"), (3, "set of versions")):
        with pytest.raises(el.InvalidInputError, match=message):
            tt.skipped = bad
    assert tt.skipped == frozenset()


def test_ticking_events_off_and_on_in_the_list(store):
    tt = TimeTravel(store, Account(), "account-1", version=2)
    _row_of(tt, 3).keep.value = False            # the browser unticks v3
    assert tt.skipped == {3} and tt.whatif.alternative_state.balance == 112.5
    assert tt._whatif_toggle.value is True and "el-whatif" in tt.render()
    _row_of(tt, 2).keep.value = False
    assert tt.skipped == {2, 3} and tt.whatif.alternative_state.balance == 12.5
    _row_of(tt, 3).keep.value = True
    _row_of(tt, 2).keep.value = True
    assert tt.skipped == frozenset() and tt.whatif is None


class OpenedFirst(el.Aggregate):
    """An account that refuses money before it is opened."""

    def initial_state(self):
        return AccountState()

    def apply(self, state, event):
        if not isinstance(event, Opened) and state.owner is None:
            raise ValueError("money before the account was opened")
        return Account().apply(state, event)


def test_a_tick_whose_replay_fails_is_put_back_with_the_reason(store):
    tt = TimeTravel(store, OpenedFirst(), "account-1", version=2)
    _row_of(tt, 1).keep.value = False
    assert _row_of(tt, 1).keep.value is True and tt.skipped == frozenset()
    assert "el-error" in tt._whatif_html.value and "before the account" in tt._whatif_html.value
    with pytest.raises(el.ApplyError, match="before the account"):
        tt.skipped = {1}


def test_clicking_an_event_in_the_list_goes_there(store):
    tt = TimeTravel(store, Account(), "account-1", version=0)
    assert [r.version for r in tt._rows if r.version] == [1, 2, 3, 4]
    assert sum(r.box.layout.display == "flex" for r in tt._rows) == 4
    assert _row_of(tt, 3).jump.description == "v3 Withdrew amount=30.0"
    _row_of(tt, 3).jump.click()
    assert tt.version == 3 and tt.state.balance == 70.0
    assert [r.jump.button_style for r in tt._rows if r.version] == ["", "", "info", ""]


def test_the_list_is_a_window_of_a_long_stream(tmp_path):
    store = el.connect()
    store.append("long", [Opened("ada")] + [Deposited(1.0)] * 2999)
    tt = TimeTravel(store, Account(), "long", version=1500)
    shown = [r.version for r in tt._rows if r.version]
    assert len(tt._rows) == ROWS and shown == list(range(1500 - ROWS // 2, 1501 + ROWS // 2))
    assert f"events {shown[0]}–{shown[-1]} of 3000" in tt._list_caption.value
    tt.version = 1
    assert [r.version for r in tt._rows if r.version] == list(range(1, ROWS + 1))
    tt.version = 3000
    assert [r.version for r in tt._rows if r.version] == list(range(3001 - ROWS, 3001))
    _row_of(tt, 2995).keep.value = False
    assert tt.whatif.alternative_state.balance == 2998.0
    tt.version = 1                          # v2995 leaves the window and keeps its place
    assert tt.skipped == {2995}
    tt.version = 3000
    assert _row_of(tt, 2995).keep.value is False
    store.close()


# -- snapshots --------------------------------------------------------------------------------

def test_a_snapshot_keeps_its_frame_when_the_view_moves(long_store):
    tt = TimeTravel(long_store, Account(), "account-1", version=10)
    frozen = tt.snapshot()
    tt.version = 3
    tt.skipped = {2}
    bundle = frozen._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}            # no live widget in it
    assert 'class="el-header" data-version="10"' in bundle["text/html"]
    assert state_cell(bundle["text/html"], "balance") == "45.0" and "el-whatif" not in bundle[
        "text/html"]
    assert bundle["text/plain"] == "<snapshot of <TimeTravel Account 'account-1' version 10 of 40>>"
    assert 'data-version="3"' in tt.render() and state_cell(tt.render(), "balance") == "3.0"
    live = tt._repr_mimebundle_()
    assert WIDGET_VIEW in live and live["text/plain"] == repr(tt)
    later = tt.snapshot()
    assert "el-whatif" in later._repr_html_() and "without v2" in later._repr_html_()


def test_every_view_snapshots_its_frame_with_pngs_inlined(store):
    def bars(state, ax):
        ax.bar(list(state), list(state.values()))

    class Count(el.Projection):
        def initial_state(self):
            return {}

        def apply(self, state, event):
            return {**state, event.type: state.get(event.type, 0) + 1}

    chart = ProjectionChart(store, Count(), plot=bars)
    chart.run(until=2)
    frozen = chart.snapshot()
    chart.run()
    assert "data:image/png;base64," in frozen.html
    assert 'data-position="2"' in frozen.html and 'data-position="6"' in chart.render()


# -- the static HTML a saved notebook keeps -----------------------------------------------------

#: The tags a notebook's HTML sanitiser keeps (JupyterLab's list, the part these views use);
#: it drops any other tag, svg and all its children included, and leaves their text behind.
ALLOWED = frozenset({"a", "b", "br", "code", "div", "i", "img", "mark", "p", "s", "small",
                     "span", "strong", "table", "tbody", "td", "th", "thead", "tr"})
VOID = frozenset({"br", "img", "rect", "line", "polygon", "path", "circle"})


class _Sanitised(HTMLParser):
    """What a reader sees of HTML once sanitised: ``text`` is all the text left, ``stray``
    the part of it that sat inside a dropped tag (text the page was not meant to show)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.stray: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())
            if any(tag not in ALLOWED for tag in self.open):
                self.stray.append(data.strip())


def _sanitised(fragment: str) -> _Sanitised:
    parser = _Sanitised()
    parser.feed(fragment)
    parser.close()
    return parser


def test_the_static_timeline_leaves_no_stray_text_when_sanitised(long_store):
    tt = TimeTravel(long_store, Account(), "account-1", version=10)
    for fragment in (tt.render(), tt.snapshot().html, tt._timeline_html.value,
                     tt._repr_mimebundle_()["text/html"]):
        assert "<svg" in fragment
        assert _sanitised(fragment).stray == []
    strip = _sanitised(tt._timeline_html.value)
    assert strip.text == ["■", "Opened", "■", "Deposited"]       # the legend, nothing else
    assert 'title="the stream: 40 events, version 10 marked"' in tt._timeline_html.value


# -- one palette per log -----------------------------------------------------------------------

def test_the_strip_and_cards_colour_types_as_every_chart_of_the_log(tmp_path):
    store = el.connect()
    names = [f"Step{i:02d}" for i in range(14)]
    # Another stream first, so the log's order of types is not this stream's order.
    store.append("other", [el.NewEvent({"i": i}, type=n) for i, n in enumerate(names[7:])])
    ours = names[::-1] + ["Step03"] * 6
    store.append("case", [el.NewEvent({"i": i}, type=n) for i, n in enumerate(ours)])

    class Anything(el.Aggregate):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            return state + 1

    tt = TimeTravel(store, Anything(), "case", version=2)
    want = type_colours(store, names)
    assert len(set(want.values())) == 14
    fills = re.findall(r'<rect[^>]*fill="(#[0-9a-f]{6})"', tt._timeline_html.value)
    assert fills == [want[t] for t in ours]
    legend = dict(re.findall(r'el-legend" title="(\w+)"><span class="el-swatch" '
                             r'style="color:(#\w+)">', tt._timeline_html.value))
    assert legend == {t: want[t] for t in list(dict.fromkeys(ours))[:12]}
    assert "and 2 more types" in tt._timeline_html.value
    assert f'style="color:{want[ours[1]]}">■</span>&nbsp;<span class="el-type"' in \
        tt._event_html.value
    assert _row_of(tt, 2).colour.value.count(want[ours[1]]) == 1
    store.close()
