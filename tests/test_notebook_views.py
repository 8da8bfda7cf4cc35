"""The notebook views driven from Python, without a browser: real stores, real widgets."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import eventlab as el
from eventlab.examples.bank import (
    Account,
    Withdrew,
)
from eventlab.notebook import (
    LogView,
    ProjectionChart,
    TimeTravel,
    animate_projection,
    plot_directly_follows,
    plot_events_over_time,
    plot_stream_lengths,
    plot_swimlanes,
    plot_type_counts,
)

from conftest import new_store, two_accounts

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(params=["duckdb-file", "memory", "postgres"])
def store(request, tmp_path):
    """The two accounts of ``conftest.two_accounts``, on each kind of store."""
    s = two_accounts(new_store(request.param, request, tmp_path))
    yield s
    s.close()


# -- TimeTravel (its own tests are in test_timetravel_view.py) -------------------------

def test_views_offer_the_widget_and_a_static_fallback(store):
    tt = TimeTravel(store, Account(), "account-1", version=2)
    bundle = tt._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and "el-timetravel" in bundle["text/html"]
    chart = ProjectionChart(store, Balances(), plot=bars)
    assert "data:image/png;base64," in chart._repr_mimebundle_()["text/html"]
    tt.close()
    assert WIDGET_VIEW not in tt._repr_mimebundle_()        # closed: only the static view


# -- ProjectionChart ------------------------------------------------------------------------

class Balances(el.Projection):
    def initial_state(self):
        return {}

    def apply(self, state, event):
        sign = {"Deposited": 1, "Withdrew": -1}.get(event.type, 0)
        amount = getattr(event.data, "amount", 0.0)
        return {**state, event.stream_id: state.get(event.stream_id, 0.0) + sign * amount}


def bars(state, ax):
    ax.bar(list(state), list(state.values()))


def _expected_states(store):
    """The projection's state after each position, folded here by hand."""
    balances, out = {}, [{}]
    for e in store.read_all():
        delta = {"Deposited": 1, "Withdrew": -1}.get(e.type, 0) * getattr(e.data, "amount", 0)
        balances = {**balances, e.stream_id: balances.get(e.stream_id, 0.0) + delta}
        out.append(balances)
    return out


def test_projection_chart_plots_the_state_at_each_step(store):
    seen = []

    def plot(state, ax):
        seen.append(dict(state))
        bars(state, ax)

    chart = ProjectionChart(store, Balances(), plot=plot)
    assert seen == [{}] and chart.position == 0
    assert chart.step() == 1 and chart.step(2) == 2
    assert chart.run() == 3
    assert seen == _expected_states(store)
    assert chart.state == {"account-1": 82.5, "account-2": 40.0}
    assert (chart.position, chart.count, chart.frames) == (6, 6, 7)
    assert bytes(chart._image.value).startswith(b"\x89PNG")
    assert 'data-position="6"' in chart._label.value
    assert chart.run() == 0


class Count(el.Projection):
    def initial_state(self):
        return 0

    def apply(self, state, event):
        return state + 1


def test_projection_chart_redraws_every_n_and_at_the_end(store):
    counts = []
    chart = ProjectionChart(store, Count(), every=4,
                            plot=lambda state, ax: counts.append(state))
    chart.run(until=5)
    assert counts == [0, 4, 5]
    assert "position 5" in chart.figure.axes[0].get_title()
    chart._buttons["reset"].click()
    assert chart.position == 0 and chart.state == 0
    chart._buttons["run"].click()
    assert chart.position == 6


def test_projection_chart_follows_live_appends(store):
    chart = ProjectionChart(store, Balances(), plot=bars)
    sub = chart.follow()
    store.append("account-2", [Withdrew(15.0)])
    assert sub.wait_until(store.head(), timeout=10)
    chart.stop()
    assert chart.state == {"account-1": 82.5, "account-2": 25.0} and chart.position == 7
    assert chart.subscription is None and chart._follow.value is False


def test_projection_chart_names_the_event_that_broke_apply(store):
    class Broken(Balances):
        def apply(self, state, event):
            if event.type == "Withdrew":
                raise ValueError("no withdrawals here")
            return super().apply(state, event)

    chart = ProjectionChart(store, Broken(), plot=bars)
    with pytest.raises(el.ApplyError, match=r"position 3.*Withdrew.*no withdrawals"):
        chart.run()
    assert chart.position == 2


def test_projection_animation_to_html_and_gif(store, tmp_path):
    from matplotlib.animation import PillowWriter
    from PIL import Image

    anim = animate_projection(store, Balances(), bars, every=2)
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 4          # positions 0, 2, 4, 6
    gif = tmp_path / "balances.gif"
    animate_projection(store, Balances(), bars, every=1, frames=3).save(
        gif, writer=PillowWriter(fps=4))
    with Image.open(gif) as image:
        assert image.n_frames == 4                             # 0, 2, 4, 6: every widened to 2


# -- LogView and the plots --------------------------------------------------------------------

def _process_log():
    """c1: a b c, c2: a c, c3: a b b; so a->b 2, a->c 1, b->c 1, b->b 1."""
    s = el.InMemoryEventStore()
    for case, kinds in (("c1", "abc"), ("c2", "ac"), ("c3", "abb")):
        s.append(case, [el.NewEvent({}, type=k) for k in kinds])
    return s


def test_swimlanes_have_one_lane_per_stream(store):
    fig = plot_swimlanes(store)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["account-1", "account-2"]
    assert len(ax.collections) == 3                             # Opened, Deposited, Withdrew
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 6
    assert len(plot_swimlanes(store, ["account-2"]).axes[0].get_yticklabels()) == 1


def test_events_over_time_has_a_bar_per_type_and_period(store):
    ax = plot_events_over_time(store, "1D").axes[0]
    assert len(ax.containers) == 3                              # types
    assert {len(c) for c in ax.containers} == {3}               # 3 days
    opened = next(c for c in ax.containers if c.get_label() == "Opened")
    assert [round(b.get_height()) for b in opened] == [1, 1, 0]


def test_type_counts_and_stream_lengths(store):
    ax = plot_type_counts(store).axes[0]
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches,
                                                          strict=True)}
    assert widths == {"Deposited": 3, "Opened": 2, "Withdrew": 1}
    ax = plot_stream_lengths(store).axes[0]
    assert sum(p.get_height() for p in ax.patches) == 2          # two streams


def test_directly_follows_picture_matches_the_log():
    fig = plot_directly_follows(_process_log())
    ax = fig.axes[0]
    drawn = {p.get_gid() for p in ax.patches if p.get_gid().startswith(("node:", "edge:"))}
    assert drawn == {"node:a", "node:b", "node:c", "edge:a->b", "edge:a->c", "edge:b->c",
                     "edge:b->b"}
    arcs = {p.get_gid() for p in ax.patches if p.get_gid().startswith(("start:", "end:"))}
    assert arcs == {"start:a", "end:b", "end:c"}             # c3 ends with b
    width = {p.get_gid(): p.get_linewidth() for p in ax.patches}
    assert width["edge:a->b"] > width["edge:a->c"] == width["edge:b->c"]
    labels = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert labels["label:edge:a->b"] == "2" and labels["label:start:a"] == "3"
    assert not fig.left_out


def test_logview_switches_charts(store):
    view = LogView(store)
    first = view._image.value
    assert bytes(first).startswith(b"\x89PNG") and 'data-kind="swimlanes"' in view.render()
    view.kind = "type counts"
    assert bytes(view._image.value) != bytes(first)
    assert 'data-kind="type counts"' in view._caption.value
    # Opened->Deposited, Deposited->Withdrew, Withdrew->Deposited
    edges = [p for p in view.figure("process map").axes[0].patches
             if p.get_gid().startswith("edge:")]
    assert len(edges) == 3
    with pytest.raises(ValueError, match="unknown LogView kind"):
        view.kind = "pie"


# -- packaging ---------------------------------------------------------------------------------

def test_import_eventlab_loads_no_widgets_or_matplotlib():
    code = ("import sys, eventlab; print(sorted(m for m in ('ipywidgets', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_state_tables_handle_plain_and_mapping_states():
    from eventlab.notebook.render import state_table

    assert "<mark" in state_table(5, changed={"value"})
    html = state_table({"a": 1}, compare={"a": 2, "b": 3})
    assert html.count("el-differs") == 2
    frozen = dataclasses.make_dataclass("S", ["x"], frozen=True)(1)
    assert "data-field=\"x\"" in state_table(frozen)


def test_executed_notebook_keeps_a_static_view_of_every_widget(tmp_path):
    """Run the views notebook in a real kernel: each view leaves HTML (with PNGs) behind."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "tests" / "browser_notebooks" / "views.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
             if o.output_type in ("execute_result", "display_data")
             and WIDGET_VIEW in o.get("data", {})]
    htmls = [o["data"]["text/html"] for o in shown]
    assert len(htmls) == 4
    assert 'class="el-header" data-version="2"' in htmls[0]
    assert all("data:image/png;base64," in h for h in htmls[1:3])  # chart, log view
    assert 'data-winner="A"' in htmls[3]
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error" or o.get("name") == "stderr"]
    assert not errors, errors
