"""The views in a real JupyterLab, driven through Debian's Chromium with Playwright.

Starts ``jupyter lab`` on 127.0.0.1 with a temporary copy of
tests/browser_notebooks/views.ipynb, runs every cell, moves the TimeTravel
slider with the keyboard and checks the balance it shows against the value
computed here. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

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
NOTEBOOK = REPO / "tests" / "browser_notebooks" / "views.ipynb"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# What each account-1 event of the notebook does to the balance (Opened, Deposited,
# Withdrew, Deposited, Withdrew), and the balance after each version 0..5, worked out
# here by hand rather than through eventlab.
AMOUNTS = [0.0, +100.0, -30.0, +12.5, -2.5]
BALANCES = [sum(AMOUNTS[:version]) for version in range(len(AMOUNTS) + 1)]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on a temporary copy of the notebook; yields (base url, token)."""
    if not CHROMIUM.exists():
        reason = ("/usr/bin/chromium is missing: the real-browser test did NOT run "
                  "(install it with `apt-get install -y chromium`)")
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
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


def test_timetravel_slider_in_jupyterlab(lab: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            # The status bar says "<kernel> | Idle" only once the kernel really is ready.
            expect(page.locator(".jp-StatusBar-Widget").filter(
                has_text=re.compile(r"\|\s*Idle"))).to_be_visible(timeout=90_000)
            page.wait_for_function("() => window.jupyterapp !== undefined", timeout=30_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

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
            assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0
            assert not errors, errors
        finally:
            browser.close()
