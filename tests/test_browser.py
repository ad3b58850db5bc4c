"""The real app in a real browser: `streamlit run app.py` + headless system Chromium (Playwright).

Opens every page, moves τ, uploads a good and a bad CSV (and one over the upload limit), waits
for the charts, asserts that no exception is shown, and saves a screenshot of each page to
`$FAIRVIZ_SCREENSHOTS/<page>.png` (default: a temporary folder, so a test run never touches the
working tree; `make screenshots` points it at `docs/screenshots/`, which the README shows).

The runs folder is a temporary copy of the repository's `models/` when it holds runs (so the
screenshots show the shipped runs and nothing is written into the repository), else fake runs.
The server is started in its own process group and killed in every case.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._app_runs import make_fake_models

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("FAIRVIZ_SCREENSHOTS") or tempfile.mkdtemp(prefix="fairviz-screenshots-"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
UPLOAD_LIMIT_MB = 5  # the test server's limit (the shipped config allows 200 MB)
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
PAGES = {  # url path -> screenshot name
    "": "home",
    "train": "train",
    "audit": "audit",
    "monitor": "monitor",
    "compare": "compare",
    "tradeoff": "tradeoff",
    "representation": "representation",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models_for_test(tmp: Path) -> Path:
    root = tmp / "models"
    shipped = REPO / "models"
    has_runs = shipped.is_dir() and any((p / "config.json").exists() for p in shipped.iterdir() if p.is_dir())
    if has_runs:
        shutil.copytree(shipped, root, ignore=shutil.ignore_patterns(".fairviz-tmp-*"))
    else:
        make_fake_models(root)
    return root


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make apt)")
    tmp = tmp_path_factory.mktemp("browser")
    models = _models_for_test(tmp)
    port = _free_port()
    env = {**os.environ, "FAIRVIZ_MODELS": str(models), "FAIRVIZ_CACHE": str(tmp / "cache"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(tmp / "streamlit.log", "w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.showErrorDetails", "full",
           "--server.maxUploadSize", str(UPLOAD_LIMIT_MB)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    atexit.register(_stop, proc)  # even if pytest itself is interrupted
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{(tmp / 'streamlit.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("streamlit did not become healthy in 90 s")
            time.sleep(0.3)
        yield {"url": url, "models": models, "tmp": tmp, "log": tmp / "streamlit.log"}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional: only the browser tests need it

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    pg = ctx.new_page()
    try:
        yield pg
    finally:
        ctx.close()


def wait_ready(pg, timeout: float = 60_000) -> None:
    """Until the script has run (and is not running again)."""
    pg.wait_for_selector(READY, timeout=timeout)
    pg.wait_for_timeout(400)  # a rerun triggered by the last message may start now
    pg.wait_for_selector(READY, timeout=timeout)


def wait_charts(pg, n: int, timeout: float = 60_000) -> None:
    pg.wait_for_function(
        "n => document.querySelectorAll(\"[data-testid='stPlotlyChart'] .main-svg\").length >= n", arg=n,
        timeout=timeout)


def assert_no_exception(pg) -> None:
    assert pg.locator("[data-testid='stException']").count() == 0, pg.locator("[data-testid='stException']").first.inner_text()


def screenshot(pg, name: str, max_height: int = 4400) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the viewport is made as tall
    as that section's content for the shot (charts re-layout), then restored."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = pg.viewport_size
    height = pg.evaluate(
        "() => { const m = document.querySelector(\"[data-testid='stMain']\"); return m ? m.scrollHeight : 0; }")
    if height > size["height"]:
        pg.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, max_height)})
    pg.wait_for_timeout(900)  # let plotly re-layout and finish its transitions
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    pg.set_viewport_size(size)


def goto(pg, server, path: str) -> None:
    pg.goto(f"{server['url']}/{path}", wait_until="domcontentloaded")
    wait_ready(pg)


def test_direct_link_on_a_fresh_server_uses_the_app_navigation(server, page):
    """The server's very first request is a bookmarked page: it must still get app.py's menu
    (not Streamlit's legacy list of every file in pages/) and its wide layout."""
    goto(page, server, "audit")
    wait_charts(page, 2)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    for title in ("Home", "Train", "Audit", "Compare", "Trade-off", "Representation"):
        assert title in nav
    assert "common" not in nav and "app" not in nav.split()
    assert_no_exception(page)


def test_every_page_renders_without_exceptions(server, page):
    expected_charts = {"": 0, "train": 0, "audit": 2, "monitor": 2, "compare": 2, "tradeoff": 2, "representation": 2}
    for path, name in PAGES.items():
        goto(page, server, path)
        if expected_charts[path]:
            wait_charts(page, expected_charts[path])
        if path == "":
            page.wait_for_selector("video", timeout=30_000)
        assert_no_exception(page)
        if path != "audit":  # the audit screenshot is taken after moving τ
            screenshot(page, name)


def test_navigation_links_switch_pages(server, page):
    goto(page, server, "")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Compare").click()
    wait_ready(page)
    wait_charts(page, 2)
    assert "/compare" in page.url
    assert_no_exception(page)


def test_audit_move_tau(server, page):
    goto(page, server, "audit")
    wait_charts(page, 2)
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(2):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.body.innerText.includes('At τ = 0.48')", timeout=30_000)
    wait_ready(page)
    assert_no_exception(page)
    assert page.get_by_text("gap at τ = 0.48").count() >= 1  # the legend of the redrawn chart
    screenshot(page, "audit")


def _upload(page, path: Path) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))


def test_audit_upload_good_bad_and_too_large(server, page):
    tmp = server["tmp"]
    rng = np.random.default_rng(0)
    n = 20_000
    g = rng.choice(["F", "M"], n)
    label = rng.random(n)
    score = np.clip(0.3 + 0.4 * label + 0.12 * (g == "M") + rng.normal(0, 0.05, n), 0, 1)
    good = tmp / "vendor_scores.csv"
    pd.DataFrame({"score": score, "sex": g, "label": label}).to_csv(good, index=False)
    bad = tmp / "bad_scores.csv"
    bad.write_text("score,sex\n0.4,F\n1.8,M\n0.2,F\n")

    goto(page, server, "audit")
    page.get_by_text("upload any model's scores").click()
    wait_ready(page)
    _upload(page, good)
    page.wait_for_function("() => document.body.innerText.includes('vendor_scores.csv')", timeout=30_000)
    wait_ready(page)
    wait_charts(page, 3)
    assert_no_exception(page)
    assert page.locator("[data-testid='stMetric']").count() >= 5
    screenshot(page, "audit-upload")
    # the self-contained HTML report, built on click
    with page.expect_download(timeout=180_000) as dl:
        page.get_by_role("button", name="Audit report (HTML)").click()
    report = tmp / "report.html"
    dl.value.save_as(report)
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "vendor_scores.csv" in html
    assert "<script src=" not in html.lower()  # plotly inlined: works offline

    _upload(page, bad)
    page.wait_for_selector("[data-testid='stAlertContentError']", timeout=30_000)
    wait_ready(page)
    assert "outside [0, 1]" in page.locator("[data-testid='stAlertContentError']").first.inner_text()
    assert_no_exception(page)

    big = tmp / "too_big.csv"
    with open(big, "w") as fh:
        fh.write("score,group\n")
        row = "0.5,a\n" * 100_000
        while fh.tell() < (UPLOAD_LIMIT_MB + 1) * 1024 * 1024:
            fh.write(row)
    _upload(page, big)
    page.wait_for_function(
        f"() => document.body.innerText.includes('{UPLOAD_LIMIT_MB}.0MB or smaller')", timeout=30_000)
    assert_no_exception(page)


def test_train_live_progress_while_browsing(server, page):
    """Training runs as a job: progress updates live, other pages stay usable meanwhile, and the
    finished run is saved and becomes the current run."""
    goto(page, server, "train")
    page.get_by_text("Advanced").click()
    small = page.get_by_label("Synthetic candidates (0 = default dataset)")
    small.fill("200")
    small.press("Enter")
    wait_ready(page)
    epochs = page.get_by_label("Epochs")
    epochs.fill("3")
    epochs.press("Enter")
    wait_ready(page)
    name = page.get_by_label("Run name (optional)")
    name.fill("browser-test-run")
    name.press("Enter")
    wait_ready(page)
    page.locator("[data-testid='stBaseButton-primary']", has_text="Train").click()
    page.wait_for_function("() => document.body.innerText.includes('Cancel training')", timeout=30_000)
    assert_no_exception(page)
    # while it trains, another page works (same browser session, via the sidebar)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Compare").click()
    wait_ready(page)
    wait_charts(page, 2)
    assert_no_exception(page)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Train").click()
    wait_ready(page)
    assert page.get_by_label("Epochs").input_value() == "3"  # the form kept its values
    page.wait_for_function(
        "() => /epoch [1-9]/.test(document.body.innerText) || document.body.innerText.includes('Saved')",
        timeout=180_000)
    if "Saved" not in page.inner_text("body"):
        screenshot(page, "train-progress")
    page.wait_for_function("() => document.body.innerText.includes('Saved')", timeout=240_000)
    wait_ready(page)
    assert_no_exception(page)
    assert (server["models"] / "browser-test-run" / "config.json").exists()
    # the new run became the current run
    page.wait_for_function(
        "() => { const i = document.querySelector(\"[data-testid='stSidebar'] [data-testid='stSelectbox'] "
        "input[role='combobox']\"); return i && i.value === 'browser-test-run'; }", timeout=30_000)
