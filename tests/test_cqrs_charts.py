"""The CQRS lesson's pictures: the architecture figure, and a read model lagging the log,
measured on real stores while a real writer thread appends."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import eventlab as el
from eventlab.examples.bank import Account, Deposit, Deposited, Open
from eventlab.notebook import measure_lag, plot_cqrs, plot_lag
from eventlab.notebook.render import figure_png
from eventlab.store.subscription import SubscriptionError

from conftest import new_store


class Balances(el.Projection):
    types = ("Deposited",)

    def initial_state(self):
        return {}

    def apply(self, balances, event):
        return {**balances, event.stream_id: balances.get(event.stream_id, 0.0)
                + event.data.amount}


@pytest.fixture(params=["duckdb", "memory"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    el.Repository(s, Account()).execute("account-1", Open("ada"))
    yield s
    s.close()


def deposit_into(store):
    accounts = el.Repository(store, Account())
    return lambda: accounts.execute("account-1", Deposit(1.0))


def texts_of(fig):
    FigureCanvasAgg(fig).draw()
    return [t for ax in fig.axes for t in ax.texts if t.get_text()]


# -- the architecture --------------------------------------------------------------------

def test_the_architecture_names_both_sides_and_every_stage_in_order():
    fig = plot_cqrs()
    words = [t.get_text() for t in texts_of(fig)]
    assert "write side" in words and "read side" in words
    stages = [w for w in words if w in
              ("commands", "aggregate", "event log", "projections", "queries")]
    assert stages == ["commands", "aggregate", "event log", "projections", "queries"]
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == 4, "one arrow from each stage to the next"
    xs = [a.xy[0] for a in arrows]
    assert xs == sorted(xs), "the arrows run left to right"


def test_the_architecture_is_readable_at_notebook_width():
    fig = plot_cqrs()
    assert tuple(fig.get_size_inches()) == (8.0, 2.5)
    texts = texts_of(fig)
    assert min(t.get_fontsize() for t in texts) >= 8
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    figure_box = fig.bbox
    for text, box in boxes:
        assert figure_box.contains(box.x0, box.y0) and figure_box.contains(box.x1, box.y1), \
            f"{text!r} is cut off"
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    assert figure_png(fig)[:4] == b"\x89PNG"


# -- the lag -------------------------------------------------------------------------------

def test_the_read_model_lags_the_log_while_writes_run_then_catches_up(store):
    before = store.head()
    lag = measure_lag(store, Balances(), deposit_into(store), writes=20, interval=0.005,
                      cost=0.015)
    assert list(lag.columns) == ["seconds", "head", "position", "lag", "writing"]
    assert (lag["head"] >= lag["position"]).all(), "the read model ran ahead of the log"
    assert (lag["lag"] == lag["head"] - lag["position"]).all()
    assert (lag["lag"] > 0).any(), "no sample caught the read model behind"
    assert lag["lag"].iloc[-1] == 0 and lag["head"].iloc[-1] == before + 20 == store.head()
    assert lag["seconds"].is_monotonic_increasing
    assert lag["head"].is_monotonic_increasing and lag["position"].is_monotonic_increasing
    assert lag["position"].iloc[0] == before, "the projector starts caught up with the log"
    flags = lag["writing"].tolist()
    stop = flags.index(False)
    assert all(flags[:stop]) and not any(flags[stop:]), "writing, then done"
    assert lag.attrs == {"writes": 20, "interval": 0.005, "cost": 0.015}


def test_a_write_that_fails_is_raised_not_swallowed(store):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        store.append("account-1", [Deposited(1.0)])

    with pytest.raises(el.EventlabError, match=r"a write failed .*the disk is full"):
        measure_lag(store, Balances(), flaky, writes=10, interval=0.001, cost=0.0)
    assert len(calls) == 3, "the writer stopped at its failure"


def test_a_projection_that_fails_is_raised(store):
    class Broken(Balances):
        def apply(self, balances, event):
            raise ValueError("no amount")

    with pytest.raises(SubscriptionError, match="no amount"):
        measure_lag(store, Broken(), deposit_into(store), writes=3, interval=0.001, cost=0.0)


def test_a_read_model_that_cannot_keep_up_in_time_is_an_error(store):
    with pytest.raises(el.EventlabError, match=r"had not caught up after 0.2 s"):
        measure_lag(store, Balances(), deposit_into(store), writes=10, interval=0.0,
                    cost=0.05, timeout=0.2)


@pytest.mark.parametrize("change, message", [
    ({"writes": 0}, "writes must be a positive int"),
    ({"writes": True}, "writes must be a positive int"),
    ({"cost": -1}, "cost must be a finite, non-negative number of seconds"),
    ({"interval": "fast"}, "interval must be a finite, non-negative number of seconds"),
    ({"sample_every": 0}, "sample_every must be a finite, positive number of seconds"),
    ({"timeout": float("nan")}, "timeout must be a finite, positive number of seconds"),
    ({"interval": float("inf")}, "interval must be a finite, non-negative number of seconds"),
])
def test_bad_settings_are_named(store, change, message):
    with pytest.raises(el.InvalidInputError, match=message):
        measure_lag(store, Balances(), deposit_into(store), **change)
    assert store.head() == 1, "nothing was written"


def test_bad_projection_or_writer_is_named(store):
    with pytest.raises(el.InvalidInputError, match=r"projection must be an el\.Projection"):
        measure_lag(store, lambda s, e: s, deposit_into(store))
    with pytest.raises(el.InvalidInputError, match="write must be a callable"):
        measure_lag(store, Balances(), "deposit")


def test_the_lag_chart_draws_the_samples_it_was_given(store):
    lag = measure_lag(store, Balances(), deposit_into(store), writes=15, interval=0.004,
                      cost=0.012)
    fig = plot_lag(lag)
    assert tuple(fig.get_size_inches()) == (8.0, 3.0)
    ax = fig.axes[0]
    head, position = ax.lines[0], ax.lines[1]
    assert list(head.get_ydata()) == list(lag["head"])
    assert list(position.get_ydata()) == list(lag["position"])
    assert list(head.get_xdata()) == list(lag["seconds"])
    assert len(ax.collections) == 1, "the lag is shaded"
    words = " ".join(t.get_text() for t in texts_of(fig))
    assert f"{lag['lag'].max()} events behind" in words
    assert "writes stop" in words and "caught up after" in words
    assert "15 writes, one every 4 ms; the projection takes 12 ms per event" in ax.get_title()
    assert min(t.get_fontsize() for t in texts_of(fig)) >= 8


def test_the_lag_chart_refuses_a_frame_it_cannot_draw():
    with pytest.raises(el.InvalidInputError, match=r"no \['lag', 'writing'\] column"):
        plot_lag(pd.DataFrame({"seconds": [0.0], "head": [1], "position": [1]}))
    with pytest.raises(el.InvalidInputError, match="no rows"):
        plot_lag(pd.DataFrame(columns=["seconds", "head", "position", "lag", "writing"]))
