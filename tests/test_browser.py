"""The explorer in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by Playwright.

Skipped when chromium is missing, unless ``DPECNN_REQUIRE_BROWSER=1`` (set by ``.ci/run``,
which installs it), so CI cannot pass by skipping.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
SCREENSHOT = Path(__file__).resolve().parents[1] / "outputs" / "browser" / "explorer.png"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("DPECNN_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not found but DPECNN_REQUIRE_BROWSER=1 (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with a random token, serving ``tmp_path``; always stopped."""
    port, token = _free_port(), secrets.token_hex(16)
    state = tmp_path / ".jupyter-state"
    news = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "official Jupyter news?" toast over the screenshot
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    }
    with (tmp_path / "jupyterlab.log").open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={tmp_path}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--allow-root",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("JupyterLab did not start") from None
                    time.sleep(0.5)
            yield base, token
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)  # the server and its kernels
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _wait_for_connected_kernel(base: str, token: str, timeout: float = 90) -> None:
    """Until the page's kernel is idle with a live websocket (JupyterLab may replace the first
    kernel it starts; a command sent before that is lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = json.load(urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5))
        if len(kernels) == 1 and kernels[0]["connections"] > 0 and kernels[0]["execution_state"] == "idle":
            time.sleep(1.0)  # the page's session has adopted it
            return
        time.sleep(0.5)
    raise TimeoutError(f"no connected idle kernel after {timeout} s: {kernels}")


def _run_all_cells(page, attempts: int = 3) -> None:
    """Run → Run All Cells, until a cell has started (a command given while the kernel is
    still being set up is dropped; running the cells again is harmless)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = "() => [...document.querySelectorAll('.jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))"
    for _ in range(attempts):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(started, timeout=30_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"no cell started after {attempts} × Run All Cells")


def _drive(page, base: str, token: str) -> None:
    """Open the notebook, run all cells, check the explorer, move the rotation slider."""
    page.goto(f"{base}/lab/tree/explore.ipynb?token={token}")
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    _wait_for_connected_kernel(base, token)
    page.get_by_text(re.compile(r"\| Idle$")).wait_for(timeout=90_000)  # the page's kernel status
    _run_all_cells(page)

    summary = page.locator(".widget-html-content", has_text="equivariance error")
    summary.wait_for(timeout=120_000)
    before_text, before_src = summary.inner_text(), page.locator(".widget-image").first.get_attribute("src")
    assert "rotation 0°" in before_text and before_src

    readout = page.locator(".widget-slider", has_text="rotation").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("90")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.widget-html-content')].some(e => e.innerText.includes('rotation 90°'))",
        timeout=60_000,
    )
    page.wait_for_function("src => document.querySelector('.widget-image').src !== src", arg=before_src, timeout=30_000)
    assert summary.inner_text() != before_text

    # the last cell (the equivariance table) has finished, and no cell shows an error
    # (JupyterLab may skip rendering cells outside the viewport: attached, not necessarily visible)
    page.get_by_text("C4 DP: gradcam follows").first.wait_for(state="attached", timeout=120_000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, errors.first.inner_text()
    page.locator(".widget-image").first.scroll_into_view_if_needed()


def test_explorer_in_jupyterlab_reacts_to_the_rotation_slider(tiny_runs, jupyterlab, tmp_path):
    import papermill as pm
    from playwright.sync_api import sync_playwright

    from dpecnn.suite import NOTEBOOKS

    executable = _chromium()
    runs, quick = tiny_runs
    pm.execute_notebook(
        str(NOTEBOOKS / "00_explore.ipynb"),
        str(tmp_path / "explore.ipynb"),
        prepare_only=True,
        parameters={"runs": runs, "quick_train": quick, "n_images": 2},
    )
    base, token = jupyterlab
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            try:
                _drive(page, base, token)
            except Exception:
                print(
                    "cells at failure:",
                    page.locator(".jp-Cell").evaluate_all("cs => cs.map(c => c.innerText.slice(-300))"),
                )
                page.screenshot(path=str(SCREENSHOT.with_name("explorer-failure.png")), full_page=True)
                raise
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


# At 1280 px: no table or code block scrolls sideways, no TeX is left raw, and a figure is shown at
# least this share of its pixels: saved at 300 dpi, its smallest text (8 pt) is then ≥ 9 screen px.
DOCS_WIDTH, FIGURE_SCALE = 1280, 9 / (8 * 300 / 72)
LAYOUT_PROBE = """() => {
  const prose = () => {  // the page's text outside code, where a formula in TeX syntax would be left raw
    const copy = document.querySelector('.md-content').cloneNode(true);
    copy.querySelectorAll('code, pre').forEach(c => c.remove());
    return copy.textContent;
  };
  const wide = el => el.scrollWidth > el.clientWidth + 1;
  const name = el => (el.innerText || '').trim().slice(0, 60);
  const boxes = [...document.querySelectorAll('.md-content .md-typeset__scrollwrap, .md-content pre > code')];
  return {
    overflowing: boxes.filter(wide).map(name),
    raw_tex: (prose().match(/[\\^_]\\{[^}]*\\}/g) || []),
    figures: [...document.querySelectorAll('.md-content img')].map(
      im => ({src: im.getAttribute('src'), scale: im.naturalWidth ? im.clientWidth / im.naturalWidth : 0})),
  };
}"""


def test_the_docs_read_at_1280_px(tmp_path):
    """Every page of the built site at 1280 × 900 (the screenshots stay in outputs/browser/docs/)."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    site, shots = tmp_path / "site", SCREENSHOT.parent / "docs"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(site)],
        cwd=SCREENSHOT.parents[2],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-2000:]
    pages = sorted(p for p in site.rglob("index.html") if "assets" not in p.parts and p.parent != site / "search")
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": DOCS_WIDTH, "height": 900})
            for html in pages:
                name = html.parent.relative_to(site).as_posix() or "index"
                page.goto(html.as_uri())
                page.wait_for_load_state("load")
                found = page.evaluate(LAYOUT_PROBE)
                page.screenshot(path=str(shots / f"{name.replace('/', '-')}.png"), full_page=True)
                problems += [f"{name}: scrolls sideways: {text!r}" for text in found["overflowing"]]
                problems += [f"{name}: raw TeX {tex!r}" for tex in found["raw_tex"]]
                problems += [
                    f"{name}: {f['src']} shown at {f['scale']:.2f} of its pixels (text unreadable below "
                    f"{FIGURE_SCALE:.2f})"
                    for f in found["figures"]
                    if f["scale"] < FIGURE_SCALE
                ]
        finally:
            browser.close()
    assert len(pages) >= 12 and not problems, "\n".join(problems)
