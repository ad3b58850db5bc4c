"""Coverage of the DP(τ) band (`fairviz.significance.dp_band`) where the true curve is known.
Results: docs/STATISTICS.md (the section between the band markers).

    nice -n 10 python bench/bench_band.py --trials 300  # the study (~30 min on 2 shared cores)
    python bench/bench_band.py --trials 50 --no-write  # a quick look

Data as in bench/bench_coverage.py: scores 0.1 + 0.8·Beta(3, 3), group g shifted by s_g (two
groups: 0, δ; four: 0, δ/3, 2δ/3, δ), fixed group sizes, balanced or the most shifted group a 10 %
minority; so every group's selection rate P(score > τ | g) = Beta(3, 3).sf((τ − 0.1 − s_g)/0.8)
and the true DP(τ) are known at every τ. Each trial draws a sample, builds `metrics.dp_curve` and
the band on fairviz's 201-point grid, and counts whether the band contains the true DP(τ) at all
201 thresholds at once (what the band claims) and at each τ on its own. For comparison the same
trial computes the percentile bootstrap band fairviz drew before (binomial draws per group, 200
resamples, the construction of the old `dp_band`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import REPO, machine, update_section  # noqa: E402
from bench_coverage import draw, sizes  # noqa: E402

from fairviz import metrics  # noqa: E402
from fairviz.significance import dp_band  # noqa: E402

DOC = REPO / "docs" / "STATISTICS.md"
TAUS = np.linspace(0.0, 1.0, 201)
LEVEL = 0.95


def true_dp(delta: float, k: int) -> np.ndarray:
    from scipy.stats import beta  # heavy optional import

    sf = np.array([beta.sf((TAUS - 0.1 - s) / 0.8, 3, 3) for s in np.linspace(0.0, delta, k)])
    return sf.max(axis=0) - sf.min(axis=0)


def old_band(curve, counts, rng, n_boot=200):
    """The percentile bootstrap band fairviz drew before (pointwise, within-group resampling)."""
    rates = np.clip(curve.rates_at(TAUS), 0.0, 1.0)
    draws = np.stack([rng.binomial(m, rates[g], size=(n_boot, len(TAUS))) / m for g, m in enumerate(counts)])
    dp = draws.max(axis=0) - draws.min(axis=0)
    return np.quantile(dp, 0.025, axis=0), np.quantile(dp, 0.975, axis=0)


def run_cell(n, k, minority, delta, trials, seed):
    truth = true_dp(delta, k)
    counts = sizes(n, k, minority)
    rng = np.random.default_rng(seed)
    hit_new = np.zeros(len(TAUS))
    hit_old = np.zeros(len(TAUS))
    sim_new = sim_old = 0
    w_new = w_old = 0.0
    tol = 1e-12
    for _ in range(trials):
        x, g = draw(rng, n, k, minority, delta, False)
        curve = metrics.dp_curve(x, g)
        b = dp_band(curve, counts, taus=TAUS, level=LEVEL)
        lo, hi = old_band(curve, counts, rng)
        cn = (b.low <= truth + tol) & (truth <= b.high + tol)
        co = (lo <= truth + tol) & (truth <= hi + tol)
        hit_new += cn
        hit_old += co
        sim_new += bool(cn.all())
        sim_old += bool(co.all())
        w_new += float(np.mean(b.high - b.low))
        w_old += float(np.mean(hi - lo))
    return {"n": n, "k": k, "minority": minority, "delta": delta, "trials": trials,
            "sim_new": sim_new, "sim_old": sim_old, "pt_new": float(hit_new.min() / trials),
            "pt_old": float(hit_old.min() / trials), "w_new": w_new / trials, "w_old": w_old / trials}


def render(cells, trials) -> str:
    from scipy.stats import binomtest  # heavy optional import

    def pct(hits, t):
        r = binomtest(hits, t).proportion_ci(0.95, method="exact")
        return f"**{100 * hits / t:.1f}** ({100 * r.low:.1f}–{100 * r.high:.1f})"

    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; `bench/bench_band.py` (seeded), {trials} "
             "trials a cell, nominal 95 %, 201 thresholds. \"All τ\": the band contains the true DP(τ) at all 201 "
             "thresholds at once (95 % Clopper–Pearson interval in brackets); \"worst τ\": the lowest coverage of "
             "any single threshold. Widths: mean over τ of high − low.", "",
             "| n | groups | minority | true SPDD | new band, all τ % | new band, worst τ % | "
             "old band, all τ % | old band, worst τ % | new width | old width |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        t = c["trials"]
        lines.append(f"| {c['n']:,} | {c['k']} | {'10 %' if c['minority'] else 'no'} | {c['delta']:.2f} | "
                     f"{pct(c['sim_new'], t)} | {100 * c['pt_new']:.1f} | {100 * c['sim_old'] / t:.1f} | "
                     f"{100 * c['pt_old']:.1f} | {c['w_new']:.3f} | {c['w_old']:.3f} |")
    worst = min(cells, key=lambda c: c["sim_new"] / c["trials"])
    lines += ["", f"Lowest all-τ coverage of the new band: {100 * worst['sim_new'] / worst['trials']:.1f} % "
              f"(n = {worst['n']:,}, {worst['k']} groups, true SPDD {worst['delta']:.2f}); "
              f"of the old band: {100 * min(c['sim_old'] / c['trials'] for c in cells):.1f} %."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--sizes", nargs="+", type=int, default=[200, 1000, 10_000])
    ap.add_argument("--cache", default="/tmp/fairviz-band.jsonl", help="finished cells (resumable)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    done = {c["key"]: c for c in map(json.loads, cache.read_text().splitlines())} if cache.exists() else {}
    cells = []
    t0 = time.time()
    for n in args.sizes:
        for k in (2, 4):
            for minority in (False, True):
                for i, delta in enumerate((0.0, 0.03, 0.1)):
                    key = f"{n}/{k}/{minority}/{delta}/{args.trials}"
                    if key in done:
                        cells.append(done[key])
                        continue
                    c = run_cell(n, k, minority, delta, args.trials, seed=n * 100 + k * 10 + minority + 31 * i)
                    c["key"] = key
                    with cache.open("a") as f:
                        f.write(json.dumps(c) + "\n")
                    cells.append(c)
                    print(f"[{time.time() - t0:5.0f} s] n={n} k={k} minority={minority} δ={delta}: "
                          f"new {c['sim_new']}/{c['trials']} old {c['sim_old']}/{c['trials']}", flush=True)
    body = render(cells, args.trials)
    print(body)
    if not args.no_write:
        update_section("band", body, DOC)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
