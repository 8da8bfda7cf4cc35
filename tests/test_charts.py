"""Charts a reader can read: one colour per event type across every chart, labelled axes,
sorted bars with the tail folded as "other", lines sampled finely, a duration histogram
that shows a long tail, PNGs at their own size, and import progress that reads well in a
saved notebook. Colours, bars and lines are read back from matplotlib's own artists and
checked against numbers pandas computes from the log."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import rc_context
from matplotlib.colors import to_hex

import eventlab as el
from eventlab.notebook import (
    LogView,
    ProjectionChart,
    plot_case_durations,
    plot_dotted_chart,
    plot_events_over_time,
    plot_project_history,
    plot_stream_lengths,
    plot_swimlanes,
    plot_type_counts,
    process_map,
)
from eventlab.notebook.logview import KINDS
from eventlab.notebook.render import OTHER, PALETTE, ChartFigure, figure_png, png_img, png_size

T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
KINDS_14 = [f"step {i:02d}" for i in range(14)]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def fourteen():
    """40 cases over 10 days drawing from 14 event types, the later types more frequent
    (so the order of first appearance is not the order of frequency)."""
    store = el.connect()
    rng = random.Random(14)
    for case in range(40):
        kinds = rng.choices(KINDS_14, weights=[1 + i for i in range(14)], k=rng.randint(3, 12))
        if case == 0:
            kinds = KINDS_14[::-1]                     # every type appears, the rare ones too
        store.append(f"case-{case:02d}", [
            el.NewEvent({}, type=k, recorded_at=T0 + timedelta(hours=6 * case + j))
            for j, k in enumerate(kinds)])
    yield store
    store.close()


@pytest.fixture(scope="module")
def log(receipt):
    return receipt.to_df()


def _hex(colour) -> str:
    return to_hex(colour, keep_alpha=False)


# -- 1. one palette per log ----------------------------------------------------------------------

def _colours_of_every_chart(store) -> dict[str, dict[str, str]]:
    """type -> colour, read back from the artists of each chart that colours by type."""
    out: dict[str, dict[str, str]] = {}
    ax = plot_type_counts(store, top=None).axes[0]
    out["type counts"] = {t.get_text(): _hex(p.get_facecolor())
                          for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    ax = plot_events_over_time(store, "1D", top=20).axes[0]
    out["events over time"] = {c.get_label(): _hex(c.patches[0].get_facecolor())
                               for c in ax.containers}
    ax = plot_swimlanes(store, limit=40).axes[0]
    out["swimlanes"] = {c.get_label(): _hex(c.get_facecolor()[0]) for c in ax.collections}
    ax = plot_dotted_chart(store).axes[0]
    out["dotted chart"] = {line.get_label(): _hex(line.get_color()) for line in ax.lines}
    fig = process_map(store, activities=None, paths=1.0)
    out["process map"] = {p.get_gid()[len("node:"):]: _hex(p.get_edgecolor())
                          for p in fig.axes[0].patches if p.get_gid().startswith("node:")}
    return out


def test_a_type_has_one_colour_in_every_chart_with_14_types(fourteen):
    charts = _colours_of_every_chart(fourteen)
    reference = charts["type counts"]
    assert sorted(reference) == KINDS_14
    assert len(set(reference.values())) == 14                   # 14 distinct colours
    assert _hex(OTHER) not in reference.values()                # grey means "other" only
    for name, seen in charts.items():
        assert seen == reference, name


def test_other_is_grey_and_the_kept_types_keep_their_colours(fourteen):
    reference = _colours_of_every_chart(fourteen)["type counts"]
    ax = plot_events_over_time(fourteen, "1D", min_share=0).axes[0]   # top=8: 6 folded
    seen = {c.get_label(): _hex(c.patches[0].get_facecolor()) for c in ax.containers}
    assert seen.pop("other (6 types)") == _hex(OTHER)
    assert len(seen) == 8 and all(reference[k] == c for k, c in seen.items())
    ax = plot_type_counts(fourteen, top=5).axes[0]
    bars = {t.get_text(): _hex(p.get_facecolor())
            for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert bars.pop("other (9 types)") == _hex(OTHER)
    assert all(reference[k] == c for k, c in bars.items())


def test_case_histograms_use_no_type_colour(fourteen):
    used = set(PALETTE) | {_hex(OTHER)}
    for chart in (plot_case_durations, plot_stream_lengths):
        ax = chart(fourteen).axes[0]
        assert ax.patches and {_hex(p.get_facecolor()) for p in ax.patches}.isdisjoint(used)


def test_a_filter_changes_no_colour(fourteen):
    everything = _colours_of_every_chart(fourteen)["type counts"]
    ax = plot_type_counts(fourteen, filter=el.Filter(max_events=5)).axes[0]
    kept = {t.get_text(): _hex(p.get_facecolor())
            for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert kept and all(everything[k] == c for k, c in kept.items())


# -- 2. charts a reader can read -----------------------------------------------------------------

@pytest.mark.parametrize("kind", [k for k in KINDS if k != "process map"])
def test_every_chart_labels_both_axes(receipt, kind):
    ax = KINDS[kind](receipt).axes[0]
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), kind
    assert ax.get_title().strip(), kind


def test_a_projection_chart_labels_its_y_axis_when_the_plot_does_not(receipt):
    class Count(el.Projection):
        def initial_state(self):
            return 0

        def apply(self, n, event):
            return n + 1

    chart = ProjectionChart(receipt, Count(), plot=lambda n, ax: ax.bar(["events"], [n]))
    assert chart.figure.axes[0].get_ylabel() == "Count"
    chart = ProjectionChart(receipt, Count(), plot=lambda n, ax: ax.bar(["events"], [n]),
                            xlabel="what", ylabel="how many")
    ax = chart.figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("what", "how many")


def test_type_counts_are_sorted_and_the_tail_is_one_bar_that_adds_up(receipt, log):
    counts = log["type"].value_counts()                          # pandas' numbers
    ax = plot_type_counts(receipt, top=5).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.patches]
    assert names[:5] == counts.index[:5].tolist()
    assert widths[:5] == counts.iloc[:5].tolist()
    assert widths[:5] == sorted(widths[:5], reverse=True)      # largest first
    assert names[5] == f"other ({len(counts) - 5} types)" and len(names) == 6
    assert widths[5] == counts.iloc[5:].sum()
    assert sum(widths) == len(log)
    assert "most frequent first" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == [f"{w:,}" for w in widths]   # counts on bars
    ax = plot_type_counts(receipt).axes[0]                       # 27 types: 20 and "other"
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "other (7 types)"
    assert min(p.get_width() for p in ax.patches) >= counts.iloc[19]


def test_events_over_time_folds_the_tail_and_adds_up(receipt, log):
    ax = plot_events_over_time(receipt, "1W").axes[0]
    labels = [c.get_label() for c in ax.containers]
    counts = log["type"].value_counts()
    big = counts[counts >= 0.02 * len(log)]                      # no slivers of under 2%
    assert len(big) == 6
    assert labels == [*big.index, "other (21 types)"]           # bottom of the stack first
    thin = plot_events_over_time(receipt, "1W", min_share=0).axes[0]
    assert [c.get_label() for c in thin.containers] == [*counts.index[:8], "other (19 types)"]
    at = log["recorded_at"].dt.tz_convert("UTC")
    week = (at.dt.normalize() - pd.to_timedelta(at.dt.day_of_week, unit="D")).dt.tz_localize(None)
    rest = ~log["type"].isin(big.index)
    other = log[rest].groupby(week[rest]).size()
    per_week = log.groupby(week).size()
    weeks = pd.date_range(week.min(), week.max(), freq="7D")
    drawn_other = [b.get_height() for b in ax.containers[-1]]
    assert drawn_other == other.reindex(weeks, fill_value=0).tolist()
    stacked = np.sum([[b.get_height() for b in c] for c in ax.containers], axis=0)
    assert stacked.tolist() == per_week.reindex(weeks, fill_value=0).tolist()
    totals = [sum(b.get_height() for b in c) for c in ax.containers[:-1]]
    assert totals == sorted(totals, reverse=True)              # most frequent at the bottom
    assert ax.get_ylabel() == "events per week" and "week" in ax.get_xlabel()


def test_events_over_time_picks_a_period_giving_a_readable_number_of_bars(receipt, fourteen):
    ax = plot_events_over_time(receipt).axes[0]                  # 16 months: weeks
    assert ax.get_ylabel() == "events per week" and 20 <= len(ax.containers[0]) <= 100
    ax = plot_events_over_time(fourteen).axes[0]                 # 10 days: 6 hours
    assert ax.get_ylabel() == "events per 6 hours" and 20 <= len(ax.containers[0]) <= 100


def test_project_history_lines_have_at_least_200_points(receipt, log):
    class Counted(el.Projection):
        types = ("Confirmation of receipt",)

        def initial_state(self):
            return 0

        def apply(self, n, event):
            return n + 1

    class Everything(el.Projection):
        def initial_state(self):
            return {"events": 0, "cases": 0}

        def apply(self, s, event):
            return {"events": s["events"] + 1, "cases": s["cases"] + (event.version == 1)}

    for projection, want in ((Counted(), {"state": 1434}),
                             (Everything(), {"events": 8577, "cases": 1434})):
        ax = plot_project_history(receipt, projection).axes[0]
        lines = {line.get_label(): line for line in ax.lines}
        assert set(lines) == set(want)
        for name, line in lines.items():
            xs, ys = line.get_xdata(), line.get_ydata()
            assert len(xs) >= 200, (name, len(xs))
            assert xs[0] == 0 and ys[0] == 0 and ys[-1] == want[name]
            assert xs[-1] == log.loc[log["type"] == "Confirmation of receipt", "position"].max() \
                if name == "state" else xs[-1] == receipt.head()
            if name != "cases":                                  # lines that count events:
                assert np.diff(ys).max() <= want[name] / 200     # no step skips many
        assert ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(el.InvalidInputError, match="numeric fields"):
        plot_project_history(receipt, Everything(), columns=["nope"])


def test_case_duration_histogram_shows_the_long_tail(receipt, log):
    spans = log.groupby("stream_id")["recorded_at"].agg(lambda t: t.max() - t.min())
    seconds = spans.dt.total_seconds()
    ax = plot_case_durations(receipt).axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == len(spans) == 1434
    assert max(heights) < 0.5 * len(spans)                       # no bar holds most cases
    bars = sorted(ax.patches, key=lambda p: p.get_x())
    zero, first, last = bars[0], bars[1], bars[-1]
    assert zero.get_height() == (seconds == 0).sum()            # the single-event cases
    assert first.get_x() <= seconds[seconds > 0].min()
    assert last.get_x() + last.get_width() >= seconds.max()    # the tail is inside a bar
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "0" and {"1 min", "1 h", "1 d"} <= set(ticks)
    median = [line for line in ax.lines if line.get_label().startswith("median")]
    assert median and median[0].get_xdata()[0] == pytest.approx(seconds.median())


def test_short_durations_stay_on_a_linear_axis(fourteen):
    ax = plot_case_durations(fourteen).axes[0]                   # 3 to 12 hours: one decade
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "case duration (hours)"


def test_stream_lengths_have_one_labelled_bar_per_length(receipt, log):
    sizes = log.groupby("stream_id").size().value_counts()
    ax = plot_stream_lengths(receipt).axes[0]
    drawn = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in ax.patches}
    assert {k: v for k, v in drawn.items() if v} == sizes.to_dict()
    labels = {t.get_text() for t in ax.texts}
    assert "1" in labels and "1,135" in labels                   # even a bar of one case


# -- PNGs at their own size ----------------------------------------------------------------------

def test_png_img_shows_the_png_at_its_own_size():
    fig = ChartFigure(figsize=(7.0, 3.2), layout="constrained")
    fig.add_subplot().plot([0, 1], [0, 1])
    png = figure_png(fig)
    width, height = png_size(png)
    assert 600 <= width <= 720 and 280 <= height <= 340        # 7 x 3.2 in at 100 dpi
    tag = png_img(png)
    assert f'width="{width}"' in tag and f'height="{height}"' in tag
    assert "max-width:100%" in tag
    assert not re.search(r"(?<!max-)width\s*[:=]\s*\"?100%", tag)


def test_charts_keep_their_dpi_whatever_the_notebook_sets():
    with rc_context({"figure.dpi": 72}):                       # as some inline backends do
        fig = ChartFigure(figsize=(5.0, 2.0))
    assert fig.dpi == 100
    assert png_size(figure_png(fig)) == (520, 220)             # 5 x 2 in at 100 dpi + margin


def test_views_show_each_chart_at_its_pixel_size(fourteen):
    view = LogView(fourteen)
    for kind in KINDS:
        view.kind = kind
        width, _ = png_size(bytes(view._image.value))
        assert view._image.width == str(width), kind            # a box cannot stretch it
        html = view.render()
        assert f'width="{width}"' in html and not re.search(r"(?<!max-)width:\s*100%", html)
    class Count(el.Projection):
        def initial_state(self):
            return 0

        def apply(self, n, event):
            return n + 1

    chart = ProjectionChart(fourteen, Count(), plot=lambda n, ax: ax.bar(["events"], [n]))
    assert chart._image.width == str(png_size(bytes(chart._image.value))[0])


# -- 3. progress in a saved notebook -------------------------------------------------------------

def _xes(path: Path, cases: int, broken: bool = False) -> Path:
    """A plain XES log of ``cases`` cases of 10 events (``broken``: the last time is not one)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n']
    for c in range(cases):
        lines.append(f'<trace><string key="concept:name" value="case-{c}"/>\n')
        for i in range(10):
            when = f"2024-01-{1 + c % 28:02d}T{i:02d}:00:00.000+00:00"
            if broken and c == cases - 1 and i == 9:
                when = "not a time"
            lines.append(f'<event><string key="concept:name" value="step {i % 7}"/>'
                         f'<date key="time:timestamp" value="{when}"/></event>\n')
        lines.append("</trace>\n")
    lines.append("</log>\n")
    path.write_text("".join(lines))
    return path


def _shown_text(output) -> str:
    """What a reader of the saved notebook sees of an output (a stream's \\r-overwritten
    text collapses to what was written last on each line)."""
    def joined(text) -> str:                   # a saved notebook may split text in lines
        return "".join(text) if isinstance(text, list) else text

    if output["output_type"] == "stream":
        return "\n".join(line.rsplit("\r", 1)[-1]
                         for line in joined(output["text"]).split("\n"))
    return joined(output.get("data", {}).get("text/plain", ""))


def test_import_progress_reads_well_in_the_saved_notebook(tmp_path):
    """Run an import slow enough to show a bar (over a second) in a real kernel, and one
    that fails (every bar shown), save the notebook, and read it as a reader would
    without a kernel: no widget, and each bar's last words."""
    import nbformat
    from nbclient import NotebookClient

    good = _xes(tmp_path / "big.xes", 8000)                      # a few seconds to import
    bad = _xes(tmp_path / "broken.xes", 2000, broken=True)      # refused at its last line
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import eventlab as el\nstore = el.connect()\n"
                                  f"el.import_log(store, {str(good)!r})"),
        nbformat.v4.new_code_cell("from eventlab import progress\n"
                                  "progress.DELAY = 0.0    # show every bar, even a short one\n"
                                  f"try:\n    el.import_log(store, {str(bad)!r}, "
                                  f"stream_prefix='b-')\nexcept ValueError:\n"
                                  "    print('refused')"),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    saved = json.loads((tmp_path / "saved.ipynb").read_text())
    good_cell, bad_cell = [c for c in saved["cells"] if c["cell_type"] == "code"]
    for cell in (good_cell, bad_cell):
        widgets = [o for o in cell["outputs"] if WIDGET_VIEW in o.get("data", {})]
        assert not widgets, widgets                              # nothing needs a live kernel
    shown = [_shown_text(o) for o in good_cell["outputs"]]
    bars = [t for t in shown if "big.xes" in t]
    assert bars, shown                                           # the import showed a bar ...
    assert bars[-1].strip().startswith("imported big.xes: 100%")  # ... ending at 100%, done
    assert bars[-1].strip().endswith("done")
    assert "ImportSummary(cases=8000, events=80000" in shown[-1]
    shown = [_shown_text(o) for o in bad_cell["outputs"]]
    bars = [t for t in shown if "broken.xes" in t]
    assert bars and bars[-1].strip().endswith("stopped"), shown  # it says where it stopped
    assert "done" not in bars[-1] and "refused" in shown[-1]
