"""Coverage of the intervals `fairviz.metrics.audit` shows when the bag of little bootstraps
draws the replicates (forced on at any size with ``bootstrap=LittleBootstrap(...)``).
Results: docs/STATISTICS.md (the section between the little-bootstrap coverage markers).

    nice -n 10 python bench/bench_coverage_little.py --n 10000 --trials 200 --no-write

Data: `bench_coverage.draw` (scores 0.1 + 0.8·Beta(3, 3) shifted by s_g, true SPDD δ exactly)
and labels Y = clip(base score + N(0, 0.1²), 0, 1) from the unshifted score, so SPEO, PCC and
SRCC have true values too: each computed once per cell by `fairviz.metrics` on a population of
``--population`` rows with the same group shares (its own sampling error, ~1/√population, is
stated with the table). Each trial runs the whole `audit` (fairviz's own code: little
bootstraps, permutation tests, `distance_uncertainty`, percentile intervals) and counts whether
each interval holds the truth.
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
from bench_coverage import shifts, sizes, true_spdd  # noqa: E402

from fairviz import metrics  # noqa: E402
from fairviz.metrics import LittleBootstrap  # noqa: E402

DOC = REPO / "docs" / "STATISTICS.md"
GRID = 0.02


def draw(rng, n, k, minority, delta, ties):
    ng = sizes(n, k, minority)
    g = np.repeat(np.arange(k), ng)
    base = 0.1 + 0.8 * rng.beta(3.0, 3.0, n)
    x = base + shifts(delta, k)[g]
    y = np.clip(base + rng.normal(0.0, 0.1, n), 0.0, 1.0)
    if ties:
        x = np.round(x / GRID) * GRID
    return x, g, y


def truths(delta, k, minority, ties, population, seed):
    x, g, y = draw(np.random.default_rng(seed), population, k, minority, delta, ties)
    p = metrics.prepare(x, g, y)
    return {"spdd": true_spdd(delta, k, ties), "speo": p.speo(), "pcc": p.pcc(), "srcc": p.srcc()}


def run_cell(n, k, minority, delta, ties, trials, n_boot, n_perm, little, population, seed):
    truth = truths(delta, k, minority, ties, population, seed + 99991)
    rng = np.random.default_rng(seed)
    hit = {name: 0 for name in ("spdd_ci", "spdd_upper", "speo_ci", "speo_upper", "pcc_ci", "srcc_ci")}
    desc = ""
    for _ in range(trials):
        x, g, y = draw(rng, n, k, minority, delta, ties)
        r = metrics.audit(x, g, y, n_boot=n_boot, n_perm=n_perm, random_state=int(rng.integers(2**31)),
                          bootstrap=little)
        desc = r.bootstrap
        for name in ("spdd", "speo"):
            u = getattr(r, name).detail
            hit[f"{name}_ci"] += u.ci_low <= truth[name] <= u.ci_high
            hit[f"{name}_upper"] += truth[name] <= u.upper
        for name in ("pcc", "srcc"):
            mv = getattr(r, name)
            hit[f"{name}_ci"] += mv.ci_low <= truth[name] <= mv.ci_high
    cov = {key: v / trials for key, v in hit.items()}
    return {"n": n, "groups": k, "minority": minority, "delta": delta, "ties": ties, "trials": trials,
            "n_boot": n_boot, "n_perm": n_perm, "bootstrap": desc, "truth": truth, "coverage": cov}


def _table(rows) -> str:
    head = ("| run | n | groups | minority | δ | ties | trials | SPDD interval | SPDD upper | SPEO interval | "
            "SPEO upper | PCC | SRCC |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        c = r["coverage"]
        lines.append(f"| {r.get('run', '')} | {r['n']:,} | {r['groups']} | {'10 %' if r['minority'] else 'no'} | {r['delta']} | "
                     f"{'yes' if r['ties'] else 'no'} | {r['trials']} | "
                     + " | ".join(f"{100 * c[key]:.1f} %" for key in
                                  ("spdd_ci", "spdd_upper", "speo_ci", "speo_upper", "pcc_ci", "srcc_ci")) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.005, 0.01, 0.03])
    ap.add_argument("--cells", default="2b,2m,4b,2t", help="comma list: groups + b(alanced)/m(inority)/t(ies)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--n-perm", type=int, default=199)
    ap.add_argument("--subsets", type=int, default=10)
    ap.add_argument("--exact", action="store_true", help="the exact bootstrap instead (a reference on the same seeds)")
    ap.add_argument("--population", type=int, default=4_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="append each cell as a JSON line")
    ap.add_argument("--table-from", type=Path, nargs="+", default=None,
                    help="write the table of cells saved by earlier runs (--out files) instead of running")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if a.table_from:
        rows = [{"run": f.stem, **json.loads(line)} for f in a.table_from
                for line in f.read_text().splitlines() if line.strip()]
        rows.sort(key=lambda r: (r["n"], r["groups"], r["minority"], r["ties"], r["delta"]))
        return _publish(rows, "cells saved by `--out`: " + ", ".join(sorted({r["bootstrap"] for r in rows})),
                        a.population, not a.no_write)
    little = "exact" if a.exact else LittleBootstrap(subsets=a.subsets)
    rows = []
    t0 = time.time()
    for n in a.n:
        for cell in a.cells.split(","):
            k, kind = int(cell[:-1]), cell[-1]
            for delta in a.deltas:
                r = run_cell(n, k, kind == "m", delta, kind == "t", a.trials, a.n_boot, a.n_perm, little,
                             a.population, a.seed + len(rows))
                rows.append(r)
                print(json.dumps(r), flush=True)
                if a.out:
                    with a.out.open("a") as f:
                        f.write(json.dumps(r) + "\n")
    _publish(rows, f"`metrics.audit(..., n_boot={a.n_boot}, n_perm={a.n_perm}, "
             f"bootstrap=LittleBootstrap(subsets={a.subsets}))`; {time.time() - t0:.0f} s", a.population,
             not a.no_write)


def _publish(rows, how: str, population: int, write: bool) -> None:
    lowest = min(min(r["coverage"].values()) for r in rows)
    runs = sorted({(r["n_boot"], r["n_perm"]) for r in rows})
    text = (f"{_table(rows)}\n\nLowest coverage in any cell and column: {100 * lowest:.1f} %. Each trial is one "
            f"`metrics.audit` (n_boot, n_perm: {', '.join(f'{b}, {m}' for b, m in runs)}); {how}. Truths of SPEO / "
            f"PCC / SRCC from at least {population:,} simulated rows per cell. With T trials a coverage of 95 % is measured "
            f"within ±{100 * 1.96 * (0.95 * 0.05 / max(1, min(r['trials'] for r in rows))) ** 0.5:.1f} points "
            f"(95 %, the smallest T). {machine()}.")
    print(text)
    if write:
        update_section("coverage_little", "### Coverage with the bag of little bootstraps (`bench/bench_coverage_little.py`)"
                       "\n\n" + text, DOC)


if __name__ == "__main__":
    main()
