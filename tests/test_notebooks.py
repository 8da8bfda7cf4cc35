"""The course notebooks: each runs top to bottom in a real kernel; none is committed executed.

Executed copies are written to pytest's tmp_path (never beside the originals).
The kernel runs with its working directory in notebooks/, as it does in Jupyter.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT = 300


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.output_type == "error"]


def test_the_course_is_there():
    names = [p.stem[:2] for p in NOTEBOOKS]
    assert names == ["01", "02", "03", "04", "05", "06", "07", "08"], names


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    try:
        execute(nb, NOTEBOOK_DIR)
    finally:
        nbformat.write(nb, tmp_path / path.name)
    assert not error_outputs(nb)
    # Every exercise's hidden solution ran its check and passed.
    checked = [(i, cell) for section in exercises(nb) for i, cell in section
               if is_solution(cell)]
    assert len(checked) == len(exercises(nb)), (
        f"{path.name}: {len(exercises(nb))} exercises, {len(checked)} checked solutions")
    for i, cell in checked:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "✓ correct" in text, f"{path.name} cell {i}: the solution did not pass"


def exercises(nb: nbformat.NotebookNode) -> list[list[tuple[int, nbformat.NotebookNode]]]:
    """The code cells of each exercise: from its "## Exercise" heading to the next heading
    of that level (numbered as in the notebook)."""
    sections: list[list[tuple[int, nbformat.NotebookNode]]] = []
    inside = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            inside = cell.source.startswith("## Exercise")
            if inside:
                sections.append([])
        elif inside and cell.cell_type == "code":
            sections[-1].append((i, cell))
    return sections


def is_solution(cell: nbformat.NotebookNode) -> bool:
    return "solution" in cell.metadata.get("tags", []) and "attempt(" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_stub_a_check_and_a_hidden_solution(path: Path):
    nb = nbformat.read(path, as_version=4)
    sections = exercises(nb)
    assert sections, f"{path.name} has no '## Exercise' section"
    for number, cells in enumerate(sections, start=1):
        where = f"{path.name}, exercise {number}"
        shown = [cell for _, cell in cells if "solution" not in cell.metadata.get("tags", [])]
        solutions = [cell for _, cell in cells if is_solution(cell)]
        assert any("raise NotImplementedError" in c.source for c in shown), f"{where}: no stub"
        assert any("attempt(" in c.source for c in shown), f"{where}: no check cell"
        assert len(solutions) == 1, f"{where}: {len(solutions)} solution cells calling attempt"
        assert solutions[0].metadata.get("jupyter", {}).get("source_hidden"), (
            f"{where}: the solution cell is not hidden")


@pytest.mark.notebooks
def test_a_failing_cell_fails_the_run(tmp_path: Path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom in cell 2')"),
    ])
    with pytest.raises(CellExecutionError, match="boom in cell 2"):
        execute(nb, tmp_path)


@pytest.mark.notebooks
def test_the_kernel_is_this_environment(tmp_path: Path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, os, eventlab\nprint(sys.prefix)\nprint(os.getcwd())")])
    execute(nb, tmp_path)
    lines = nb.cells[0].outputs[0].text.splitlines()
    assert Path(lines[0]).resolve() == Path(sys.prefix).resolve(), (
        "the python3 kernel is not this venv's Python: run "
        "`.venv/bin/python -m ipykernel install --sys-prefix`")
    assert Path(lines[1]).resolve() == tmp_path.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL
    assert "widgets" not in nb.metadata, "widget state is saved: clear it before committing"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


def test_an_exercise_without_a_checked_solution_is_noticed():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    solution = code("answer = 1\nattempt(check, answer)")
    solution.metadata["tags"] = ["solution"]
    nb = nbformat.v4.new_notebook(cells=[
        md("## Exercise 1: one"), code("raise NotImplementedError"), code("attempt(check, a)"),
        md("## Exercise 2: two"), code("raise NotImplementedError"), code("attempt(check, a)"),
        md("*Solution:*"), solution, md("## Summary"), code("attempt(check, b)")])
    sections = exercises(nb)
    assert [[i for i, _ in cells] for cells in sections] == [[1, 2], [4, 5, 7]]
    assert [sum(is_solution(c) for _, c in cells) for cells in sections] == [0, 1]


def load_checker():
    spec = importlib.util.spec_from_file_location("checker", NOTEBOOK_DIR / "checker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attempt_reports_a_stub_without_failing(capsys):
    def stub(x):
        raise NotImplementedError

    def check(fn):
        assert fn(2) == 4

    load_checker().attempt(check, stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_attempt_fails_a_wrong_answer_with_the_reason():
    def check(fn):
        assert fn(2) == 4, "double 2 should be 4"

    with pytest.raises(AssertionError, match="Not quite: double 2 should be 4"):
        load_checker().attempt(check, lambda x: x + 1)


def test_attempt_accepts_a_right_answer(capsys):
    def check(fn):
        assert fn(2) == 4

    load_checker().attempt(check, lambda x: x * 2)
    assert "✓ correct" in capsys.readouterr().out


def test_attempt_sees_a_stub_behind_a_wrapping_error(capsys):
    def check(fn):
        try:
            fn()
        except NotImplementedError as exc:
            raise RuntimeError("the library wrapped it") from exc

    def stub():
        raise NotImplementedError

    load_checker().attempt(check, stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_attempt_lets_other_errors_through():
    def check(fn):
        fn()

    with pytest.raises(KeyError):
        load_checker().attempt(check, lambda: {}["missing"])
