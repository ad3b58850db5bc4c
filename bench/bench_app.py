"""Time to first render of the Audit page, in a real browser, after the server is up.

    python bench/bench_app.py [--models DIR] [--repeats 3]

Starts `streamlit run app.py` on a free port (runs folder: the repository's `models/`, or fake
runs when it is empty), waits for `/_stcore/health`, then opens `/audit` in headless Chromium and
times navigation → script finished with both charts drawn. The first visit is cold (the server
process's first script run: imports, reading the run, the audit); later visits, each a new
browser session, are warm (cached run, audit and curve). Writes the figures to `bench/RESULTS.md` between
`<!-- bench_app:start -->` and `<!-- bench_app:end -->` (other sections are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, machine, publish  # noqa: E402

SECTION = "bench_app"
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
TARGET_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs_folder(arg: str | None, tmp: Path) -> tuple[Path, str]:
    if arg:
        return Path(arg), f"`{arg}`"
    shipped = REPO / "models"
    if shipped.is_dir() and any((p / "config.json").exists() for p in shipped.iterdir() if p.is_dir()):
        return shipped, "the shipped runs in `models/`"
    from tests._app_runs import make_fake_models

    root = tmp / "models"
    make_fake_models(root)
    return root, "fake runs (models/ was empty)"


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return time.perf_counter() - t0
        time.sleep(0.1)
    raise RuntimeError("server not healthy")


def _render_audit(browser, url: str) -> float:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(f"{url}/audit", wait_until="domcontentloaded")
        page.wait_for_function(
            "() => document.querySelectorAll(\"[data-testid='stPlotlyChart'] .main-svg\").length >= 2",
            timeout=120_000, polling=50)
        page.wait_for_selector(READY, timeout=120_000)
        elapsed = time.perf_counter() - t0
        if page.locator("[data-testid='stException']").count():
            raise RuntimeError("the Audit page shows an exception")
        return elapsed
    finally:
        ctx.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", help="runs folder (default: models/, or fake runs if it is empty)")
    ap.add_argument("--repeats", type=int, default=3, help="warm visits after the cold one")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    where = machine()  # load average and date as the run starts
    tmp = Path(tempfile.mkdtemp(prefix="fairviz-bench-app-"))
    models, models_text = _runs_folder(args.models, tmp)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FAIRVIZ_MODELS": str(models), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(tmp / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        startup = _wait_health(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            try:
                cold = _render_audit(browser, url)
                warm = [_render_audit(browser, url) for _ in range(max(0, args.repeats))]
            finally:
                browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    warm_text = (f"{statistics.median(warm):.2f} s (median of {len(warm)}; min {min(warm):.2f}, max {max(warm):.2f})"
                 if warm else "not measured")
    verdict = "meets" if cold < TARGET_S else "misses"
    body = f"""## App: time to first render of the Audit page

`python bench/bench_app.py` — {where}, {platform.system()} (load and date as the run started); Streamlit
server started with {models_text}, headless Chromium. Timed from navigation to `/audit` until the script has finished
and both charts (DP(τ), score distributions) are drawn, after `/_stcore/health` answered
(server start-up: {startup:.1f} s, not counted). The machine is shared; figures on an idle machine
are lower.

| visit | time to first render |
|---|---|
| first visit (cold: the server's first script run imports the app's modules, reads the run and audits it) | **{cold:.2f} s** |
| later visits, a new browser session each (run, audit and curve cached) | {warm_text} |

Target: under {TARGET_S:g} s after the server is up — the first visit {verdict} it.
"""
    publish(SECTION, body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
