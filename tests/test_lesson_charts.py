"""The course's small pictures: the fold as a step line, the log's positions and versions,
panels side by side. Real stores, real figures."""

from __future__ import annotations

from itertools import accumulate

import pandas as pd
import pytest

import eventlab as el
from eventlab.examples.bank import Account, Deposited, Opened, Withdrew
from eventlab.notebook import plot_fold, plot_positions, side_by_side
from eventlab.notebook.render import figure_png

EVENTS = [Opened("ada"), Deposited(100.0), Withdrew(30.0), Deposited(5.0)]


def bank_states(events):
    account = Account()
    return list(accumulate(events, account.apply, initial=account.initial_state()))


# -- plot_fold ----------------------------------------------------------------------------------

def test_the_fold_has_one_dot_per_state_at_the_balance_the_aggregate_folds_to():
    fig = plot_fold(EVENTS, bank_states(EVENTS), "balance")
    ax = fig.axes[0]
    dots = ax.lines[1]
    want = [Account().fold(EVENTS[:n]).balance for n in range(len(EVENTS) + 1)]
    assert [float(y) for y in dots.get_ydata()] == want
    assert [float(x) for x in dots.get_xdata()] == list(range(len(EVENTS) + 1))
    assert [t.get_text() for t in ax.texts] == [f"{y:g}" for y in want]


def test_the_fold_is_a_step_line_that_holds_the_last_value():
    ax = plot_fold(EVENTS, bank_states(EVENTS), "balance").axes[0]
    step = ax.lines[0]
    assert step.get_drawstyle() == "steps-post"
    ys = [float(y) for y in step.get_ydata()]
    assert ys[-1] == ys[-2] == Account().fold(EVENTS).balance


def test_the_fold_names_each_step_after_its_event_and_is_readable():
    fig = plot_fold(EVENTS, bank_states(EVENTS), "balance")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "start"
    assert [label.split("\n")[0] for label in labels[1:]] == [type(e).__name__ for e in EVENTS]
    assert labels[2] == "Deposited\n100.0"
    assert ax.get_xlabel() and ax.get_ylabel() == "balance" and "balance" in ax.get_title()
    assert tuple(fig.get_size_inches()) == (6.0, 2.5)
    assert figure_png(fig).startswith(b"\x89PNG")


def test_the_fold_plots_plain_numbers_without_a_field():
    totals = list(accumulate([1, 2, 3], initial=0))
    ax = plot_fold([1, 2, 3], totals).axes[0]
    assert [float(y) for y in ax.lines[1].get_ydata()] == [0.0, 1.0, 3.0, 6.0]
    assert ax.get_ylabel() == "state"


def test_the_fold_draws_into_a_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_fold(EVENTS, bank_states(EVENTS), "balance", ax=ax) is fig
    assert len(ax.lines) == 2


def test_the_fold_wants_the_initial_state_too():
    with pytest.raises(el.InvalidInputError, match="4 events need 5 states, got 4"):
        plot_fold(EVENTS, bank_states(EVENTS)[1:], "balance")


def test_the_fold_names_a_missing_field_and_the_fields_there_are():
    with pytest.raises(el.InvalidInputError, match=r"no field 'money'.*'balance'"):
        plot_fold(EVENTS, bank_states(EVENTS), "money")


def test_the_fold_refuses_a_field_that_is_not_a_number():
    with pytest.raises(el.InvalidInputError, match="state 0: the field 'owner' is None, not a"):
        plot_fold(EVENTS, bank_states(EVENTS), "owner")


# -- plot_positions ---------------------------------------------------------------------------

@pytest.fixture(params=["duckdb", "memory"])
def store(request):
    s = el.connect() if request.param == "duckdb" else el.InMemoryEventStore()
    s.append("account-1", [Opened("ada"), Deposited(100.0)])
    s.append("account-2", [Opened("grace")])
    s.append("account-1", [Withdrew(30.0)])
    yield s
    s.close()


def test_positions_label_every_event_with_its_version_at_its_position(store):
    ax = plot_positions(store).axes[0]
    lanes = {label.get_text(): i for i, label in enumerate(ax.get_yticklabels())}
    drawn = sorted((t.xy[0], t.xy[1], t.get_text()) for t in ax.texts)
    want = sorted((e.position, lanes[e.stream_id], f"v{e.version}") for e in store.read_all())
    assert drawn == want
    assert list(ax.get_xticks()) == [e.position for e in store.read_all()]
    assert "position" in ax.get_xlabel()


def test_positions_can_draw_some_streams_only(store):
    ax = plot_positions(store, ["account-2"]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["account-2"]
    assert [t.get_text() for t in ax.texts] == ["v1"]


def test_positions_of_an_empty_store_say_so():
    with pytest.raises(el.InvalidInputError, match="no streams"):
        plot_positions(el.InMemoryEventStore())


# -- side_by_side -----------------------------------------------------------------------------

def test_side_by_side_shows_each_panel_under_its_title():
    row = pd.DataFrame({"owner": ["ada"], "balance": [25.0]}, index=["account-1"])
    page = side_by_side({"one row": row, "a log": [Opened("ada"), Withdrew(50.0)]})._repr_html_()
    assert page.index("one row") < page.index("<table") < page.index("a log")
    assert "25.0" in page
    assert "Opened(owner=&#x27;ada&#x27;)\nWithdrew(amount=50.0)" in page


def test_side_by_side_escapes_what_it_is_given():
    page = side_by_side({"<b>": "<script>"})._repr_html_()
    assert "<script>" not in page and "&lt;b&gt;" in page


def test_side_by_side_needs_a_panel():
    with pytest.raises(el.InvalidInputError, match="at least one panel"):
        side_by_side({})
