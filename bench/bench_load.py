"""Load test of the Streamlit app: 50 concurrent sessions on localhost for a bounded time.

    python bench/bench_load.py [--sessions 50] [--browsers 5] [--seconds 40] [--no-write]

Starts ``streamlit run app.py`` on 127.0.0.1 (fake runs in a temporary models folder; the repo's
`.streamlit/config.toml` applies), then for ``--seconds`` seconds runs ``--sessions`` sessions at
once: ``--browsers`` of them are headless Chromium pages that open the Audit page, upload a
20 000-row CSV and wait for its charts (again and again), the rest loop over the page, the health
and host-config endpoints over HTTP (one also sends uploads without an XSRF token, which must be
refused). `/_stcore/health` is timed every 0.25 s and the server's RSS (process tree) sampled
every 0.5 s. The engine is `tests/reliability/_load.py` (the test suite runs a 20-session version).

Writes the figures to `bench/RESULTS.md` between ``<!-- bench_load:start -->`` and
``<!-- bench_load:end -->`` (atomically; other sections are kept), with the machine and date.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, publish  # noqa: E402

SECTION = "bench_load"


def _spread(xs: list, unit: str) -> str:
    if not xs:
        return "—"
    xs = sorted(xs)
    return f"median {xs[len(xs) // 2]:.1f} {unit}, fastest {xs[0]:.1f} {unit}, slowest {xs[-1]:.1f} {unit}"


def _firsts(xs: list) -> str:
    return " / ".join(f"{xs[i]:.0f}" for i in (0, len(xs) // 2, -1)) if xs else "—"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=50, help="concurrent sessions in all (default 50)")
    ap.add_argument("--browsers", type=int, default=5, help="of which headless Chromium audits (default 5)")
    ap.add_argument("--seconds", type=float, default=120.0, help="how long the load lasts (default 120)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args(argv)
    if not 0 <= args.browsers <= args.sessions:
        ap.error("--browsers must be between 0 and --sessions")

    from tests._app_runs import make_fake_models
    from tests.reliability._load import run_load, streamlit_server, write_upload_csv

    tmp = Path(tempfile.mkdtemp(prefix="fairviz-bench-load-"))
    make_fake_models(tmp / "models")
    upload = write_upload_csv(tmp / "vendor_scores.csv")
    where = machine()  # load average and date before the run
    t0 = time.perf_counter()
    with streamlit_server(tmp / "models", tmp) as server:
        started = time.perf_counter() - t0
        report = run_load(server, http_sessions=args.sessions - args.browsers, browser_sessions=args.browsers,
                          duration_s=args.seconds, upload=upload)
    s = report.summary()
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(report.status_counts.items()))
    xsrf = sorted(set(report.xsrf_upload_status))
    audit_times = sorted(report.audit_seconds)
    ok = (report.http_errors == 0 and report.health_failures == 0 and not report.browser_failures
          and xsrf == [403])
    body = f"""## Streamlit server under load (`bench/bench_load.py`)

{args.sessions} concurrent sessions on 127.0.0.1 for {args.seconds:g} s: {args.browsers} headless Chromium pages each
opening the Audit page, uploading a 20,000-row CSV and waiting for its charts (repeatedly), and
{args.sessions - args.browsers} HTTP sessions looping over the page, `/_stcore/health`, `/_stcore/host-config`
and `/audit` (no websocket, so no script run each). `/_stcore/health` timed every 0.25 s; server
RSS (process tree) sampled every 0.5 s. Server ready {started:.1f} s after launch.

| figure | value |
|---|---|
| HTTP requests served | {report.requests:,} ({report.requests / args.seconds:.0f}/s); status codes {codes} |
| errors (5xx, refused, timed out) | {report.http_errors} |
| `/_stcore/health` latency p50 / p95 / max | {s['health_p50'] * 1000:.0f} / {s['health_p95'] * 1000:.0f} / {s['health_max'] * 1000:.0f} ms over {s['health_checks']} checks, {report.health_failures} failed |
| uploads without an XSRF token | {len(report.xsrf_upload_status)} sent, answered {xsrf} |
| browser audits completed (page open → upload → charts drawn) | {report.audits}: {_spread(audit_times, 's')}; failures: {len(report.browser_failures)} |
| server RSS before / peak / after | {report.rss_before_mb:.0f} / {report.rss_peak_mb:.0f} / {report.rss_after_mb:.0f} MB |
| server RSS as the first / middle / last audit completed | {_firsts(report.rss_at_audits_mb)} MB |
| verdict | {'responsive and bounded' if ok else 'PROBLEMS: ' + '; '.join(report.browser_failures[:3])} |

The RSS step from ~70 MB comes with the first script run (the libraries the pages import, the
app's bounded caches `st.cache_resource(max_entries=…)` filled); the row above shows what later
audits add.

Machine: {where} (load and date before the run).
"""
    publish(SECTION, body, write=not args.no_write)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
