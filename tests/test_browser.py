"""The views in a real JupyterLab, driven through Debian's Chromium with Playwright.

Starts ``jupyter lab`` on 127.0.0.1 once for the module, serving temporary
copies of tests/browser_notebooks/*.ipynb (autosave writes into served files),
opens each notebook in a workspace of its own, runs every cell and checks what
the page shows: the TimeTravel slider moved with the keyboard, a version set in
Python shown exactly (on both axes) and kept by the kernel, a snapshot that
keeps its step while later cells move the live view. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "tests" / "browser_notebooks"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# What each account-1 event of views.ipynb does to the balance (Opened, Deposited,
# Withdrew, Deposited, Withdrew), and the balance after each version 0..5, worked out
# here by hand rather than through eventlab.
AMOUNTS = [0.0, +100.0, -30.0, +12.5, -2.5]
BALANCES = [sum(AMOUNTS[:version]) for version in range(len(AMOUNTS) + 1)]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on temporary copies of the notebooks; yields (base url, token)."""
    if not CHROMIUM.exists():
        reason = ("/usr/bin/chromium is missing: the real-browser test did NOT run "
                  "(install it with `apt-get install -y chromium`)")
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "served"
    root.mkdir()
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    # No "news?" prompt over the page in screenshots.
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n"
                                       + (tmp_path / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _expect_balance(output, expected: float) -> None:
    """Wait until the state table shows ``expected`` as the balance (widgets update apart)."""
    from playwright.sync_api import expect

    cell = output.locator('.el-state td.el-value[data-field="balance"]').first
    expect(cell).to_have_text(repr(float(expected)), timeout=30_000)
    assert float(cell.inner_text().strip()) == expected


@pytest.fixture(scope="module")
def browser(lab: tuple[str, str]) -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (one for the module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _run_all(browser, lab: tuple[str, str], name: str, errors: list[str]):
    """Open notebook ``name`` in a workspace of its own, wait for its kernel, Run All."""
    from playwright.sync_api import expect

    base, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}")
    # The status bar says "<kernel> | Idle" only once the kernel really is ready.
    expect(page.locator(".jp-StatusBar-Widget").filter(
        has_text=re.compile(r"\|\s*Idle"))).to_be_visible(timeout=90_000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=30_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


def _shut_kernels(lab: tuple[str, str]) -> None:
    """Stop the kernels the test started (the machine is shared)."""
    base, token = lab
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as answer:
        sessions = json.load(answer)
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def _no_errors(page, errors: list[str]) -> None:
    assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0
    assert page.locator(".jp-OutputArea-output[data-mime-type*=error]").count() == 0
    assert not errors, errors


def test_timetravel_slider_in_jupyterlab(lab: tuple[str, str], browser) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    page = _run_all(browser, lab, "views.ipynb", errors)
    try:
        view = page.locator(".jp-OutputArea-output").filter(has=page.locator(".el-header"))
        expect(view).to_have_count(1, timeout=90_000)
        expect(view.locator(".el-header")).to_have_attribute("data-version", "2",
                                                             timeout=30_000)
        _expect_balance(view, BALANCES[2])
        view.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "timetravel-v2.png"))

        handle = view.locator(".widget-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        expect(view.locator(".el-header")).to_have_attribute("data-version", "3",
                                                             timeout=30_000)
        assert BALANCES[3] == 70.0
        _expect_balance(view, BALANCES[3])
        # The event at version 3 is the withdrawal of 30: balance is highlighted.
        expect(view.locator('mark.el-changed[data-field="balance"]')).to_have_count(1)
        expect(view.locator(".el-event .el-type")).to_have_text("Withdrew")
        page.screenshot(path=str(ARTIFACTS / "timetravel-v3.png"))

        # What if the withdrawal at version 3 had not happened?
        view.locator("button", has_text="what if").click()
        view.locator("button", has_text="replay").click()
        whatif = view.locator(".el-whatif")
        expect(whatif).to_be_visible(timeout=30_000)
        actual = whatif.locator('td.el-value[data-field="balance"]').inner_text()
        alternative = whatif.locator('td.el-alt[data-field="balance"]').inner_text()
        assert float(actual) == BALANCES[-1] == 80.0
        assert float(alternative) == BALANCES[-1] - AMOUNTS[2] == 110.0
        whatif.scroll_into_view_if_needed()
        view.screenshot(path=str(ARTIFACTS / "timetravel-whatif.png"))

        # The replay left v3 out, so its tick box is off; ticking v2 (the deposit of 100)
        # off as well leaves out both. Then a click on v5 in the list goes there.
        row = view.locator(".el-row", has=page.locator("button", has_text="v2 Deposited"))
        expect(view.locator(".el-row", has=page.locator("button", has_text="v3 Withdrew"))
               .locator("input[type=checkbox]")).not_to_be_checked()
        row.locator("input[type=checkbox]").uncheck()
        expect(whatif.locator('td.el-alt[data-field="balance"]')).to_have_text(
            repr(BALANCES[-1] - AMOUNTS[2] - AMOUNTS[1]), timeout=30_000)
        view.locator("button", has_text="v5 Withdrew").click()
        expect(view.locator(".el-header")).to_have_attribute("data-version", "5",
                                                             timeout=30_000)
        view.screenshot(path=str(ARTIFACTS / "timetravel-list.png"))

        # The other views rendered too, and no cell printed an error.
        outputs = page.locator(".jp-OutputArea-output")
        for name, marker in (("projection-chart", ".el-progress"),
                             ("logview", ".el-logcaption"), ("concurrency-lab", ".el-race")):
            shown = outputs.filter(has=page.locator(marker))
            expect(shown).to_have_count(1, timeout=30_000)
            shown.scroll_into_view_if_needed()
            shown.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        expect(page.locator(".el-progress")).to_have_attribute("data-position", "7")
        expect(page.locator(".el-race")).to_have_attribute("data-winner", "A")
        for img in page.locator(".el-logview img, .widget-image").all():
            assert img.evaluate("i => i.naturalWidth") > 100
        _no_errors(page, errors)
    finally:
        page.close()
        _shut_kernels(lab)


def _cell_output(page, index: int):
    """The output area of code/markdown cell ``index`` of the open notebook."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")


def test_a_version_set_in_python_is_the_version_shown_and_kept(lab, browser) -> None:
    """``view.version = 10`` in a cell: the page's slider reads 10, on the version axis and
    on the time axis, and the kernel still says 10 after the page has drawn it all."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = _run_all(browser, lab, "version_from_python.ipynb", errors)
    try:
        views = [_cell_output(page, 2), _cell_output(page, 3)]     # by version, by time
        for view in views:
            expect(view.locator(".el-header")).to_have_attribute("data-version", "10",
                                                                 timeout=90_000)
            slider = view.locator(".widget-slider", has_text="version")
            expect(slider.locator(".widget-readout")).to_have_text("10", timeout=30_000)
            _expect_balance(view, float(sum(range(10))))
        expect(views[1].locator(".widget-slider", has_text="time")).to_be_visible()
        checks = _cell_output(page, 4)
        expect(checks).to_have_text(re.compile(r"check 1: versions 10 and 10"),
                                    timeout=30_000)
        views[1].scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "version-from-python.png"))
        time.sleep(2)   # anything the page would send back has reached the kernel by now
        page.evaluate("""() => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.activeCellIndex = panel.content.widgets.length - 1;
            return window.jupyterapp.commands.execute('notebook:run-cell');
        }""")
        expect(checks).to_have_text(re.compile(r"check 2: versions 10 and 10"),
                                    timeout=30_000)
        for view in views:
            expect(view.locator(".el-header")).to_have_attribute("data-version", "10")
            readout = view.locator(".widget-slider", has_text="version").locator(
                ".widget-readout")
            assert readout.inner_text().strip() == "10"
        _no_errors(page, errors)
    finally:
        page.close()
        _shut_kernels(lab)


def test_a_snapshot_keeps_its_step_when_later_cells_move_the_view(lab, browser) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    page = _run_all(browser, lab, "snapshots.ipynb", errors)
    try:
        frozen, live = _cell_output(page, 2), _cell_output(page, 3)
        expect(live.locator(".el-header")).to_have_attribute("data-version", "3",
                                                             timeout=90_000)
        _expect_balance(live, 3.0)
        expect(frozen.locator(".el-snapshot")).to_have_count(1)
        expect(frozen.locator(".el-header")).to_have_attribute("data-version", "10")
        _expect_balance(frozen, 45.0)
        expect(frozen.locator(".widget-slider")).to_have_count(0)   # static: no widget
        frozen.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "snapshot.png"))
        _no_errors(page, errors)
    finally:
        page.close()
        _shut_kernels(lab)
