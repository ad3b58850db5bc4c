"""The Streamlit server under a bounded load: 20 concurrent sessions for 20 s on 127.0.0.1.

17 HTTP sessions loop over the page, the health and host-config endpoints (no websocket, so no
script runs; one also tries uploads without an XSRF token, which must be refused with 403) and 3
headless Chromium sessions open the Audit page, upload a 20 000-row CSV and wait for its charts.
Meanwhile `/_stcore/health` is timed every 0.25 s and the server's RSS sampled every 0.5 s. It
must answer every health check within HEALTH_BOUND_S, serve no 5xx, finish the browser audits
without an exception on the page, and stay under RSS_BOUND_MB. The 50-session version with the
figures is bench/bench_load.py (bench/RESULTS.md). Without Playwright/Chromium the 20 sessions
are all HTTP.

Also: `.streamlit/config.toml` keeps an upload size limit and XSRF protection on.
"""

from __future__ import annotations

import tomllib
import urllib.request
from pathlib import Path

from tests.reliability._helpers import REPO
from tests.reliability._load import CHROMIUM, run_load, streamlit_server, write_upload_csv

SESSIONS = 20
BROWSERS = 3
DURATION_S = 20.0
HEALTH_BOUND_S = 5.0  # generous: the box is shared by several developers (2 cores)
RSS_BOUND_MB = 2048  # measured peak ~0.9 GB (torch, pandas and the app's caches loaded)


def test_streamlit_config_keeps_upload_limit_and_xsrf():
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = cfg["server"]
    assert isinstance(server.get("maxUploadSize"), int) and 1 <= server["maxUploadSize"] <= 1024
    assert server.get("enableXsrfProtection") is True


def _browsers_available() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def test_server_stays_responsive_and_bounded_under_load(tmp_path):
    from tests._app_runs import make_fake_models

    make_fake_models(tmp_path / "models")
    upload = write_upload_csv(tmp_path / "vendor_scores.csv")
    browsers = BROWSERS if _browsers_available() else 0
    with streamlit_server(tmp_path / "models", tmp_path) as server:
        report = run_load(server, http_sessions=SESSIONS - browsers, browser_sessions=browsers,
                          duration_s=DURATION_S, upload=upload, health_bound_s=HEALTH_BOUND_S)
        with urllib.request.urlopen(server.url + "/_stcore/health", timeout=10) as r:  # still alive
            assert r.read().decode().strip() == "ok"
    s = report.summary()
    print("\nload:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()
                      if k not in ("xsrf_upload_status", "status_counts")})
    assert report.requests > 100 and report.http_errors == 0, s["status_counts"]
    assert report.health_failures == 0 and len(report.health_latencies_s) >= 20
    assert report.health_max < HEALTH_BOUND_S, report.health_latencies_s
    assert report.xsrf_upload_status and set(report.xsrf_upload_status) == {403}
    assert report.rss_peak_mb < RSS_BOUND_MB and report.rss_after_mb < RSS_BOUND_MB
    if browsers:
        assert report.browser_failures == [] and report.audits >= browsers
