"""ConcurrencyLab: the race's recorded steps against what the store really did, the retry,
and the drawn race (real stores, real widgets; the figure read through its artists)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Annotation
from PIL import Image

import eventlab as el
from eventlab.examples.bank import (
    Account,
    Deposited,
    InsufficientFunds,
    Opened,
    Withdraw,
    Withdrew,
)
from eventlab.notebook import ConcurrencyLab
from eventlab.notebook.concurrency import MODES
from eventlab.notebook.race_chart import OUTCOME_COLOURS, RETRY

LANE = {"A": 0, "B": 1}


def rich_lab(**settings) -> ConcurrencyLab:
    """The bank with 200 in it: after either withdrawal the other still fits."""
    return ConcurrencyLab(Account(), [Opened("ada"), Deposited(200.0)], Withdraw(70),
                          Withdraw(50), **settings)


def lands(expected, version: int) -> bool:
    """The store contract: would an append with ``expected`` land on a stream at ``version``?"""
    if expected is el.ANY:
        return True
    if expected is el.NO_STREAM:
        return version == 0
    if expected is el.STREAM_EXISTS:
        return version > 0
    return expected == version


def sent_for(mode: str, read_version: int):
    return {"read version": read_version, "ANY": el.ANY, "NO_STREAM": el.NO_STREAM,
            "STREAM_EXISTS": el.STREAM_EXISTS}[mode]


# -- the steps against the store --------------------------------------------------------------

@pytest.mark.parametrize("mode_b", MODES)
@pytest.mark.parametrize("mode_a", MODES)
def test_recorded_steps_match_what_the_store_did(mode_a, mode_b):
    lab = ConcurrencyLab(mode_a=mode_a, mode_b=mode_b, retry=True)   # 100; A -70, B -50
    result, store = lab.result, lab.store
    steps = result.steps
    assert [s.time for s in steps] == list(range(len(steps)))
    assert [(s.writer, s.kind, s.attempt) for s in steps[:6]] == [
        ("A", "read", 1), ("B", "read", 1), ("A", "decide", 1), ("B", "decide", 1),
        ("A", "append", 1), ("B", "append", 1)]
    modes = {"A": mode_a, "B": mode_b}
    version, read_at, decided, landed = 2, {}, {}, []
    for s in steps:                        # replay the race on the contract's rules
        if s.kind == "read":
            assert (s.outcome, s.version) == ("loaded", version)
            read_at[s.writer] = version
        elif s.kind == "decide" and s.outcome == "decided":
            decided[s.writer] = list(s.events)
        elif s.kind == "append":
            assert s.expected == sent_for(modes[s.writer], read_at[s.writer])
            if lands(s.expected, version):
                version += len(decided[s.writer])
                assert (s.outcome, s.version, s.error) == ("appended", version, None)
                landed += decided[s.writer]
            else:
                assert s.outcome == "conflict" and s.version is None
                assert isinstance(s.error, el.ConcurrencyError)
                assert (s.error.expected, s.error.actual) == (s.expected, version)
    assert store.stream_version("account-1") == version == result.final_version
    assert [e.data for e in store.read_stream("account-1", from_version=3)] == landed
    # every writer that hit a conflict tried once more, and only once
    conflicted = {s.writer for s in steps if s.attempt == 1 and s.outcome == "conflict"}
    assert set(result.retries) == conflicted
    assert {s.writer for s in steps if s.attempt == 2} == conflicted
    assert max(s.attempt for s in steps) <= 2


def test_the_default_race_a_wins_and_b_conflicts_on_the_version_a_wrote():
    lab = ConcurrencyLab()
    appended, conflict = lab.result.steps[4:6]
    assert (appended.writer, appended.expected, appended.version) == ("A", 2, 3)
    assert (conflict.writer, conflict.expected, conflict.error.actual) == ("B", 2, 3)
    assert lab.store.stream_version("account-1") == 3
    assert list(lab.store.read_stream("account-1"))[-1].data == Withdrew(70.0)
    assert all(s.attempt == 1 for s in lab.result.steps) and lab.result.retries == {}


def test_steps_are_recorded_as_the_lab_runs_them(tmp_path: Path):
    calls: list[tuple[str, float]] = []

    class WatchedAccount(Account):
        def handle(self, state, command):
            calls.append((type(command).__name__, state.balance))
            return super().handle(state, command)

    files = iter(range(100))
    lab = ConcurrencyLab(WatchedAccount(), [Opened("ada"), Deposited(200.0)], Withdraw(70),
                         Withdraw(50), first="B", retry=True,
                         store_factory=lambda: el.connect(tmp_path / f"{next(files)}.duckdb"))
    decides = [s for s in lab.result.steps if s.kind == "decide"]
    assert [(s.writer, s.attempt) for s in decides] == [("A", 1), ("B", 1), ("A", 2)]
    assert calls == [("Withdraw", 200.0), ("Withdraw", 200.0), ("Withdraw", 150.0)]
    # the appends that landed appear in the log in the order of their logical times
    landed = [s for s in lab.result.steps if s.outcome == "appended"]
    log = list(lab.store.read_stream("account-1", from_version=3))
    assert [(s.writer, s.version) for s in landed] == [("B", 3), ("A", 4)]
    assert [e.data for e in log] == [Withdrew(50.0), Withdrew(70.0)]
    assert log[0].position < log[1].position


# -- the retry ----------------------------------------------------------------------------------

def test_the_loser_retries_at_the_winners_version_and_lands():
    lab = rich_lab(retry=True)
    result = lab.result
    assert (result.winner, result.loser) == ("A", "B")           # the first attempts
    assert isinstance(result.error, el.ConcurrencyError)
    winner_append = next(s for s in result.steps if s.writer == "A" and s.kind == "append")
    retry = [s for s in result.steps if s.attempt == 2]
    assert [(s.writer, s.kind, s.outcome) for s in retry] == [
        ("B", "read", "loaded"), ("B", "decide", "decided"), ("B", "append", "appended")]
    assert retry[0].version == winner_append.version == 3
    assert (retry[2].expected, retry[2].version) == (3, 4)
    assert result.retries["B"].appended and result.retries["B"].read_version == 3
    assert lab.store.stream_version("account-1") == 4
    assert [e.data for e in lab.store.read_stream("account-1", from_version=3)] == [
        Withdrew(70.0), Withdrew(50.0)]
    assert result.final_state.balance == 80.0


def test_the_retry_can_be_refused_by_the_domain_rule():
    lab = ConcurrencyLab(retry=True, first="B")                  # B takes 50: 50 left for A's 70
    result = lab.result
    retry = [s for s in result.steps if s.attempt == 2]
    assert [(s.writer, s.kind, s.outcome) for s in retry] == [
        ("A", "read", "loaded"), ("A", "decide", "refused")]
    assert retry[0].version == 3 and isinstance(retry[1].error, InsufficientFunds)
    assert isinstance(result.retries["A"].error, InsufficientFunds)
    assert lab.store.stream_version("account-1") == 3 and result.final_state.balance == 50.0


def test_a_retry_keeps_its_mode_so_no_stream_conflicts_again():
    lab = rich_lab(mode_b="NO_STREAM", retry=True)
    second = [s for s in lab.result.steps if s.attempt == 2 and s.kind == "append"]
    assert len(second) == 1 and second[0].outcome == "conflict"
    assert (second[0].expected, second[0].error.actual) == (el.NO_STREAM, 3)
    assert lab.store.stream_version("account-1") == 3


def test_no_conflict_means_no_retry():
    lab = ConcurrencyLab(mode_a="ANY", mode_b="ANY", retry=True)
    assert lab.result.retries == {} and all(s.attempt == 1 for s in lab.result.steps)
    assert lab.result.final_state.balance == -20.0


def test_retry_from_the_widget_and_bad_settings():
    lab = rich_lab()
    assert lab.result.retries == {} and not lab.retry
    lab._retry.value = True                                      # the checkbox
    lab._button.click()
    assert lab.retry and "B" in lab.result.retries
    assert 'data-retried="B"' in lab._out.value
    with pytest.raises(ValueError, match="retry must be True or False"):
        lab.retry = 1


# -- the drawing -------------------------------------------------------------------------------

def boxes(ax) -> dict[str, object]:
    return {t.get_gid(): t for t in ax.texts if (t.get_gid() or "").startswith("step:")}


def marks(ax, gid: str) -> list:
    return [a for a in ax.get_children() if a.get_gid() == gid]


def test_the_figure_draws_two_lanes_the_conflict_and_the_retry():
    lab = rich_lab(retry=True)
    steps, fig = lab.result.steps, lab.figure
    ax = fig.axes[0]
    assert tuple(fig.get_size_inches()) == (7.0, 2.5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["writer A", "writer B"]
    assert ax.get_xlabel() == "time (steps)"
    drawn = boxes(ax)
    assert len(drawn) == len(steps) == 9
    for s in steps:                                  # each step in its lane at its time
        box = drawn[f"step:{s.time}:{s.outcome}"]
        assert box.get_position() == (s.time, LANE[s.writer]) and box.get_text() == s.label
        edge = box.get_bbox_patch()
        assert (edge.get_linestyle() == "--") == (s.attempt == 2)
        if s.attempt == 2:
            assert to_hex(edge.get_edgecolor()) == RETRY
    # the conflict: B's append at t5, red, with an arrow from A's append that moved the stream
    (conflict,) = [t for gid, t in drawn.items() if gid.endswith(":conflict")]
    assert conflict.get_position() == (5, LANE["B"])
    assert to_hex(conflict.get_bbox_patch().get_facecolor()) == OUTCOME_COLOURS["conflict"]
    assert conflict.get_text() == "append\nexp 2\n✗ at v3"
    (cause,) = marks(ax, "conflict-cause")
    assert isinstance(cause, Annotation) and (cause.xyann, cause.xy) == ((4, 0), (5, 1))
    # the retry: a band over B's steps 6-8, a label, an arrow from the conflict to the reload
    (band,) = marks(ax, "retry")
    assert isinstance(band, FancyBboxPatch) and band.get_linestyle() == "--"
    assert band.get_x() < 6 and band.get_x() + band.get_width() > 8
    assert band.get_y() < LANE["B"] < band.get_y() + band.get_height()
    (label,) = marks(ax, "retry-label")
    assert "retry" in label.get_text()
    (arrow,) = marks(ax, "retry-arrow")
    assert (arrow.xyann, arrow.xy) == ((5, 1), (6, 1))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"read", "decide", "append: landed", "append: conflict", "retry"} <= set(legend)
    texts = [*ax.texts, *fig.legends[0].get_texts(), *ax.get_yticklabels(),
             *ax.get_xticklabels(), ax.xaxis.label]
    assert min(t.get_fontsize() for t in texts) >= 8


def test_the_figure_marks_a_refusal_and_has_no_retry_marks_without_a_retry():
    refused = ConcurrencyLab(retry=True).figure.axes[0]
    (box,) = [t for gid, t in boxes(refused).items() if gid.endswith(":refused")]
    assert box.get_position() == (7, LANE["B"]) and "Insufficient" in box.get_text()
    assert to_hex(box.get_bbox_patch().get_facecolor()) == OUTCOME_COLOURS["refused"]
    plain = ConcurrencyLab().figure
    ax = plain.axes[0]
    assert len(boxes(ax)) == 6
    assert [gid for gid in boxes(ax) if gid.endswith(":conflict")] == ["step:5:conflict"]
    assert not [a for a in ax.get_children() if "retry" in (a.get_gid() or "")]
    assert "retry" not in [t.get_text() for t in plain.legends[0].get_texts()]


def test_render_inlines_the_race_as_a_png():
    lab = rich_lab(retry=True)
    page = lab.render()
    found = re.search(r'<img alt="[^"]*race[^"]*"[^>]* src="data:image/png;base64,([^"]+)"', page)
    assert found
    with Image.open(io.BytesIO(base64.b64decode(found.group(1)))) as image:
        width, height = image.size
    assert 600 <= width <= 800 and 200 <= height <= 300           # 7 x 2.5 in at 100 dpi
    assert lab._out.value == page
    bundle = lab._repr_mimebundle_()
    assert bundle["text/html"] == page and "application/vnd.jupyter.widget-view+json" in bundle
    assert 'el-retry" data-writer="B"' in page


# -- the text outcome (the lab's first interface) ------------------------------------------------

def test_concurrency_lab_reports_winner_and_loser():
    lab = ConcurrencyLab()
    result = lab.result
    assert (result.winner, result.loser) == ("A", "B")
    assert isinstance(result.error, el.ConcurrencyError)
    assert (result.error.expected, result.error.actual) == (2, 3)
    assert result.final_state.balance == 30.0 and result.final_version == 3
    assert 'data-winner="A" data-loser="B"' in lab.render()
    lab.first = "B"
    assert lab.run().winner == "B" and lab.result.final_state.balance == 50.0


def test_concurrency_lab_any_lets_both_write_and_breaks_the_rule():
    lab = ConcurrencyLab(mode_a="ANY", mode_b="ANY")
    assert lab.result.loser is None and lab.result.final_state.balance == -20.0
    assert all(o.appended for o in lab.result.outcomes.values())


def test_concurrency_lab_modes_from_the_widgets():
    lab = ConcurrencyLab()
    lab._modes["A"].value = "NO_STREAM"                         # the stream exists: A fails
    lab._button.click()
    assert lab.winner == "B" and lab.result.loser == "A"
    assert "NO_STREAM" in str(lab.error)
    with pytest.raises(ValueError, match="unknown expected-version mode"):
        lab.mode_b = "LATEST"


def test_concurrency_lab_shows_a_domain_rejection():
    lab = ConcurrencyLab(Account(), [Opened("ada"), Deposited(10.0)], Withdraw(5),
                         Withdraw(500), store_factory=el.InMemoryEventStore)
    assert lab.winner == "A" and isinstance(lab.error, InsufficientFunds)
    refused = [s for s in lab.result.steps if s.outcome == "refused"]
    assert [(s.writer, s.kind) for s in refused] == [("B", "decide")]
    assert [s.writer for s in lab.result.steps if s.kind == "append"] == ["A"]
