"""What the permutation test behind the honest SPDD intervals costs at 1M rows: `metrics.audit`
with and without it, in CPU seconds (the machine is shared, so wall time mostly measures the
other jobs). Results: bench/RESULTS.md, section ``coverage_speed``.

    nice -n 10 python bench/bench_uncertainty_speed.py            # 1M rows, best of 3
    python bench/bench_uncertainty_speed.py --rows 100000 --no-write

CPU time is `time.process_time` (all threads of this process together), so on an idle machine
with several cores the wall time can be lower than the CPU time shown, never higher.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, publish  # noqa: E402

from fairviz import metrics  # noqa: E402
from fairviz.uncertainty import auto_n_perm  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    """(least CPU seconds, least wall seconds) of ``repeat`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10**6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--groups", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    n = args.rows
    rng = np.random.default_rng(0)
    lines = ["## Uncertainty of distances (`bench/bench_uncertainty_speed.py`)", "", machine(), "",
             f"`metrics.audit(x, g, n_boot=1000)` on {n:,} rows, best of {args.repeat}; without the test "
             "(`n_perm=0`) and with it (default: `auto_n_perm` shuffles).", "",
             "| groups | permutations | CPU s without | CPU s with | CPU change | wall s without | wall s with |",
             "|---|---|---|---|---|---|---|"]
    for k in args.groups:
        g = rng.integers(0, k, n)
        x = np.clip(rng.beta(2.5, 2.5, n) + 0.02 * g, 0.0, 1.0)
        c0, w0 = timed(lambda x=x, g=g: metrics.audit(x, g, n_boot=1000, n_perm=0), args.repeat)
        c1, w1 = timed(lambda x=x, g=g: metrics.audit(x, g, n_boot=1000), args.repeat)
        lines.append(f"| {k} | {auto_n_perm(n, k)} | {c0:.2f} | {c1:.2f} | {100 * (c1 / c0 - 1):+.0f} % | "
                     f"{w0:.2f} | {w1:.2f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    publish("coverage_speed", "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
