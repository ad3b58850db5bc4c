"""The bag of little bootstraps (Kleiner, Talwalkar, Sarkar & Jordan, JRSS-B 2014) at large n.

The exact bootstrap (`fairviz.metrics._bootstrap`) costs O(n) per resample. Here s random
subsets are drawn, stratified by group (b_g of group g's n_g rows each, disjoint when the group
is large enough), and each subset is resampled r ≈ n_boot / s times with counts
Multinomial(n_g; uniform over its b_g rows of group g): every resample has the full group sizes,
so every statistic has the full-n sampling variability, at O(b) cost. Replicate
θ̂ + (θ*_jr − θ̂_j): subset j's own estimate θ̂_j (of its rows weighted n_g / b_g, the
distribution its resamples are drawn from) is replaced by the exact full-data θ̂, so the
replicates feed the same intervals as the exact bootstrap's. Coverage: docs/STATISTICS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fairviz.metrics._bootstrap import _progress_steps, _SortedBoot
from fairviz.metrics._prepared import PreparedAudit
from fairviz.metrics._resample import _rng, _run_replicates, _seed_sequences

#: "auto" uses the little bootstraps from this many rows on (the exact bootstrap below).
LITTLE_MIN_ROWS = 200_000
LITTLE_SUBSETS = 10  # s: subsets (at most n_boot)
LITTLE_EXPONENT = 0.7  # b_g = ceil(n_g ** exponent) ...
LITTLE_MIN_SUBSET = 500  # ... but at least min(n_g, this) rows ...
LITTLE_MAX_RATIO = 64  # ... and at least n_g / 64, so uint8 counts never come near 255
BOOTSTRAPS = ("auto", "exact", "little")


@dataclass(frozen=True)
class LittleBootstrap:
    """Settings of the bag of little bootstraps. ``bootstrap=LittleBootstrap(...)`` runs it on
    data of ``min_rows`` rows or more (0, the default: always; "auto" is
    ``LittleBootstrap(min_rows=LITTLE_MIN_ROWS)``, which also keeps the exact bootstrap when the
    subsets would hold over a quarter of the rows)."""

    subsets: int = LITTLE_SUBSETS
    exponent: float = LITTLE_EXPONENT
    min_subset: int = LITTLE_MIN_SUBSET
    min_rows: int = 0

    def __post_init__(self):
        s, e, m = self.subsets, self.exponent, self.min_subset
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, (int, np.integer)) or self.min_rows < 0:
            raise ValueError(f"little bootstrap min_rows must be an integer ≥ 0, got {self.min_rows!r}")
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"little bootstrap subsets must be an integer ≥ 1, got {s!r}")
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0.0 < e <= 1.0:
            raise ValueError(f"little bootstrap exponent must be in (0, 1], got {e!r}")
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"little bootstrap min_subset must be an integer ≥ 1, got {m!r}")

    def sizes(self, counts: np.ndarray) -> np.ndarray:
        """b_g (G,) rows of each group per subset."""
        n_g = np.asarray(counts, dtype=np.int64)
        b = np.ceil(n_g.astype(np.float64) ** float(self.exponent)).astype(np.int64)
        b = np.maximum(b, np.minimum(n_g, self.min_subset))
        return np.minimum(np.maximum(b, -(-n_g // LITTLE_MAX_RATIO)), n_g)


@dataclass(frozen=True)
class LittlePlan:
    """What runs: s subsets of b_g rows per group (G,)."""

    subsets: int
    sizes: np.ndarray

    def describe(self) -> str:
        return f"bag of little bootstraps: {self.subsets} subsets of ≈ {int(self.sizes.sum()):,} rows"


EXACT_TEXT = "exact bootstrap (every resample of all rows)"


def check_bootstrap(bootstrap) -> str | LittleBootstrap:
    if isinstance(bootstrap, LittleBootstrap) or (isinstance(bootstrap, str) and bootstrap in BOOTSTRAPS):
        return bootstrap
    raise ValueError(f"bootstrap must be one of {', '.join(BOOTSTRAPS)} or a LittleBootstrap, got {bootstrap!r}")


def plan_bootstrap(bootstrap, counts: np.ndarray, n_boot: int) -> LittlePlan | None:
    """The little-bootstrap plan for groups of ``counts`` rows, or None for the exact bootstrap
    ("exact"; "auto" below `LITTLE_MIN_ROWS` rows or when the subsets would not be much smaller)."""
    bootstrap = check_bootstrap(bootstrap)
    if bootstrap == "exact" or n_boot < 1:
        return None
    n = int(np.sum(counts))
    settings = bootstrap if isinstance(bootstrap, LittleBootstrap) else LittleBootstrap(
        min_rows=LITTLE_MIN_ROWS if bootstrap == "auto" else 0)
    sizes = settings.sizes(counts)
    if settings.min_rows and (n < settings.min_rows or 4 * int(sizes.sum()) > n):
        return None
    return LittlePlan(min(settings.subsets, n_boot), sizes)


def _subset_rows(codes: np.ndarray, counts: np.ndarray, plan: LittlePlan, rng) -> list[np.ndarray]:
    """Rows (sorted) of each subset: per group b_g rows, disjoint across subsets when s·b_g ≤ n_g,
    else each subset a fresh sample without replacement."""
    by_group = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    parts: list[list[np.ndarray]] = [[] for _ in range(plan.subsets)]
    for rows, b in zip(by_group, plan.sizes):
        b = int(b)
        if plan.subsets * b <= len(rows):
            perm = rows[rng.permutation(len(rows))[: plan.subsets * b]]
            for j in range(plan.subsets):
                parts[j].append(perm[j * b : (j + 1) * b])
        else:
            for j in range(plan.subsets):
                parts[j].append(rows[rng.choice(len(rows), size=b, replace=False)])
    return [np.sort(np.concatenate(p)) for p in parts]


def _weighted_midranks(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-ranks S_< + T/2 of values v under row weights w (T: the tie block's weight)."""
    order = np.argsort(v, kind="stable")
    vs = v[order]
    bid = np.cumsum(np.concatenate([[True], vs[1:] != vs[:-1]])) - 1
    T = np.bincount(bid, weights=w[order])
    mid = np.cumsum(T) - T / 2.0
    out = np.empty(len(v))
    out[order] = mid[bid]
    return out


def weighted_pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """Pearson correlation of a and b under row weights w (NaN when either is constant)."""
    def dot(u, v):
        return float(np.einsum("i,i,i->", w, u, v))

    W = float(w.sum())
    ac = a - float(np.einsum("i,i->", w, a)) / W
    bc = b - float(np.einsum("i,i->", w, b)) / W
    vaa, vbb, vab = dot(ac, ac), dot(bc, bc), dot(ac, bc)
    if vaa <= 1e-12 * max(dot(a, a), 1e-300) or vbb <= 1e-12 * max(dot(b, b), 1e-300):
        return math.nan
    return max(-1.0, min(1.0, vab / math.sqrt(vaa * vbb)))


def _subset_estimates(sub: PreparedAudit, full_counts: np.ndarray, stats: Sequence[str]) -> dict:
    """θ̂_j: each statistic of the subset's rows weighted n_g / b_g (the distribution its
    resamples draw from). SPDD and SPEO read each group's ECDF only: the plain subset's values."""
    d = sub.data
    out = {}
    w = (full_counts / d.counts)[d.codes]
    for s in stats:
        if s == "spdd":
            out[s] = sub.spdd()
        elif s == "speo":
            out[s] = sub.speo()
        elif s == "pcc":
            out[s] = weighted_pearson(d.x, d.y, w)
        else:
            out[s] = weighted_pearson(_weighted_midranks(d.x, w), _weighted_midranks(d.y, w), w)
    return out


def little_replicates(p: PreparedAudit, stats: Sequence[str], n_boot: int, random_state, plan: LittlePlan, *,
                      full: dict, progress=None) -> dict:
    """{statistic: (n_boot,) replicates} of the bag of little bootstraps; ``full``: θ̂ of each
    statistic on all rows. Resample r uses the same seed as the exact bootstrap's resample r
    (so s = 1 with every row reproduces it); the subsets are drawn from one more seed."""
    d = p.data
    stats = tuple(dict.fromkeys(stats))
    seeds = _seed_sequences(random_state, n_boot + 1)
    subsets = _subset_rows(d.codes, d.counts, plan, _rng(seeds[n_boot]))
    cuts = [j * n_boot // plan.subsets for j in range(plan.subsets + 1)]
    step = _progress_steps(progress, n_boot)
    out = np.empty((n_boot, len(stats)))
    for j, rows in enumerate(subsets):
        y = None if d.y is None else d.y[rows]
        plain = PreparedAudit.from_codes(d.x[rows], d.codes[rows], d.labels, y)
        own = _subset_estimates(plain, d.counts, stats)
        engine = _SortedBoot(PreparedAudit.from_codes(d.x[rows], d.codes[rows], d.labels, y, counts=d.counts), stats)
        vals = _run_replicates(engine.worker, seeds[cuts[j] : cuts[j + 1]], len(stats),
                               4 * len(rows) * (cuts[j + 1] - cuts[j]), 8, step)
        for i, s in enumerate(stats):
            out[cuts[j] : cuts[j + 1], i] = full[s] + (vals[:, i] - own[s])
    return {s: out[:, i] for i, s in enumerate(stats)}
