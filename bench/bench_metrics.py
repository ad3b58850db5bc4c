"""Benchmark of the exact metrics core: `spdd` and `dp_curve` against one `np.sort` of the same
data (the floor), scipy's `wasserstein_distance`, POT's `wasserstein_1d` and fair-scoring (when
installed), and a naive 50-threshold loop; plus the within-group bootstrap (1,000 SPDD
resamples at 10⁶ rows).

    python bench/bench_metrics.py                # n = 1e5, 1e6, 1e7; writes bench/RESULTS.md
    python bench/bench_metrics.py --sizes 1e5 1e6 --no-write

Each timing is the best of several runs (the machine is shared, so the best run is the one
least disturbed); `np.sort`, `spdd` and `dp_curve` runs are interleaved with each other, the
baselines are timed after them. CPU time of the process is reported next to wall time. The baselines are
timed as a user would call them: the group split (``x[g == 0]``) is part of their time. The
results replace the section between ``<!-- bench_metrics:start -->`` and
``<!-- bench_metrics:end -->`` in bench/RESULTS.md (written atomically); other sections are
kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, publish  # noqa: E402

from fairviz import metrics  # noqa: E402

SECTION = "bench_metrics"


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < 0.45).astype(np.int64)
    x = np.where(g == 1, rng.beta(2.0, 3.0, n), rng.beta(2.5, 2.5, n))
    return x, g


def naive_grid(x, g, grid=50):
    dp = []
    for tau in np.arange(grid) / grid:
        r0 = (x[g == 0] > tau).mean()
        r1 = (x[g == 1] > tau).mean()
        dp.append(abs(r0 - r1))
    return float(np.mean(dp))


_SHUFFLED: dict = {}


def shuffled(x: np.ndarray) -> np.ndarray:
    """The same scores in a random order (cached per size): with the groups unchanged, both
    groups then come from one distribution, as for a fair model."""
    if len(x) not in _SHUFFLED:
        _SHUFFLED[len(x)] = np.random.default_rng(7).permutation(x)
    return _SHUFFLED[len(x)]


def methods():
    import scipy.stats as ss

    out = {
        "np.sort (floor)": lambda x, g: np.sort(x),
        "fairviz spdd": lambda x, g: metrics.spdd(x, g),
        "fairviz spdd, one distribution": lambda x, g: metrics.spdd(shuffled(x), g),
        "fairviz dp_curve": lambda x, g: metrics.dp_curve(x, g),
        "scipy wasserstein_distance": lambda x, g: ss.wasserstein_distance(x[g == 0], x[g == 1]),
    }
    try:
        import ot  # POT

        out["POT wasserstein_1d"] = lambda x, g: float(ot.wasserstein_1d(x[g == 0], x[g == 1]))
    except ImportError:
        pass
    try:
        from fairscoring.metrics import WassersteinMetric

        fs = WassersteinMetric(fairness_type="IND", name="independence")
        y = None

        def fair_scoring(x, g):
            nonlocal y
            if y is None or len(y) != len(x):
                y = np.ones(len(x), dtype=int)
            return fs.bias(x, y, g, groups=[0, 1], favorable_target=1, min_score=0.0, max_score=1.0).bias

        out["fair-scoring WassersteinMetric"] = fair_scoring
    except ImportError:
        pass
    out["naive 50-threshold loop"] = naive_grid
    return out


def time_all(fns: dict, x, g, repeats: int, slow_limit: float) -> tuple[dict, dict]:
    """Best wall time and best CPU time (this thread) per method."""
    best = {k: float("inf") for k in fns}
    cpu = {k: float("inf") for k in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            if r > 0 and best[name] > slow_limit:  # slow baselines: one run is enough
                continue
            c = time.thread_time()
            t = time.perf_counter()
            fn(x, g)
            best[name] = min(best[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.thread_time() - c)
    return best, cpu


def check(x, g):
    import scipy.stats as ss

    a = metrics.spdd(x, g)
    b = ss.wasserstein_distance(x[g == 0], x[g == 1])
    assert abs(a - b) < 1e-12, (a, b)


def bench_bootstrap(n: int, n_boot: int) -> dict:
    x, g = data(n, seed=1)
    t_wall = time.perf_counter()
    t_cpu = time.process_time()
    lo, hi = metrics.bootstrap_ci("spdd", x, g, n_boot=n_boot, random_state=0)
    wall = time.perf_counter() - t_wall
    cpu = time.process_time() - t_cpu
    return {"n": n, "n_boot": n_boot, "wall": wall, "cpu": cpu, "ci": (lo, hi), "spdd": metrics.spdd(x, g),
            "threads": metrics._n_threads(n * n_boot)}


def fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def render(rows: dict, cpus: dict, boot: dict | None, where: str) -> str:
    sizes = list(rows)
    names = list(next(iter(rows.values())))
    head = "| method | " + " | ".join(f"n = {n:.0e}".replace("e+0", "e") for n in sizes) + " |"
    lines = [
        "## Exact metrics core (`bench/bench_metrics.py`)",
        "",
        f"- Machine: {where} (load average and date at the start)",
        "- The machine is shared: each time is the best of several interleaved runs.",
        "- Data: two groups (45% / 55%), Beta-distributed scores, float64; baselines include the group split.",
        "- `one distribution`: the same scores with the groups assigned at random (as for a fair model, the",
        "  two quantile functions cross everywhere: the slowest case for `spdd`).",
        "",
        "Time (and multiple of one `np.sort` of the same data):",
        "",
        head,
        "|---" * (len(sizes) + 1) + "|",
    ]
    for name in names:
        cells = []
        for n in sizes:
            t = rows[n][name]
            floor = rows[n]["np.sort (floor)"]
            cells.append(f"{fmt_t(t)} ({t / floor:.2f}×)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "CPU time of this process (less disturbed by the other users of the machine than wall time):", ""]
    lines.append("| method | " + " | ".join(f"n = {n:.0e}".replace("e+0", "e") for n in sizes) + " |")
    lines.append("|---" * (len(sizes) + 1) + "|")
    for name in ("np.sort (floor)", "fairviz spdd", "fairviz spdd, one distribution", "fairviz dp_curve",
                 "scipy wasserstein_distance"):
        cells = []
        for n in sizes:
            t = cpus[n][name]
            cells.append(f"{fmt_t(t)} ({t / cpus[n]['np.sort (floor)']:.2f}×)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if boot:
        lines += [
            "",
            f"Bootstrap: `bootstrap_ci('spdd', ...)` with {boot['n_boot']} resamples within groups at "
            f"n = {boot['n']:.0e}: {boot['wall']:.2f} s wall, {boot['cpu']:.2f} s CPU "
            f"({boot['threads']} threads; {boot['cpu'] / boot['n_boot'] * 1e3:.2f} ms CPU per resample); "
            f"SPDD = {boot['spdd']:.5f}, 95% CI [{boot['ci'][0]:.5f}, {boot['ci'][1]:.5f}].".replace("e+0", "e"),
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    ap.add_argument("--repeats", type=int, default=None, help="runs per method (default: by size)")
    ap.add_argument("--boot-n", type=float, default=1e6, help="rows for the bootstrap timing (0 = skip)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args(argv)

    where = machine()
    fns = methods()
    rows = {}
    cpus = {}
    for n in [int(s) for s in args.sizes]:
        x, g = data(n)
        if n <= 2_000_000:
            check(x, g)
        repeats = args.repeats or (15 if n <= 200_000 else 7 if n <= 2_000_000 else 3)
        for fn in fns.values():  # warm-up (imports, allocator)
            fn(x[:1000], g[:1000])
        core = ("np.sort (floor)", "fairviz spdd", "fairviz spdd, one distribution", "fairviz dp_curve")
        # the floor and fairviz are timed interleaved with each other; the slow baselines apart
        w1, c1 = time_all({k: fns[k] for k in core}, x, g, repeats, slow_limit=2.0)
        w2, c2 = time_all({k: v for k, v in fns.items() if k not in core}, x, g, max(2, repeats // 3), slow_limit=2.0)
        rows[n], cpus[n] = {**w1, **w2}, {**c1, **c2}
        floor = rows[n]["np.sort (floor)"]
        print(f"n = {n:.0e}", file=sys.stderr)
        for name, t in rows[n].items():
            c = cpus[n][name] / cpus[n]["np.sort (floor)"]
            print(f"  {name:<32} {fmt_t(t):>10}  {t / floor:6.2f}× sort  (CPU {c:5.2f}×)", file=sys.stderr)
    boot = None
    if args.boot_n and args.n_boot:
        boot = bench_bootstrap(int(args.boot_n), args.n_boot)
        print(f"bootstrap {boot['n_boot']} × n={boot['n']:.0e}: {boot['wall']:.2f} s wall, "
              f"{boot['cpu']:.2f} s CPU, {boot['threads']} threads", file=sys.stderr)
    section = render(rows, cpus, boot, where)
    publish(SECTION, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
