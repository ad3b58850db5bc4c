"""Memory bombs: small files that hold 10⁸ rows, given to the CLI and to the running app server.

    python bench/bench_bombs.py [--no-write]

Makes a Parquet file and a gzip CSV of 10⁸ rows (about 1 MB each; `tests/reliability/_bombs.py`)
and times how long each entry point takes to refuse them, with its peak memory:

- ``python -m fairviz audit FILE --score score --group group`` in a fresh process (peak RSS of
  that process from the kernel);
- the app: ``streamlit run app.py`` on 127.0.0.1, a headless Chromium session uploads the
  Parquet file on the Audit page (the app takes .csv and .parquet uploads) and waits for the
  refusal; the server's RSS (process tree) is sampled every 0.1 s.

Writes the figures to `bench/RESULTS.md` between ``<!-- bench_bombs:start -->`` and
``<!-- bench_bombs:end -->`` with the machine and date.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, machine, publish  # noqa: E402

SECTION = "bench_bombs"


def _cli(path: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS MB, stderr) of the CLI audit of ``path`` in a fresh process."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "fairviz", "audit", str(path), "--score", "score", "--group", "group"],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    seconds = time.perf_counter() - t0
    return p.returncode, seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.stderr.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args(argv)

    from tests._app_runs import make_fake_models
    from tests.reliability._bombs import BOMB_ROWS, csv_gz_bomb, parquet_bomb
    from tests.reliability._load import streamlit_server, upload_and_wait_for_text

    tmp = Path(tempfile.mkdtemp(prefix="fairviz-bench-bombs-"))
    where = machine()
    files = {"Parquet": parquet_bomb(tmp / "scores.parquet"), "gzip CSV": csv_gz_bomb(tmp / "scores.csv.gz")}
    rows, ok = [], True
    for kind, path in files.items():  # one child at a time: RUSAGE_CHILDREN's peak is the largest so far
        rc, secs, peak, err = _cli(path)
        ok &= rc == 2 and "more than" in err and secs < 5
        rows.append(f"| CLI `audit`, {kind} ({path.stat().st_size / 1e6:.2f} MB) | exit {rc}, {secs:.2f} s "
                    f"(process start included) | ≤ {peak:.0f} MB (peak of the CLI processes so far) |")
    make_fake_models(tmp / "models")
    with streamlit_server(tmp / "models", tmp) as server:
        r = upload_and_wait_for_text(server, files["Parquet"], "more than 2,000,000 rows")
    ok &= r["exceptions"] == 0 and r["seconds"] < 5 and r["rss_peak_mb"] < 1536
    rows.append(f"| app server, Parquet upload on the Audit page | refused on the page {r['seconds']:.2f} s after the "
                f"upload started, {r['exceptions']} exceptions | server {r['rss_before_mb']:.0f} → peak "
                f"{r['rss_peak_mb']:.0f} → after {r['rss_after_mb']:.0f} MB |")
    sample = err.splitlines()[0] if err else ""
    body = f"""## Memory bombs (`bench/bench_bombs.py`)

Files of {BOMB_ROWS:,} rows (score, group) that are about 1 MB on disk. Before the size limits
(as measured when the problem was reported) the app server went from 1.0 GB to over 8 GB on such
a file and the CLI ended in a MemoryError traceback. Now the row count is read first (Parquet footer; gzip CSV streamed, lines counted up
to the cap) and the file is refused with a message that says how to audit bigger data.

| entry point | result | memory |
|---|---|---|
{chr(10).join(rows)}

CLI message:

> {sample}

Target: refused within 5 s, server memory under 1.5 GB: {'met' if ok else 'NOT MET'}.

Machine: {where} (load and date before the run).
"""
    publish(SECTION, body, write=not args.no_write)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
