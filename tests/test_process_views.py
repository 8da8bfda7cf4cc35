"""The process map, the dotted chart and the case-duration histogram, drawn from a real log
(the receipt log shipped in data/) and inspected through matplotlib's own objects."""

from __future__ import annotations

import itertools
import random
import struct

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.patches import FancyBboxPatch

import eventlab as el
from eventlab.notebook import (
    LogView,
    plot_case_durations,
    plot_directly_follows,
    plot_dotted_chart,
    plot_events_over_time,
    plot_stream_lengths,
    plot_swimlanes,
    plot_type_counts,
    process_map,
)
from eventlab.notebook.layered import Edge, layout
from eventlab.notebook.plots import human_duration
from eventlab.notebook.render import figure_png


@pytest.fixture(scope="module")
def log(receipt):
    """The receipt log as pandas sees it, each case in order."""
    return receipt.to_df().sort_values(["stream_id", "version"]).reset_index(drop=True)


def _steps(log: pd.DataFrame) -> pd.DataFrame:
    """Directly-follows pairs and waits, computed here with pandas alone."""
    nxt = log.groupby("stream_id")[["type", "recorded_at"]].shift(-1)
    steps = pd.DataFrame({"source": log["type"], "target": nxt["type"],
                          "wait": nxt["recorded_at"] - log["recorded_at"]})
    return steps.dropna(subset=["target"])


def _gids(fig, prefix: str) -> dict[str, object]:
    return {p.get_gid()[len(prefix):]: p for p in fig.axes[0].patches
            if (p.get_gid() or "").startswith(prefix)}


def _texts(fig, prefix: str) -> dict[str, str]:
    return {t.get_gid()[len(prefix):]: t.get_text() for t in fig.axes[0].texts
            if (t.get_gid() or "").startswith(prefix)}


def _edge(gid: str) -> tuple[str, str]:
    source, target = gid.split("->")
    return source, target


def _png_width(png: bytes) -> int:
    return struct.unpack(">I", png[16:20])[0]


# -- the process map ---------------------------------------------------------------------------

def test_map_of_the_receipt_log_is_readable_at_notebook_width(receipt):
    fig = process_map(receipt)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text().strip()] + [ax.title]
    assert all(t.get_fontsize() >= 8 for t in texts)
    assert fig.get_size_inches()[0] * 100 <= 1000
    assert _png_width(figure_png(fig, dpi=100)) <= 1000
    boxes = [(t.get_gid() or "title", t.get_window_extent(renderer)) for t in texts]
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            overlap = (min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0))
            assert min(overlap) <= 0, f"{name_a!r} overlaps {name_b!r}"
    nodes = {p.get_gid(): p.get_window_extent(renderer) for p in ax.patches
             if isinstance(p, FancyBboxPatch)}
    for gid, box in boxes:
        if gid.startswith(("label:edge:", "label:start:", "label:end:")):
            for node, extent in nodes.items():
                assert not box.overlaps(extent), f"{gid!r} lies on {node!r}"
    inside = [(gid, box) for gid, box in boxes if gid.startswith(("label:node:", "count:node:"))]
    assert len(inside) == 2 * len(_gids(fig, "node:"))
    for gid, box in inside:
        node = nodes["node:" + gid.split("node:", 1)[1]]
        assert node.x0 <= box.x0 and box.x1 <= node.x1 and node.y0 <= box.y0 <= box.y1 <= node.y1
    names = list(nodes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not nodes[a].overlaps(nodes[b]), f"{a} overlaps {b}"


def test_map_labels_are_the_directly_follows_counts(receipt, log):
    steps = _steps(log)
    counts = steps.groupby(["source", "target"]).size()
    fig = process_map(receipt, activities=None, paths=1.0)
    labels = _texts(fig, "label:edge:")
    assert len(labels) == len(counts) == 99
    for gid, text in labels.items():
        assert text == f"{counts[_edge(gid)]:,}", gid
    widths = {_edge(g): p.get_linewidth() for g, p in _gids(fig, "edge:").items()}
    by_count = sorted(widths, key=lambda e: counts[e])
    assert all(widths[a] <= widths[b] for a, b in itertools.pairwise(by_count))
    assert widths[by_count[-1]] > widths[by_count[0]]
    types = log["type"].value_counts()
    node_counts = _texts(fig, "count:node:")
    assert {t: int(c.replace(",", "")) for t, c in node_counts.items()} == types.to_dict()


@pytest.mark.parametrize("measure,q", [("median", 0.5), ("p90", 0.9)])
def test_map_labels_are_the_waits_in_a_human_unit(receipt, log, measure, q):
    waits = _steps(log).groupby(["source", "target"])["wait"].quantile(q)
    fig = process_map(receipt, measure, activities=12, paths=20)
    labels = _texts(fig, "label:edge:")
    assert labels
    for gid, text in labels.items():
        assert text == human_duration(waits[_edge(gid)]), gid
    assert any(t.endswith((" d", " h", " min")) for t in labels.values())
    widths = {_edge(g): p.get_linewidth() for g, p in _gids(fig, "edge:").items()}
    slowest = max(widths, key=lambda e: waits[e])
    fastest = min(widths, key=lambda e: waits[e])
    assert widths[slowest] > widths[fastest]


def test_start_and_end_arcs_count_the_cases(receipt, log):
    firsts = log.groupby("stream_id")["type"].first().value_counts()
    lasts = log.groupby("stream_id")["type"].last().value_counts()
    fig = process_map(receipt, activities=None)
    starts = _texts(fig, "label:start:")
    ends = _texts(fig, "label:end:")
    assert {t: int(c.replace(",", "")) for t, c in starts.items()} == firsts.to_dict()
    assert {t: int(c.replace(",", "")) for t, c in ends.items()} == lasts.to_dict()
    assert set(_gids(fig, "start:")) == set(firsts.index)
    assert "1,434 cases" in fig.axes[0].get_title("left")


def test_left_out_names_exactly_what_is_not_drawn(receipt, log):
    fig = process_map(receipt, activities=10, paths=15)
    every_type = set(log["type"])
    every_edge = set(_steps(log).groupby(["source", "target"]).size().index)
    nodes = set(_gids(fig, "node:"))
    edges = {_edge(g) for g in _gids(fig, "edge:")}
    left = fig.left_out
    assert len(nodes) == 10 and set(left.activities) == every_type - nodes
    assert len(left.activities) == len(every_type) - 10
    assert set(left.edges) == every_edge - edges and not set(left.edges) & edges
    sizes = log["type"].value_counts()
    assert sizes[list(nodes)].min() >= sizes[list(left.activities)].max()
    note = next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "left-out")
    flat = " ".join(note.split())
    assert flat.startswith(f"left out: {len(left.activities)} activities (")
    assert flat.endswith(f"{len(left.edges)} paths")
    assert all(" ".join(name.split()) in flat for name in left.activities)
    assert "10 of 27 activities" in fig.axes[0].get_title("left")


def test_every_box_keeps_a_way_in_and_out(receipt, log):
    fig = process_map(receipt, activities=15, paths=0)
    nodes = set(_gids(fig, "node:"))
    edges = [_edge(g) for g in _gids(fig, "edge:")]
    into = {t for s, t in edges if s != t} | set(_gids(fig, "start:"))
    out = {s for s, t in edges if s != t} | set(_gids(fig, "end:"))
    steps = _steps(log)
    among = steps[steps["source"].isin(nodes) & steps["target"].isin(nodes)
                  & (steps["source"] != steps["target"])]
    assert len(into) < len(nodes)                 # a box none of the others leads to ...
    assert nodes & set(among["target"]) <= into   # ... else each box has a way in
    assert nodes & set(among["source"]) <= out    # and a way out
    everything = process_map(receipt, activities=15, paths=1.0)
    assert len(edges) < len(_gids(everything, "edge:"))


def test_filter_changes_the_map(receipt, log):
    last = "T15 Print document X request unlicensed"
    kept = log.groupby("stream_id").filter(lambda c: c["type"].iloc[-1] == last)
    fig = process_map(receipt, activities=None, filter=el.Filter(ends_with=last))
    assert set(_gids(fig, "node:")) == set(kept["type"])
    assert _texts(fig, "label:end:") == {last: f"{kept['stream_id'].nunique():,}"}
    assert f"{kept['stream_id'].nunique():,} cases" in fig.axes[0].get_title("left")


def test_map_colours_match_the_other_charts(receipt):
    fig = process_map(receipt, activities=8)
    bars = plot_type_counts(receipt).axes[0]
    bar_colour = {t.get_text(): to_hex(p.get_facecolor())
                  for t, p in zip(bars.get_yticklabels(), bars.patches, strict=True)}
    for name, patch in _gids(fig, "node:").items():
        assert to_hex(patch.get_edgecolor()) == bar_colour[name]
    assert len({to_hex(p.get_edgecolor()) for p in _gids(fig, "node:").values()}) == 8


def test_the_older_name_still_draws_the_map(receipt, log):
    counts = _steps(log).groupby(["source", "target"]).size()
    fig = plot_directly_follows(receipt, top=40, min_count=100)
    drawn = {_edge(g) for g in _gids(fig, "edge:")}
    assert drawn and all(counts[e] >= 100 for e in drawn)
    rare = {e for e, n in counts.items() if n < 100}
    assert rare <= set(fig.left_out.edges)
    assert set(fig.left_out.edges) | drawn == set(counts.index)


def test_map_refuses_what_it_cannot_draw(receipt):
    with pytest.raises(el.InvalidInputError, match="measure"):
        process_map(receipt, "mean")
    with pytest.raises(el.InvalidInputError, match="activities="):
        process_map(receipt, activities=1.5)
    with pytest.raises(el.InvalidInputError, match="paths="):
        process_map(receipt, paths=-1)


def test_map_of_an_empty_log():
    fig = process_map(el.InMemoryEventStore())
    assert "0 of 0 activities" in fig.axes[0].get_title("left") and not fig.left_out


def test_logview_draws_the_process_map(receipt):
    view = LogView(receipt, kind="process map")
    assert view.figure().left_out.activities                  # 27 types: some left out
    assert bytes(view._image.value).startswith(b"\x89PNG")


def test_layered_layout_keeps_boxes_apart_and_edges_pointing_down():
    rng = random.Random(7)
    for _ in range(25):
        n = rng.randint(2, 12)
        nodes = {i: (rng.uniform(20, 90), rng.uniform(12, 30)) for i in range(n)}
        pairs = {(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(1, 3 * n))}
        edges = [Edge(s, t, rng.uniform(0, 30), 9.0) for s, t in pairs if s != t]
        hint = {i: rng.random() for i in nodes} if rng.random() < 0.5 else None
        placed = layout(nodes, edges, top=0, bottom=n - 1 if n > 2 else None, order=hint)
        ranks = placed.ranks
        assert [k for k in nodes if ranks[k] == 0] == [0]        # the top alone on top
        if n > 2:
            assert [k for k in nodes if ranks[k] == max(ranks.values())] == [n - 1]
        kept = [r.edge for r in placed.routes if not r.reversed]
        assert all(ranks[e.source] < ranks[e.target] for e in kept)
        assert all(ranks[r.edge.source] > ranks[r.edge.target] for r in placed.routes
                   if r.reversed)
        for a in nodes:
            for b in nodes:
                if a < b and ranks[a] == ranks[b]:
                    (xa, _), (xb, _) = placed.nodes[a], placed.nodes[b]
                    assert abs(xa - xb) >= (nodes[a][0] + nodes[b][0]) / 2
        for route in placed.routes:
            first, last = route.points[0], route.points[-1]
            source, target = placed.nodes[route.edge.source], placed.nodes[route.edge.target]
            assert abs(first[1] - source[1]) == pytest.approx(nodes[route.edge.source][1] / 2)
            assert abs(last[1] - target[1]) == pytest.approx(nodes[route.edge.target][1] / 2)


# -- the dotted chart and case durations -------------------------------------------------------

def test_dotted_chart_has_one_dot_per_event(receipt, log):
    ax = plot_dotted_chart(receipt).axes[0]
    per_type = {line.get_label(): len(line.get_xdata()) for line in ax.lines}
    assert sum(per_type.values()) == 8577
    assert per_type == log["type"].value_counts().to_dict()
    assert len({to_hex(line.get_color()) for line in ax.lines}) == 27    # all distinct
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(per_type)
    firsts = {}
    for line in ax.lines:
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            firsts[y] = min(firsts.get(y, x), x)
    assert sorted(firsts) == list(range(1434))
    assert all(firsts[i] <= firsts[i + 1] for i in range(1433))       # by first event
    assert all(line.get_rasterized() for line in ax.lines)


def test_dotted_chart_with_a_filter(receipt, log):
    f = el.Filter(min_events=7)
    kept = log.groupby("stream_id").filter(lambda c: len(c) >= 7)
    ax = plot_dotted_chart(receipt, filter=f).axes[0]
    assert sum(len(line.get_xdata()) for line in ax.lines) == len(kept)
    assert ax.get_title() == f"{len(kept):,} events in {kept['stream_id'].nunique():,} cases"


def test_case_durations_histogram(receipt, log):
    spans = log.groupby("stream_id")["recorded_at"].agg(lambda t: t.max() - t.min())
    ax = plot_case_durations(receipt).axes[0]
    assert sum(p.get_height() for p in ax.patches) == 1434
    assert ax.get_ylabel() == "cases"
    assert ax.get_xlabel() == "case duration (log scale)"      # receipt: minutes to months
    assert ax.get_title() == f"1,434 cases, median {human_duration(spans.median())}"
    ax = plot_case_durations(receipt, bins=5, filter=el.Filter(max_events=3)).axes[0]
    short = (log.groupby("stream_id").size() <= 3).sum()
    assert len(ax.patches) == 5 and sum(p.get_height() for p in ax.patches) == short


# -- filter= on the older plots ------------------------------------------------------------------

def test_older_plots_draw_only_the_kept_cases(receipt, log):
    f = el.Filter(min_events=7)
    kept = log.groupby("stream_id").filter(lambda c: len(c) >= 7)
    ax = plot_type_counts(receipt, filter=f, top=None).axes[0]
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches,
                                                          strict=True)}
    assert widths == kept["type"].value_counts().to_dict()
    ax = plot_stream_lengths(receipt, filter=f).axes[0]
    assert sum(p.get_height() for p in ax.patches) == kept["stream_id"].nunique()
    ax = plot_events_over_time(receipt, "1W", filter=f).axes[0]
    assert sum(sum(b.get_height() for b in c) for c in ax.containers) == len(kept)
    ax = plot_swimlanes(receipt, filter=f, limit=3).axes[0]
    first = kept.sort_values("position").drop_duplicates("stream_id")["stream_id"][:3]
    assert [t.get_text() for t in ax.get_yticklabels()] == first.tolist()
    ax = plot_swimlanes(receipt, [first.iloc[0], "no-such-case"], filter=f).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [first.iloc[0]]
