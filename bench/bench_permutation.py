"""Benchmark: the permutation tests of SPDD and SPEO at 10⁶ rows (`fairviz.significance.permutation_test`).

    nice -n 10 python bench/bench_permutation.py              # run, print, update bench/RESULTS.md
    python bench/bench_permutation.py --n 100000 --no-write   # a quick look

Two groups (48 / 52 %) and three groups take the relabeling path of `fairviz.permute` (uniformly
random labelings of the once-sorted scores, one compiled pass each, two threads), and so do 30 groups
(the generic path of shuffled codes and cumulative sums per group is left to more than 255). The last two are timed with fewer permutations and
reported per 1,000. SPEO (labels = score + noise, clipped) with 2 and 6 groups takes
`fairviz.permute_speo` (relabeled rows over breakpoints sorted once), 39 permutations: the count
`audit` runs at this size. Wall
time of this process, best of ``--repeats``; the machine is shared, so the load average is
recorded with the numbers. The p-value resolution is 1 / (permutations + 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, publish  # noqa: E402

SECTION = "bench_permutation"


def best_of(fn, repeats: int) -> tuple[float, float]:
    """(wall s, CPU s of this process, all threads) of the fastest of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--n-perm", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    from fairviz.significance import permutation_test

    rng = np.random.default_rng(0)
    n = args.n
    x = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 1.0, n)))
    g2 = (rng.random(n) < 0.52).astype(np.int64)
    g3 = rng.choice(3, n, p=[0.3, 0.3, 0.4])
    g30 = rng.choice(30, n)
    two, two_cpu = best_of(lambda: permutation_test(x, g2, n_perm=args.n_perm, random_state=0), args.repeats)
    k3 = max(10, args.n_perm // 10)
    three, three_cpu = best_of(lambda: permutation_test(x, g3, n_perm=k3, random_state=0), 1)
    k30 = max(10, args.n_perm // 50)
    many, many_cpu = best_of(lambda: permutation_test(x, g30, n_perm=k30, random_state=0), 1)
    y = np.clip(x + rng.normal(0.0, 0.15, n), 0.0, 1.0)
    g6 = rng.choice(6, n)
    k_eo = 39
    eo2, eo2_cpu = best_of(lambda: permutation_test(x, g2, y, metric="speo", n_perm=k_eo, random_state=0), 1)
    eo6, eo6_cpu = best_of(lambda: permutation_test(x, g6, y, metric="speo", n_perm=k_eo, random_state=0), 1)
    rows = [
        f"| 2 groups (relabeling, compiled pass) | {args.n_perm:,} | {two:.2f} s | {two_cpu:.2f} s "
        f"| {two / args.n_perm * 1e3:.1f} ms | {1 / (args.n_perm + 1):.2g} |",
        f"| 3 groups (relabeling, compiled pass) | {k3:,} | {three:.2f} s | {three_cpu:.2f} s | "
        f"{three / k3 * 1e3:.1f} ms (≈ {three / k3 * 1000:.0f} s per 1,000) | {1 / (k3 + 1):.2g} |",
        f"| 30 groups (relabeling, compiled pass) | {k30:,} | {many:.2f} s | {many_cpu:.2f} s | {many / k30 * 1e3:.1f} ms "
        f"(≈ {many / k30 * 1000:.0f} s per 1,000) | {1 / (k30 + 1):.2g} |",
        *(f"| SPEO, {k} groups (relabeled rows, breakpoints sorted once) | {k_eo} | {w:.2f} s | {c:.2f} s | "
          f"{w / k_eo * 1e3:.1f} ms | {1 / (k_eo + 1):.2g} |" for k, w, c in ((2, eo2, eo2_cpu), (6, eo6, eo6_cpu))),
    ]
    body = "\n".join([
        "## Permutation tests of SPDD and SPEO (`bench/bench_permutation.py`)",
        "",
        f"Machine: {machine()}.",
        "",
        f"`permutation_test(scores, groups, n_perm=…)` on {n:,} rows (continuous scores), including the one "
        "sort; best of "
        f"{args.repeats} for two groups. The smallest p-value a test can give is 1 / (permutations + 1).",
        "",
        "| groups | permutations | wall time | CPU time (all threads) | wall per permutation | p-value resolution |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "On a shared machine the wall time counts the time other processes held the cores; the CPU time "
        "(both threads together) is the work itself: the two-group path needs about half of it as wall time on "
        "an idle 2-core machine (it runs on two threads; the compiled passes release the GIL). With more groups "
        "each permutation costs more (every position updates its group's rate and reads the spread of all); past "
        "255 groups the generic path runs; the report and the app give many groups fewer permutations "
        "(`fairviz.report.auto_n_perm`). SPEO's statistic reads all 2n breakpoints in every permutation; its "
        "times include the breakpoints' one sort.",
    ])
    publish(SECTION, body, write=not args.no_write)


if __name__ == "__main__":
    main()
