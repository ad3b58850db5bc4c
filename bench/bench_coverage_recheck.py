"""More trials in the coverage cells where one run of bench/bench_coverage.py could not tell a real
shortfall from Monte-Carlo noise (cells near 93 %, and the cells without ties at 10⁴ / 10⁵ rows,
which ran only 100 / 10 trials there). Results: docs/STATISTICS.md ("Recheck" section).

    nice -n 10 python bench/bench_coverage_recheck.py --plan ties   # tie-grid cells far from 0 (fast)
    nice -n 10 python bench/bench_coverage_recheck.py --plan mid    # 10⁴ rows, no ties
    nice -n 10 python bench/bench_coverage_recheck.py --plan large  # 10⁵ rows, no ties (2 s a trial)
    python bench/bench_coverage_recheck.py --render --write         # the table from the saved trials

The same data, truth and engines as bench_coverage.py, with seeds independent of its run. Every
trial's raw quantities (θ̂, bootstrap quantiles, permutation quantile, p-value) are appended to a
JSON-lines file as soon as its cell finishes, so an interrupted run keeps what it did and any rule
for the interval can be evaluated afterwards on the same trials. Each coverage is given with its
95 % Clopper–Pearson interval (`scipy.stats.binomtest`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_coverage as bc  # noqa: E402

from fairviz.uncertainty import distance_uncertainty  # noqa: E402

QS = (0.025, 0.05, 0.95, 0.975)  # bootstrap quantiles kept per trial
SEED_OFFSET = 10_007  # independent of bench_coverage.py's seeds

# the cells a first run left under 93 % come first in their plans
PLANS = {
    # (n, k, minority, ties, delta, trials)
    "ties": [(100_000, 4, True, True, 0.1, 2000)] + [
        (n, k, m, True, d, 2000) for n in (10_000, 100_000) for k in (2, 4) for m in (False, True)
        for d in (0.03, 0.1) if (n, k, m, d) != (100_000, 4, True, 0.1)],
    "mid": [(10_000, 2, True, False, 0.03, 500)] + [
        (10_000, k, m, False, d, 500) for d in (0.1, 0.03, 0.0, 0.01, 0.005, 0.002)
        for k in (2, 4) for m in (False, True) if (k, m, d) != (2, True, 0.03)],
    # a helper process walking "mid" from its far end (the smallest δ first)
    "mid_tail": [],
    "large": [(100_000, k, m, False, d, 100) for d in (0.1, 0.03, 0.0, 0.01, 0.005, 0.002)
              for k in (2, 4) for m in (False, True)],
    # the fair model and the far case at 10⁵ rows, fewer trials (2 s of CPU a trial)
    "large50": [(100_000, k, m, False, d, 50) for d in (0.0, 0.1) for k in (2, 4) for m in (False, True)],
}
PLANS["mid_tail"] = PLANS["mid"][::-1]


def trials_of(n, k, minority, ties, delta, trials, n_boot, n_perm):
    """Per-trial raw quantities of one cell: a dict of equal-length lists."""
    seed = SEED_OFFSET + n * 1000 + k * 100 + minority * 10 + ties + int(round(delta * 1e4)) * 7919
    rng = np.random.default_rng(seed)
    out = {key: [] for key in ("obs", "q", "c_hi", "p", "lo", "hi", "up")}
    for _ in range(trials):
        x, g = bc.draw(rng, n, k, minority, delta, ties)
        obs, reps, null = (bc.engine_binned if ties else bc.engine)(x, g, k, n_boot, n_perm, rng)
        u = distance_uncertainty(obs, reps, null, bc.LEVEL)
        out["obs"].append(obs)
        out["q"].append(np.quantile(reps, QS).tolist())
        out["c_hi"].append(float(np.quantile(null, 0.975)))
        out["p"].append(u.p_value)
        out["lo"].append(u.ci_low)
        out["hi"].append(u.ci_high)
        out["up"].append(u.upper)
    return out


def ci(hits: int, trials: int) -> tuple[float, float]:
    from scipy.stats import binomtest  # heavy optional import

    r = binomtest(hits, trials).proportion_ci(0.95, method="exact")
    return r.low, r.high


def cell_row(c) -> dict:
    """Counts of hits with their Clopper–Pearson intervals: (hits, low, high) per quantity;
    "reject" counts p ≤ 5 % (the false-positive rate where the truth is 0)."""
    t = c["trials"]
    truth = c["truth"]
    lo, hi, up, p = (np.asarray(c["t"][key]) for key in ("lo", "hi", "up", "p"))
    q = np.asarray(c["t"]["q"])
    hits = {"new": int(np.sum((lo <= truth) & (truth <= hi))), "upper": int(np.sum(truth <= up)),
            "old": int(np.sum((q[:, 0] <= truth) & (truth <= q[:, 3]))), "reject": int(np.sum(p <= 0.05))}
    return {key: (h, *ci(h, t)) for key, h in hits.items()}


def _first_key(c) -> str:
    """The cell's key in bench_coverage.py's cache (its first run, other seeds)."""
    return f"{c['n']}/{c['k']}/{c['minority']}/{c['ties']}/{c['delta']}"


def _first_text(first: dict, c) -> str:
    f = first.get(_first_key(c))
    if f is None:
        return "–"
    return (f"{f['trials']}: {100 * f['new_cover']:.1f} / {100 * f['upper_cover']:.1f} / "
            f"{100 * f['reject5']:.1f}")


def render(cells, first: dict) -> str:
    """The markdown table; `first` maps `_first_key` to bench_coverage.py's cell dicts."""
    head = ("| n | groups | minority | ties | true SPDD | trials | new CI covers % (95 % CI) | "
            "upper bound covers % (95 % CI) | old CI covers % | rejects at 5 % (95 % CI) | "
            "first run: trials: new / upper / rejects % |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for c in sorted(cells, key=lambda c: (c["n"], c["ties"], c["k"], c["minority"], c["delta"])):
        r = cell_row(c)
        t = c["trials"]

        def fmt(v, bold=True, t=t):
            s = f"{100 * v[0] / t:.1f}"
            return (f"**{s}**" if bold else s) + f" ({100 * v[1]:.1f}–{100 * v[2]:.1f})"

        lines.append(f"| {c['n']:,} | {c['k']} | {'10 %' if c['minority'] else 'no'} | "
                     f"{'yes' if c['ties'] else 'no'} | {c['truth']:.4f} | {t} | {fmt(r['new'])} | "
                     f"{fmt(r['upper'])} | {100 * r['old'][0] / t:.1f} | {fmt(r['reject'], False)} | "
                     f"{_first_text(first, c)} |")
    return "\n".join(lines)


def summary(cells) -> str:
    """The lowest coverages and the pooled false-positive rate of the rechecked cells."""
    rows = [(c, cell_row(c)) for c in cells]

    def low(key):
        c, r = min(rows, key=lambda cr: cr[1][key][0] / cr[0]["trials"])
        return (f"{100 * r[key][0] / c['trials']:.1f} % ({c['n']:,} rows, {c['k']} groups, "
                f"{'10 % minority' if c['minority'] else 'balanced'}, {'ties' if c['ties'] else 'no ties'}, "
                f"true SPDD {c['truth']:.4f}, {c['trials']} trials)")

    null = [(c, r) for c, r in rows if c["truth"] == 0.0]
    lines = [f"- Lowest coverage over these {len(rows)} cells: new interval {low('new')}; "
             f"upper bound {low('upper')}."]
    if null:
        hits, t = sum(r["reject"][0] for _, r in null), sum(c["trials"] for c, _ in null)
        lo, hi = ci(hits, t)
        lines.append(f"- Permutation test at true SPDD = 0, 5 % level: {hits} rejections in {t} trials "
                     f"over {len(null)} cells = **{100 * hits / t:.1f} %** ({100 * lo:.1f}–{100 * hi:.1f}).")
    return "\n".join(lines)


def load_first(path: Path) -> dict:
    """bench_coverage.py's cached SPDD cells by `_first_key` (empty if the cache is gone)."""
    return {_first_key(c): c for c in load(path) if c["key"].startswith("spdd/")}


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", choices=sorted(PLANS))
    ap.add_argument("--out", default="/tmp/fairviz-coverage-recheck.jsonl", help="saved trials (resumable)")
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--perm", type=int, default=99)
    ap.add_argument("--render", nargs="*", metavar="FILE",
                    help="print the table of the trials saved in --out and these files")
    ap.add_argument("--write", action="store_true", help="with --render: put the table in docs/STATISTICS.md")
    ap.add_argument("--shard", default="0/1", metavar="I/N",
                    help="run only the plan's cells at positions ≡ I mod N (N processes, N --out files)")
    ap.add_argument("--first", default="/tmp/fairviz-coverage.jsonl",
                    help="bench_coverage.py's cache: its numbers are shown beside the recheck's")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.plan:
        done = {c["key"] for c in load(out)}
        t0 = time.time()
        shard, shards = (int(v) for v in args.shard.split("/"))
        for n, k, m, ties, d, trials in PLANS[args.plan][shard::shards]:
            key = f"{n}/{k}/{m}/{ties}/{d}/{trials}/{args.boot}/{args.perm}"
            if key in done:
                continue
            t = trials_of(n, k, m, ties, d, trials, args.boot, args.perm)
            c = {"key": key, "n": n, "k": k, "minority": m, "ties": ties, "delta": d,
                 "truth": bc.true_spdd(d, k, ties), "trials": trials, "t": t}
            with out.open("a") as f:
                f.write(json.dumps(c) + "\n")
            r = cell_row(c)
            print(f"[{time.time() - t0:6.0f} s] {key}: new {r['new']} upper {r['upper']}", flush=True)
    if args.render is not None:
        # one cell per key: shards' files may repeat the cells done before the split
        cells = list({c["key"]: c for path in [out, *map(Path, args.render)] for c in load(path)}.values())
        body = f"Measured {time.strftime('%Y-%m-%d')} on {bc.machine()}.\n\n{summary(cells)}\n\n{render(cells, load_first(Path(args.first)))}"
        print(body)
        if args.write:
            bc.update_section("recheck", body, bc.DOC)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
