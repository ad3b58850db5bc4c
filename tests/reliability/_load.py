"""A bounded load test of the Streamlit app, shared by tests/reliability/test_server_load.py and
bench/bench_load.py.

- `streamlit_server(...)`: ``streamlit run app.py`` on 127.0.0.1 and a free port (the repo's
  `.streamlit/config.toml` applies: upload limit, XSRF protection), in its own process group,
  killed in every case.
- `run_load(...)`: for ``duration_s`` seconds, ``http_sessions`` threads each loop over the page
  (``/``), ``/_stcore/health`` and ``/_stcore/host-config`` (no websocket: no script runs), one
  of them also tries an upload without an XSRF token (must be refused); ``browser_sessions``
  headless Chromium pages (Playwright) open the Audit page, upload a CSV and wait for its charts
  (real sessions: the script runs and audits), again and again. A probe times
  ``/_stcore/health`` every 0.25 s and a sampler reads the server's RSS every 0.5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.reliability._helpers import REPO, free_port, tree_rss_kb

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


@dataclass
class Server:
    url: str
    pid: int
    log: Path


@contextlib.contextmanager
def streamlit_server(models: Path, tmp: Path, *, start_timeout: float = 120.0):
    port = free_port()
    env = {**os.environ, "FAIRVIZ_MODELS": str(models), "FAIRVIZ_CACHE": str(tmp / "cache"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    log_path = tmp / "streamlit.log"
    log = open(log_path, "w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            if time.time() > deadline:
                raise RuntimeError(f"streamlit was not healthy after {start_timeout:.0f} s")
            time.sleep(0.3)
        yield Server(url=url, pid=proc.pid, log=log_path)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(15)
        log.close()


@dataclass
class LoadReport:
    http_sessions: int
    browser_sessions: int
    duration_s: float
    requests: int = 0
    http_errors: int = 0  # status >= 500, refused connections, timeouts
    status_counts: dict = field(default_factory=dict)
    xsrf_upload_status: list = field(default_factory=list)  # statuses of uploads sent without a token
    health_latencies_s: list = field(default_factory=list)
    health_failures: int = 0
    rss_mb: list = field(default_factory=list)  # samples during the load
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    audits: int = 0  # browser uploads audited (charts drawn)
    audit_seconds: list = field(default_factory=list)
    rss_at_audits_mb: list = field(default_factory=list)  # server RSS as each browser audit completes
    browser_failures: list = field(default_factory=list)
    server_pid: int = 0

    @property
    def health_p50(self) -> float:
        return statistics.median(self.health_latencies_s) if self.health_latencies_s else float("nan")

    @property
    def health_p95(self) -> float:
        xs = sorted(self.health_latencies_s)
        return xs[min(len(xs) - 1, int(0.95 * len(xs)))] if xs else float("nan")

    @property
    def health_max(self) -> float:
        return max(self.health_latencies_s, default=float("nan"))

    @property
    def rss_peak_mb(self) -> float:
        return max(self.rss_mb, default=self.rss_before_mb)

    def summary(self) -> dict:
        d = asdict(self)
        for k in ("health_latencies_s", "rss_mb", "audit_seconds", "rss_at_audits_mb"):
            d.pop(k)
        d.update(health_p50=self.health_p50, health_p95=self.health_p95, health_max=self.health_max,
                 health_checks=len(self.health_latencies_s), rss_peak_mb=self.rss_peak_mb,
                 audit_median_s=statistics.median(self.audit_seconds) if self.audit_seconds else None)
        return d


def _get(url: str, timeout: float = 15.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return -1  # refused / timed out


def _put_without_xsrf(url: str) -> int:
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\nscore,group\n0.1,a\n\r\n--b--\r\n"
    req = urllib.request.Request(f"{url}/_stcore/upload_file/fake-session/fake-file", data=body, method="PUT",
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return -1


def _http_session(url: str, deadline: float, report: LoadReport, lock: threading.Lock, hostile: bool) -> None:
    paths = ["/", "/_stcore/health", "/_stcore/host-config", "/audit"]
    i = 0
    while time.time() < deadline:
        status = _get(url + paths[i % len(paths)])
        with lock:
            report.requests += 1
            report.status_counts[status] = report.status_counts.get(status, 0) + 1
            if status < 0 or status >= 500:
                report.http_errors += 1
        if hostile and i % 8 == 0:
            st = _put_without_xsrf(url)
            with lock:
                report.xsrf_upload_status.append(st)
        i += 1


def _health_probe(url: str, deadline: float, report: LoadReport, bound_s: float) -> None:
    while time.time() < deadline:
        t0 = time.perf_counter()
        status = _get(url + "/_stcore/health", timeout=bound_s * 3)
        dt = time.perf_counter() - t0
        if status == 200:
            report.health_latencies_s.append(dt)
        else:
            report.health_failures += 1
        time.sleep(max(0.0, 0.25 - dt))


def _rss_sampler(pid: int, stop: threading.Event, report: LoadReport) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            report.rss_mb.append(tree_rss_kb(pid) / 1024)
        stop.wait(0.5)


async def _browser_sessions(url: str, n: int, deadline: float, upload: Path, report: LoadReport,
                            lock: threading.Lock) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(_one_browser(browser, url, deadline, upload, report, lock, k) for k in range(n)))
        finally:
            await browser.close()


async def _one_browser(browser, url, deadline, upload, report, lock, k) -> None:
    ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await ctx.new_page()
    page.set_default_timeout(90_000)
    try:
        while time.time() < deadline:
            t0 = time.perf_counter()
            await page.goto(f"{url}/audit", wait_until="domcontentloaded")
            await page.wait_for_selector(READY)
            await page.get_by_text("upload any model's scores").click()
            await page.wait_for_selector("[data-testid='stFileUploaderDropzoneInput']", state="attached")
            await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
            await page.wait_for_function(f"() => document.body.innerText.includes('{upload.name}')")
            await page.wait_for_function(
                "() => document.querySelectorAll(\"[data-testid='stPlotlyChart'] .main-svg\").length >= 3")
            await page.wait_for_selector(READY)
            errors = await page.locator("[data-testid='stException']").count()
            with lock:
                if errors:
                    report.browser_failures.append(f"session {k}: exception shown on the page")
                else:
                    report.audits += 1
                    report.audit_seconds.append(time.perf_counter() - t0)
                    with contextlib.suppress(OSError, RuntimeError):
                        report.rss_at_audits_mb.append(tree_rss_kb(report.server_pid) / 1024)
    except Exception as err:  # noqa: BLE001 - recorded, the test asserts on it
        with lock:
            report.browser_failures.append(f"session {k}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    finally:
        await ctx.close()


def run_load(server: Server, *, http_sessions: int, browser_sessions: int, duration_s: float, upload: Path,
             health_bound_s: float = 5.0) -> LoadReport:
    """Drive the server for ``duration_s`` seconds (browser sessions finish their current audit)."""
    report = LoadReport(http_sessions=http_sessions, browser_sessions=browser_sessions, duration_s=duration_s,
                        server_pid=server.pid)
    lock = threading.Lock()
    _get(server.url + "/")  # warm the static page
    report.rss_before_mb = tree_rss_kb(server.pid) / 1024
    deadline = time.time() + duration_s
    workers = [threading.Thread(target=_http_session, args=(server.url, deadline, report, lock, i == 0), daemon=True)
               for i in range(http_sessions)]
    workers.append(threading.Thread(target=_health_probe, args=(server.url, deadline, report, health_bound_s),
                                    daemon=True))
    if browser_sessions:
        workers.append(threading.Thread(
            target=lambda: asyncio.run(_browser_sessions(server.url, browser_sessions, deadline, upload, report, lock)),
            daemon=True))
    stop = threading.Event()
    sampler = threading.Thread(target=_rss_sampler, args=(server.pid, stop, report), daemon=True)
    sampler.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join(duration_s + 180)
    stop.set()
    sampler.join(10)
    report.rss_after_mb = tree_rss_kb(server.pid) / 1024
    return report


def write_upload_csv(path: Path, n: int = 20_000, seed: int = 0) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = rng.choice(["F", "M"], n)
    label = rng.random(n)
    score = np.clip(0.3 + 0.4 * label + 0.12 * (g == "M") + rng.normal(0, 0.05, n), 0, 1)
    pd.DataFrame({"score": score.round(5), "sex": g, "label": label.round(5)}).to_csv(path, index=False)
    return path


def upload_and_wait_for_text(server: Server, upload: Path, text: str, timeout_s: float = 60.0) -> dict:
    """One headless Chromium session uploads ``upload`` on the Audit page and waits until
    ``text`` is on the page, while the server's RSS is sampled every 0.1 s. Returns
    ``{"seconds": upload → text, "rss_before_mb", "rss_peak_mb", "rss_after_mb", "exceptions"}``."""
    from playwright.sync_api import sync_playwright

    report = LoadReport(http_sessions=0, browser_sessions=1, duration_s=0.0, server_pid=server.pid)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                report.rss_mb.append(tree_rss_kb(server.pid) / 1024)
            stop.wait(0.1)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(f"{server.url}/audit", wait_until="domcontentloaded")
            page.wait_for_selector(READY)
            page.get_by_text("upload any model's scores").click()
            page.wait_for_selector("[data-testid='stFileUploaderDropzoneInput']", state="attached")
            page.wait_for_selector(READY)
            report.rss_before_mb = tree_rss_kb(server.pid) / 1024
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
            page.wait_for_function("(t) => document.body.innerText.includes(t)", arg=text)
            seconds = time.perf_counter() - t0
            page.wait_for_selector(READY)
            exceptions = page.locator("[data-testid='stException']").count()
        finally:
            stop.set()
            browser.close()
    time.sleep(1.0)
    return {"seconds": seconds, "rss_before_mb": report.rss_before_mb, "rss_peak_mb": report.rss_peak_mb,
            "rss_after_mb": tree_rss_kb(server.pid) / 1024, "exceptions": exceptions}
