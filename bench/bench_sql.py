"""Benchmark: the SQL audit (`python -m fairviz audit 'DIR/*.parquet' --engine duckdb`) on 10⁷ and
10⁸ rows read from Parquet, with DuckDB's memory bounded.

    nice -n 10 python bench/bench_sql.py                    # 10^7 and 10^8 rows; updates RESULTS.md
    python bench/bench_sql.py --rows 1000000 --no-write     # a quick look

The Parquet files are generated in chunks of ``--chunk`` rows (one file each, never the whole
table in memory) under ``--scratch`` (default: a folder in the system temp dir; deleted at the end
unless ``--keep``): a continuous score (logistic of a normal; distinct values, the worst case for
the GROUP BY and the window over the distinct scores) and a two-group column ``sex``. Each audit
runs the CLI in a fresh process; its wall time and peak RSS (``wait4`` rusage of that process)
are recorded. DuckDB runs with ``memory_limit`` 2 GB and 2 threads (the defaults of `fairviz.sql`)
and spills beyond that to a temporary folder. At 10⁷ rows the SPDD is also checked against
`fairviz.metrics.spdd` on the same data (loaded with pyarrow, group codes as integers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, machine, publish  # noqa: E402

SECTION = "bench_sql"


#: How to read the table (measured: see the rows above it in RESULTS.md).
READING = ("Memory stays bounded: the peak RSS is DuckDB's 2 GB limit plus the Python process, at 10⁷ and at "
           "10⁸ rows alike; the rest spills to the temporary folder (several GB at 10⁸ rows, removed afterwards). "
           "The work is one window over the rows in score order (a sort): 10× the rows took about 20× the CPU "
           "time, as the sort spills to disk at 10⁸ rows.")


def generate(folder: Path, rows: int, chunk: int, seed: int = 0) -> float:
    """Write ``rows`` rows as Parquet files of ``chunk`` rows in ``folder``; returns seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sexes = pa.array(["F", "M"])
    for i, start in enumerate(range(0, rows, chunk)):
        m = min(chunk, rows - start)
        male = rng.random(m) < 0.52
        score = 1.0 / (1.0 + np.exp(-(rng.normal(0.0, 1.0, m) + 0.5 * male)))
        sex = pa.DictionaryArray.from_arrays(pa.array(male.astype(np.int8)), sexes)
        pq.write_table(pa.table({"score": score, "sex": sex}), folder / f"part-{i:04d}.parquet")
    return time.perf_counter() - t0


def audit(folder: Path) -> dict:
    """Run the CLI on ``folder/*.parquet`` in a fresh process: wall s, peak RSS MB, its JSON."""
    cmd = [sys.executable, "-m", "fairviz", "audit", str(folder / "*.parquet"), "--engine", "duckdb",
           "--score", "score", "--group", "sex", "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if code != 0:
        raise SystemExit(f"audit failed ({code}): {errors.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "result": json.loads(text)}


def reference_spdd(folder: Path) -> float:
    import pyarrow.parquet as pq

    from fairviz import metrics

    t = pq.read_table(folder)
    x = t.column("score").to_numpy()
    codes = t.column("sex").combine_chunks().indices.to_numpy(zero_copy_only=False)
    return metrics.spdd(x, codes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    p.add_argument("--chunk", type=int, default=5_000_000)
    p.add_argument("--scratch", default=None, help="folder for the generated Parquet files (not in git)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = p.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="fairviz-bench-sql-"))
    rows_out = []
    try:
        for rows in args.rows:
            folder = scratch / f"rows-{rows}"
            if not any(folder.glob("*.parquet")):
                gen = generate(folder, rows, args.chunk)
                print(f"generated {rows:,} rows in {gen:.0f} s", flush=True)
            size = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 1e9
            run = audit(folder)
            res = run["result"]
            line = {"rows": rows, "files": len(list(folder.glob('*.parquet'))), "gb": size, "wall_s": run["wall_s"],
                    "cpu_s": run["cpu_s"], "peak_rss_mb": run["peak_rss_mb"], "spdd": res["spdd"]["value"], "check": ""}
            if rows <= 10_000_000:
                ref = reference_spdd(folder)
                line["check"] = f"differs from fairviz.metrics.spdd by {abs(ref - res['spdd']['value']):.1e}"
            rows_out.append(line)
            print(line, flush=True)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.keep and args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    table = ["| rows | Parquet files (GB) | wall time | CPU time | peak RSS | SPDD | exactness |",
             "|---|---|---|---|---|---|---|"]
    for r in rows_out:
        table.append(f"| {r['rows']:,} | {r['files']} ({r['gb']:.2f} GB) | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['spdd']:.6f} | {r['check'] or '—'} |")
    body = "\n".join([
        "## SQL audit out of core (`bench/bench_sql.py`)",
        "",
        f"Machine: {machine()}.",
        "",
        "`python -m fairviz audit 'DIR/*.parquet' --engine duckdb --score score --group sex --json` in a fresh "
        "process (exact SPDD, DP(0.5), selection rates and the LL144 table in one SQL statement); continuous "
        "scores (all distinct), two groups; DuckDB memory_limit 2 GB, 2 threads, spilling to a temporary "
        "folder. Peak RSS is the whole CLI process (Python, pandas, DuckDB); CPU time is its user + system time "
        "(on a shared machine, wall time also counts the time other processes held the cores).",
        "",
        *table,
        "",
        READING,
    ])
    publish(SECTION, body, write=not args.no_write)


if __name__ == "__main__":
    main()
