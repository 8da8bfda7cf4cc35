"""A layered (Sugiyama-style) graph layout in plain Python: boxes in ranks, top to bottom.

``layout(nodes, edges)`` places boxes of given sizes (in points) so that edges
point down wherever the graph allows, and routes every edge through the ranks
it spans. The steps are the classic ones, kept small:

1. break cycles: a depth-first walk from ``top`` (heaviest edges first); an edge
   back to a node still on the walk is laid out reversed (drawn pointing up).
   Given an ``order`` (say, how early each activity happens in a case), an
   edge against that order is the one reversed;
2. rank the nodes: longest path from the top, then each node is moved to the
   rank that keeps its edges shortest (``top`` first, ``bottom`` last);
3. ranks are doubled, so every edge passes at least one "dummy" between two
   rows of boxes; an edge's label is such a dummy, as wide as the label, so
   labels take room like boxes do and never overlap a box or another label;
4. order each rank by barycentre sweeps (best order by crossings kept);
5. x: each box moves toward its neighbours (weighted: long edges stay straight)
   while keeping its order and gaps (a pool-adjacent-violators projection).

>>> placed = layout({"a": (40, 20), "b": (40, 20), "c": (40, 20)},
...                 [Edge("a", "b", 10, 8), Edge("b", "c", 10, 8), Edge("c", "a", 10, 8)],
...                 top="a")
>>> [placed.nodes[n][1] < placed.nodes["c"][1] for n in ("a", "b")]
[True, True]
>>> placed.routes[2].reversed, placed.crossings
(True, 0)
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

Node = Hashable
Point = tuple[float, float]

#: x-spacing weights of an edge segment by what it joins (as in dot): box-box,
#: box-dummy, dummy-dummy. Heavier segments are kept more vertical.
_OMEGA = {0: 1.0, 1: 2.0, 2: 8.0}


@dataclass(frozen=True)
class Edge:
    """An edge to lay out: ``label_width``/``label_height`` in points (0 for none)."""
    source: Node
    target: Node
    label_width: float = 0.0
    label_height: float = 0.0
    weight: float = 1.0


@dataclass
class Route:
    """Where an edge runs: ``points`` from its source box's border through its dummies to
    its target box's border (y grows downward); ``label`` is the left-middle point of its
    label (``None`` without one); ``reversed`` edges run upward."""
    edge: Edge
    points: list[Point]
    label: Point | None
    reversed: bool


@dataclass
class Layout:
    """Box centres (``nodes``), ``routes`` in the order of the edges given, the drawing's
    ``width``/``height`` (points) and the number of edge ``crossings`` between ranks."""
    nodes: dict[Node, Point]
    sizes: dict[Node, tuple[float, float]]
    routes: list[Route]
    width: float
    height: float
    crossings: int
    ranks: dict[Node, int] = field(default_factory=dict)


@dataclass
class _Vertex:
    key: object                     # a node, or ("dummy", edge index, rank)
    rank: int
    left: float                     # extents around the anchor x, where edges attach
    right: float
    height: float
    dummy: bool
    x: float = 0.0


def layout(nodes: Mapping[Node, tuple[float, float]], edges: Sequence[Edge], *,
           top: Node | None = None, bottom: Node | None = None,
           margins: Mapping[Node, float] | None = None,
           order: Mapping[Node, float] | None = None, node_gap: float = 14.0,
           dummy_gap: float = 5.0, rank_gap: float = 12.0, sweeps: int = 12) -> Layout:
    """Lay out ``nodes`` (key -> (width, height) in points) and ``edges`` (no self-loops),
    top to bottom; ``top``/``bottom`` are kept alone in the first / last rank.
    ``margins`` keeps room (points) to the right of some boxes, e.g. for a loop.
    ``order`` (optional) says which nodes come early: an edge from a node with a
    higher value to one with a lower value is laid out reversed (pointing up)."""
    for e in edges:
        if e.source == e.target:
            raise ValueError(f"self-loop {e.source!r} cannot be laid out; draw it on its node")
        if e.source not in nodes or e.target not in nodes:
            raise ValueError(f"edge {e.source!r} -> {e.target!r} names an unknown node")
    if order is None:
        flipped = _break_cycles(list(nodes), edges, top, bottom)
    else:
        walk = {n: i for i, n in enumerate(_walk(list(nodes), edges, top))}
        key = {n: (0 if n == top else 2 if n == bottom else 1, order.get(n, 0.0), walk[n])
               for n in nodes}
        flipped = [key[e.source] > key[e.target] for e in edges]
    down = [(e.target, e.source) if f else (e.source, e.target)
            for e, f in zip(edges, flipped, strict=True)]
    rank = _rank(list(nodes), down, top, bottom)
    vertices, chains, labels = _vertices(nodes, edges, down, rank, margins or {})
    rows = _order(vertices, chains, sweeps)
    crossings = _crossings(rows, chains)
    _place_x(rows, chains, node_gap, dummy_gap)
    ys, height = _place_y(rows, chains, rank_gap)
    width = max((v.x + v.right for row in rows for v in row), default=0.0)
    centres = {v.key: (v.x, ys[v.rank]) for row in rows for v in row if not v.dummy}
    dummies = {v.key: (v.x, ys[v.rank]) for row in rows for v in row if v.dummy}
    routes = _routes(edges, flipped, chains, labels, centres, dummies, nodes)
    return Layout(centres, dict(nodes), routes, width, height, crossings,
                  {n: rank[n] for n in nodes})


def _break_cycles(keys: list[Node], edges: Sequence[Edge], top: Node | None,
                  bottom: Node | None) -> list[bool]:
    """Which edges to reverse so the rest form no cycle: the edges into ``top`` and out of
    ``bottom``, and the back edges of a depth-first walk from ``top`` (then from every
    node not yet seen), heaviest edges first."""
    out: dict[Node, list[tuple[float, int]]] = defaultdict(list)
    for i, e in enumerate(edges):
        out[e.source].append((-e.weight, i))
    for items in out.values():
        items.sort()
    state: dict[Node, int] = {}          # 1: on the walk, 2: done
    flipped = [e.target == top or e.source == bottom for e in edges]  # top stays on top
    starts = ([top] if top is not None else []) + keys
    for root in starts:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            node, todo = stack[-1]
            step = next(todo, None)
            if step is None:
                state[node] = 2
                stack.pop()
                continue
            target = edges[step[1]].target
            seen = state.get(target)
            if flipped[step[1]]:
                continue
            if seen == 1:
                flipped[step[1]] = True
            elif seen is None:
                state[target] = 1
                stack.append((target, iter(out[target])))
    return flipped


def _walk(keys: list[Node], edges: Sequence[Edge], top: Node | None) -> list[Node]:
    """Nodes in depth-first order from ``top`` (heaviest edges first), then the rest."""
    out: dict[Node, list[tuple[float, int, Node]]] = defaultdict(list)
    for i, e in enumerate(edges):
        out[e.source].append((-e.weight, i, e.target))
    seen: list[Node] = []
    done: set[Node] = set()
    for root in ([top] if top is not None else []) + keys:
        stack = [root]
        while stack:
            node = stack.pop()
            if node in done:
                continue
            done.add(node)
            seen.append(node)
            stack.extend(t for _, _, t in sorted(out[node], reverse=True))
    return seen


def _rank(keys: list[Node], down: list[tuple[Node, Node]], top: Node | None,
          bottom: Node | None) -> dict[Node, int]:
    """Longest-path ranks, then each node moved within its slack to shorten its edges."""
    preds: dict[Node, list[Node]] = defaultdict(list)
    succs: dict[Node, list[Node]] = defaultdict(list)
    for s, t in down:
        succs[s].append(t)
        preds[t].append(s)
    indegree = {k: len(preds[k]) for k in keys}
    ready = [k for k in keys if indegree[k] == 0]
    if top in ready:
        ready.remove(top)
        ready.insert(0, top)
    rank: dict[Node, int] = {}
    topo: list[Node] = []
    while ready:
        node = ready.pop(0)
        topo.append(node)
        floor = 1 if top is not None and node != top else 0
        rank[node] = max([rank[p] + 1 for p in preds[node]] + [floor])
        for t in succs[node]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    if top is not None:                     # what the top cannot reach: as low as it goes
        reached, todo = {top}, [top]
        while todo:
            for t in succs[todo.pop()]:
                if t not in reached:
                    reached.add(t)
                    todo.append(t)
        deepest = max((r for k, r in rank.items() if k != bottom), default=0)
        for node in reversed(topo):
            if node not in reached:
                rank[node] = min([rank[t] - 1 for t in succs[node] if t != bottom],
                                 default=deepest)
    movable = [k for k in topo if k not in (top, bottom)]
    for _ in range(4):                      # coordinate descent on total edge length
        changed = False
        for node in reversed(movable) if _ % 2 == 0 else movable:
            low = max([rank[p] + 1 for p in preds[node]] + [1 if top is not None else 0])
            high = min([rank[s] - 1 for s in succs[node] if s != bottom], default=None)
            if high is None:
                high = max(rank[node], low)
            if not succs[node] and not preds[node]:
                continue
            neighbours = sorted([rank[p] + 1 for p in preds[node]] +
                                [rank[s] - 1 for s in succs[node] if s != bottom])
            if not neighbours:
                continue
            best = min(max(neighbours[(len(neighbours) - 1) // 2], low), high)
            if best != rank[node]:
                rank[node], changed = best, True
        if not changed:
            break
    if bottom is not None:
        rank[bottom] = max((r for k, r in rank.items() if k != bottom), default=0) + 1
    if top is not None:
        rank[top] = 0
    return rank


def _vertices(nodes: Mapping[Node, tuple[float, float]], edges: Sequence[Edge],
              down: list[tuple[Node, Node]], rank: Mapping[Node, int],
              margins: Mapping[Node, float],
              ) -> tuple[dict[object, _Vertex], list[list[object]], list[object | None]]:
    """Boxes on even ranks; each edge a chain of dummies on the ranks between its ends,
    its label on the middle one."""
    vertices: dict[object, _Vertex] = {}
    for key, (w, h) in nodes.items():
        vertices[key] = _Vertex(key, 2 * rank[key], w / 2, w / 2 + margins.get(key, 0.0), h,
                                False)
    chains: list[list[object]] = []
    labels: list[object | None] = []
    for i, ((s, t), e) in enumerate(zip(down, edges, strict=True)):
        first, last = 2 * rank[s], 2 * rank[t]
        between = list(range(first + 1, last))
        odd = [r for r in between if r % 2] or between
        label_at = odd[(len(odd) - 1) // 2] if e.label_width else None
        chain: list[object] = [s]
        labels.append(("dummy", i, label_at) if label_at is not None else None)
        for r in between:
            key = ("dummy", i, r)
            labelled = r == label_at
            vertices[key] = _Vertex(key, r, 1.5, 1.5 + (3 + e.label_width if labelled else 0),
                                    e.label_height if labelled else 0.0, True)
            chain.append(key)
        chain.append(t)
        chains.append(chain)
    return vertices, chains, labels


def _order(vertices: dict[object, _Vertex], chains: list[list[object]],
           sweeps: int) -> list[list[_Vertex]]:
    """Rows of vertices by rank, ordered by barycentre sweeps (fewest crossings kept)."""
    depth = max(v.rank for v in vertices.values()) + 1 if vertices else 0
    up: dict[object, list[object]] = defaultdict(list)
    below: dict[object, list[object]] = defaultdict(list)
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            below[a].append(b)
            up[b].append(a)
    rows: list[list[object]] = [[] for _ in range(depth)]
    seen: set[object] = set()

    def visit(key: object) -> None:             # depth-first: neighbours start together
        stack = [key]
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            rows[vertices[k].rank].append(k)
            stack.extend(reversed(below[k]))

    for key in sorted(vertices, key=lambda k: vertices[k].rank):
        visit(key)
    best = [list(r) for r in rows]
    best_count = _count(best, chains)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        span = range(1, depth) if downward else range(depth - 2, -1, -1)
        for r in span:
            ref = rows[r - 1] if downward else rows[r + 1]
            where = {k: i for i, k in enumerate(ref)}
            links = up if downward else below
            current = {k: i for i, k in enumerate(rows[r])}

            def centre(k: object, where: dict = where, links: dict = links,
                       current: dict = current) -> float:
                at = [where[n] for n in links[k] if n in where]
                return sum(at) / len(at) if at else current[k]

            rows[r].sort(key=centre)
        count = _count(rows, chains)
        if count < best_count:
            best, best_count = [list(r) for r in rows], count
    return [[vertices[k] for k in row] for row in best]


def _pairs(rows: list[list[object]], chains: list[list[object]]
           ) -> dict[int, list[tuple[int, int]]]:
    """Per rank r: the segments to rank r + 1 as (index in r, index in r + 1)."""
    where = {k: (r, i) for r, row in enumerate(rows) for i, k in enumerate(row)}
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            (ra, ia), (_, ib) = where[a], where[b]
            out[ra].append((ia, ib))
    return out


def _count(rows: list[list[object]], chains: list[list[object]]) -> int:
    total = 0
    for segments in _pairs(rows, chains).values():
        segments.sort()
        for i, (a1, b1) in enumerate(segments):
            for a2, b2 in segments[i + 1:]:
                if a2 > a1 and b2 < b1:
                    total += 1
    return total


def _crossings(order: list[list[_Vertex]], chains: list[list[object]]) -> int:
    return _count([[v.key for v in row] for row in order], chains)


def _place_x(order: list[list[_Vertex]], chains: list[list[object]], node_gap: float,
             dummy_gap: float) -> None:
    """Pack each row, then move vertices toward their neighbours, order and gaps kept."""
    where = {v.key: v for row in order for v in row}
    links: dict[object, list[tuple[_Vertex, float]]] = defaultdict(list)
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            va, vb = where[a], where[b]
            w = _OMEGA[int(va.dummy) + int(vb.dummy)]
            links[a].append((vb, w))
            links[b].append((va, w))
    gaps = [[(dummy_gap if a.dummy and b.dummy else node_gap) + a.right + b.left
             for a, b in itertools.pairwise(row)] for row in order]
    for row, gap in zip(order, gaps, strict=True):
        x = row[0].left if row else 0.0
        for i, v in enumerate(row):
            v.x = x
            if i < len(gap):
                x += gap[i]
    for sweep in range(8):
        rows = range(len(order)) if sweep % 2 == 0 else range(len(order) - 1, -1, -1)
        for r in rows:
            row = order[r]
            wanted, weights = [], []
            for v in row:
                near = links[v.key]
                total = sum(w for _, w in near)
                wanted.append(sum(n.x * w for n, w in near) / total if total else v.x)
                weights.append(total or 0.01)
            for v, x in zip(row, _pava(wanted, weights, gaps[r]), strict=True):
                v.x = x
    shift = min((v.x - v.left for row in order for v in row), default=0.0)
    for row in order:
        for v in row:
            v.x -= shift


def _pava(wanted: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Positions closest to ``wanted`` (weighted least squares) with
    ``x[i + 1] - x[i] >= gaps[i]``: pool adjacent violators on the shifted values."""
    if not wanted:
        return []
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    blocks: list[list[float]] = []        # [mean, weight, count]
    for want, weight, offset in zip(wanted, weights, offsets, strict=True):
        blocks.append([want - offset, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for mean, _, count in blocks:
        out.extend([mean] * int(count))
    return [y + offset for y, offset in zip(out, offsets, strict=True)]


def _place_y(order: list[list[_Vertex]], chains: list[list[object]],
             rank_gap: float) -> tuple[list[float], float]:
    """Rows top to bottom; a gap grows with how far its edges run sideways (up to 3x),
    so a slanted edge is drawn as a slope rather than a step."""
    where = {v.key: v for row in order for v in row}
    sideways = [0.0] * len(order)
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            va, vb = where[a], where[b]
            upper = min(va.rank, vb.rank)
            sideways[upper] = max(sideways[upper], abs(va.x - vb.x))
    ys: list[float] = []
    y = 0.0
    for r, row in enumerate(order):
        half = max((v.height for v in row), default=0.0) / 2
        if r:
            y += min(max(rank_gap, 0.2 * sideways[r - 1]), 3 * rank_gap)
        y += half
        ys.append(y)
        y += half
    return ys, y


def _routes(edges: Sequence[Edge], flipped: list[bool], chains: list[list[object]],
            labels: list[object | None], centres: dict[Node, Point],
            dummies: dict[object, Point], sizes: Mapping[Node, tuple[float, float]],
            ) -> list[Route]:
    """Each edge's points, its ends spread along the box borders by where they head."""
    ends: dict[tuple[Node, str], list[tuple[float, int, int]]] = defaultdict(list)
    for i, chain in enumerate(chains):
        upper, lower = chain[0], chain[-1]
        first, last = dummies[chain[1]], dummies[chain[-2]]
        ends[(upper, "bottom")].append((first[0], i, 0))
        ends[(lower, "top")].append((last[0], i, -1))
    ports: dict[tuple[int, int], Point] = {}
    for (node, side), items in ends.items():
        items.sort()
        cx, cy = centres[node]
        w, h = sizes[node]
        y = cy + h / 2 if side == "bottom" else cy - h / 2
        inset = min(w / 2 - 1, 6.0)
        wanted = [min(max(x, cx - w / 2 + inset), cx + w / 2 - inset) for x, _, _ in items]
        gap = min(6.0, (w - 2 * inset) / max(len(items) - 1, 1))
        placed = _pava(wanted, [1.0] * len(items), [gap] * (len(items) - 1))
        spill = max(placed[-1] - (cx + w / 2 - inset), 0.0) if placed else 0.0
        for x, (_, i, end) in zip(placed, items, strict=True):
            ports[(i, end)] = (x - spill, y)
    routes = []
    for i, (e, flip) in enumerate(zip(edges, flipped, strict=True)):
        pts = [ports[(i, 0)], *[dummies[k] for k in chains[i][1:-1]], ports[(i, -1)]]
        key = labels[i]
        label = (dummies[key][0] + 4.5, dummies[key][1]) if key is not None else None
        if flip:
            pts.reverse()
        routes.append(Route(e, pts, label, flip))
    return routes
