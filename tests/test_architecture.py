"""The package's shape: no import cycles, the store package below everything, and
nothing above the store reaching into a backend's database.

These read the source (every import, including those inside functions and
under ``TYPE_CHECKING``), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventlab as el

PACKAGE = Path(el.__file__).parent
#: what the store package may import from the rest of eventlab: the basics below it
BELOW_THE_STORE = {"eventlab.errors", "eventlab.envelope", "eventlab.events"}
#: names that belong to the store package's databases
DATABASE_NAMES = ("eventlab_events", "eventlab_snapshots", "eventlab_checkpoints",
                  "eventlab_meta")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The eventlab modules ``name`` imports (``from .x import y`` counts ``.x.y`` when
    that is a module, else ``.x``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def is_package_init(name: str) -> bool:
    """``eventlab`` and ``eventlab.x`` packages re-export their submodules; an edge from a
    submodule up to its own package's ``__init__`` is how Python loads it, not a layer."""
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    edges = {name: {t for t in targets if not is_package_init(t) or t == "eventlab.store"}
             for name, targets in graph().items()}
    assert cycles(edges) == []


def test_the_store_package_imports_nothing_above_it():
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("eventlab.store"):
            above = {t for t in targets if not t.startswith("eventlab.store")} - BELOW_THE_STORE
            assert not above, f"{name} imports {sorted(above)}"
    for name in BELOW_THE_STORE:
        assert not {t for t in edges[name] if t.startswith("eventlab.store")}, name


def violations(source: str) -> list[str]:
    """Where ``source`` uses a store's private (``x._anything`` on an object not its
    own), a backend module, a connection, a lock, or a table of the store."""
    found = []
    tree = ast.parse(source)
    # a module's or a class's own privates (argparse._SubParsersAction) are not a store's
    own = {"self", "cls"} | {(a.asname or a.name) for n in ast.walk(tree)
                             if isinstance(n, ast.Import) for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else "?"
            if (node.attr.startswith("_") and not node.attr.startswith("__")
                    and owner not in own and not owner[0].isupper()
                    and node.attr != "_asdict"):
                found.append(f"line {node.lineno} reaches into .{node.attr}")
            if node.attr in ("connection", "lock"):
                found.append(f"line {node.lineno} names .{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith(("store.duckdb", "store.memory", "store.mirror")):
                found.append(f"line {node.lineno} imports a backend ({node.module})")
            if any(a.name == "TABLE" for a in node.names):
                found.append(f"line {node.lineno} imports the table name")
    found += [f"names the table {t}" for t in DATABASE_NAMES if t in source]
    return found


def test_nothing_above_the_store_touches_a_database():
    found = {name: violations(path.read_text()) for name, path in modules().items()
             if not name.startswith("eventlab.store")}
    assert {name: v for name, v in found.items() if v} == {}


def test_the_rule_checker_sees_each_kind_of_reach():
    bad = """
from eventlab.store.duckdb import DuckDBEventStore
from eventlab.store.names import TABLE
def f(store):
    with store._state.lock:
        store.connection.execute("select * from eventlab_events")
"""
    assert violations(bad) == [
        "line 2 imports a backend (eventlab.store.duckdb)", "line 3 imports the table name",
        "line 5 names .lock", "line 5 reaches into ._state", "line 6 names .connection",
        "names the table eventlab_events"]
