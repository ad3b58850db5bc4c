"""Honest uncertainty for distances (SPDD, SPEO): intervals that cover a fair model's value 0.

SPDD and SPEO are distances (≥ 0). On a finite sample the measured distance is biased upward —
two samples from one distribution already differ — so a percentile-bootstrap interval of a
distance sits entirely above 0 and never covers a fair model's true value. This module turns
the bootstrap replicates and the group-label permutations that fairviz computes anyway into
quantities with the coverage they claim (measured in bench/bench_coverage.py, docs/STATISTICS.md):

- ``p_value``: the permutation test of "the groups' score distributions are equal" (true value 0);
  (1 + #{null ≥ observed}) / (1 + n_perm), so it is never 0 and is exactly valid.
- ``upper``: a one-sided ``level`` upper bound, the ``level`` quantile of the within-group
  bootstrap replicates. A positively biased distance makes it conservative near 0.
- ``ci_low, ci_high``: a two-sided ``level`` interval. The upper end is the (1 + level)/2
  bootstrap quantile q_hi. The lower end inverts a test: 0 unless the permutation test rejects
  "true value 0" at (1 − level)/2, then the smaller of θ̂ − c_hi and the basic-bootstrap 2·θ̂ −
  q_hi, clipped at 0, where c_hi is the (1 + level)/2 quantile of the permutation null. Why
  θ̂ − c_hi: max_g − min_g is a seminorm of the group ECDFs, so θ̂ ≤ θ + (the same functional
  of the sampling noise F̂_g − F_g), and that noise term is what the permutation null
  measures; so θ̂ − c_hi ≤ θ with probability about (1 + level)/2 for every θ, also just above
  0, where the bootstrap's lower ends (which see a smaller bias at θ̂ than at the truth) miss.
- ``debiased``: √max(0, θ̂² − m₀²) with m₀ the mean distance under shuffled groups (the chance
  level): the part of the distance chance does not explain. Its bias is far smaller than the
  raw θ̂'s near 0 and about the same far from 0. The headline value stays the raw θ̂ (the
  paper's definition, what other tools compute); `describe` says so.

`describe` writes the one sentence every output (app, report, CLI) shows for a distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "CI_METHOD",
    "DistanceUncertainty",
    "SCHEMA_VERSION",
    "audit_distances",
    "auto_n_perm",
    "best_and_ties",
    "describe",
    "distance_uncertainty",
    "p_value",
    "permutation_plan",
]

#: Schema version of the SPDD / SPEO entries in `AuditResult.to_dict()` (1: percentile CI).
SCHEMA_VERSION = 2
CI_METHOD = "test-inversion"


def _f(v) -> float:
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class DistanceUncertainty:
    """A distance (SPDD or SPEO) with the uncertainty statements fairviz shows for it.

    All values are in the metric's units (score units, [0, 1]); NaN where not computed
    (``n_boot=0``: no ``upper``/``ci_high``; ``n_perm=0``: no ``p_value``, lower end 0).
    """

    value: float  # raw estimate θ̂ on the data
    ci_low: float  # two-sided `level` interval by test inversion
    ci_high: float
    upper: float  # one-sided `level` upper bound
    p_value: float  # permutation test of "true value 0"
    chance_mean: float  # mean under shuffled groups (m₀)
    chance_p95: float  # 95 % quantile under shuffled groups
    debiased: float  # √max(0, θ̂² − m₀²)
    level: float
    n_boot: int
    n_perm: int

    @property
    def significant(self) -> bool:
        """True when the permutation test rejects "true value 0" at 1 − level."""
        return math.isfinite(self.p_value) and self.p_value <= 1.0 - self.level

    def to_dict(self) -> dict:
        def j(v):
            v = float(v)
            return v if math.isfinite(v) else None

        return {
            "value": j(self.value), "ci_low": j(self.ci_low), "ci_high": j(self.ci_high),
            "ci_method": CI_METHOD, "upper": j(self.upper), "p_value": j(self.p_value),
            "chance_mean": j(self.chance_mean), "chance_p95": j(self.chance_p95),
            "debiased": j(self.debiased), "n_perm": int(self.n_perm),
        }


def p_value(observed: float, null: np.ndarray) -> float:
    """(1 + #{null ≥ observed}) / (1 + len(null)), with a relative tolerance for float noise
    (the same rule as `fairviz.significance.permutation_test`); NaN without draws."""
    null = np.asarray(null, dtype=np.float64)
    if null.size == 0 or not math.isfinite(observed):
        return math.nan
    tol = 1e-10 * max(1.0, abs(observed))
    return float((1.0 + np.count_nonzero(null >= observed - tol)) / (1.0 + null.size))


def distance_uncertainty(observed: float, replicates: Any, null: Any, level: float = 0.95, *,
                         noise_floor: bool = False) -> DistanceUncertainty:
    """Uncertainty of a distance from its bootstrap replicates and its permutation null.

    observed: θ̂ on the data; replicates: (n_boot,) the within-group bootstrap values (may be
    empty); null: (n_perm,) the values under shuffled group labels (may be empty); level:
    confidence, e.g. 0.95. O(n_boot + n_perm): it only reads quantiles of what `audit` drew.
    ``noise_floor`` (for the bag of little bootstraps' replicates, which miss the distance's
    upward bias just above 0): the upper bound and the interval's upper end are at least
    θ̂ + the null's matching quantile — the triangle inequality θ ≤ θ̂ + ‖sampling noise‖, the
    mirror of the lower end's θ̂ − c_hi; the lower end is unchanged by it.
    """
    theta = float(observed)
    reps = np.asarray(replicates, dtype=np.float64).reshape(-1)
    reps = reps[np.isfinite(reps)]
    null = np.asarray(null, dtype=np.float64).reshape(-1)
    a = 1.0 - float(level)
    if reps.size:
        q_hi, upper = (float(v) for v in np.quantile(reps, [1 - a / 2, 1 - a]))
        if noise_floor and null.size:
            c_hi, c_up = (float(v) for v in np.quantile(null, [1 - a / 2, 1 - a]))
            q_hi, upper = max(q_hi, theta + c_hi), max(upper, theta + c_up)
    else:
        q_hi = upper = math.nan
    p = p_value(theta, null)
    low = 0.0
    if math.isfinite(p) and p <= a / 2 and reps.size:
        # the test says the true value is not 0; the noise bound keeps the lower end honest
        # just above 0, the basic bootstrap far from it (the smaller of the two is kept)
        c_hi = float(np.quantile(null, 1 - a / 2))
        low = max(0.0, min(theta - c_hi, 2.0 * theta - q_hi))
    m0 = float(null.mean()) if null.size else math.nan
    debiased = math.sqrt(max(0.0, theta * theta - m0 * m0)) if math.isfinite(m0) else math.nan
    return DistanceUncertainty(
        value=theta, ci_low=low if reps.size else math.nan, ci_high=q_hi, upper=upper, p_value=p,
        chance_mean=m0, chance_p95=float(np.quantile(null, 0.95)) if null.size else math.nan,
        debiased=debiased, level=float(level), n_boot=int(reps.size), n_perm=int(null.size),
    )


def auto_n_perm(n: int, n_groups: int, *, budget: float = 4e7, low: int = 39, high: int = 999) -> int:
    """Permutations for the test within a work budget (rows × (groups − 1) × permutations).

    ``low = 39`` keeps the smallest p-value (1/40) at the 0.025 the interval's lower end needs,
    so a large file can still show a lower end above 0; ``high = 999`` gives p-values to 0.001.
    0 (no test: the lower end stays 0, which is honest) when even ``low`` shuffles would cost
    over 25× the budget (e.g. an ID column picked as the group).
    """
    work = max(1, n * max(1, n_groups - 1))
    if low * work > 25 * budget:
        return 0
    return int(np.clip(budget / work, low, high))


def _num(v: float, digits: int) -> str:
    return f"{v:.{digits}f}"


def _digits(digits: int, *values: float) -> int:
    """Enough decimals that the largest of ``values`` keeps two significant digits (a 1M-row
    audit's bounds are ~0.001), at least ``digits``, at most 6."""
    ref = max((abs(v) for v in values if math.isfinite(v) and v != 0.0), default=1.0)
    d = digits
    while ref < 10.0 ** (1 - d) and d < 6:
        d += 1
    return d


def _p_text(p: float, n_perm: int) -> str:
    floor = 1.0 / (n_perm + 1)
    return f"p ≤ {floor:.2g}" if p <= floor + 1e-12 else f"p = {p:.2g}"


def describe(name: str, u: DistanceUncertainty | Mapping, digits: int = 3) -> str:
    """One sentence on what a distance's numbers mean, for every output (app, report, CLI).

    ``u``: a `DistanceUncertainty` or its ``to_dict()`` (with ``level``/``n_boot`` taken from the
    mapping when present). E.g. "SPDD 0.018 (raw) — not distinguishable from chance at this
    sample size (p = 0.6); with 95 % confidence at most 0.031."
    """
    d = u.to_dict() if isinstance(u, DistanceUncertainty) else dict(u)
    level = float(d.get("level", getattr(u, "level", 0.95)) or 0.95)
    v, p, up = _f(d.get("value")), _f(d.get("p_value")), _f(d.get("upper"))
    lo, hi = _f(d.get("ci_low")), _f(d.get("ci_high"))
    if "ci_method" not in d:
        # saved by an older fairviz: a percentile interval, whose lower end never covers a fair
        # model's 0; its upper end (a one-sided (1 + level)/2 bound) is still a valid bound
        up, lo, hi = hi, math.nan, math.nan
    if not math.isfinite(v):
        return f"{name}: not computed"
    pct = f"{level * 100:.0f} %"
    digits = _digits(digits, v, up)
    text = f"{name} {_num(v, digits)} (as measured)"
    if math.isfinite(p):
        n_perm = int(d.get("n_perm") or 0)
        if p <= 1.0 - level:
            text += f" — more than chance alone explains ({_p_text(p, n_perm)})"
            deb = _f(d.get("debiased"))
            if math.isfinite(deb):
                text += f"; about {_num(deb, digits)} once chance is taken out"
        else:
            text += f" — not distinguishable from chance at this sample size ({_p_text(p, n_perm)})"
        m0 = _f(d.get("chance_mean"))
        if math.isfinite(m0):
            text += f"; shuffled groups give {_num(m0, digits)} on average"
    if math.isfinite(up):
        text += f"; with {pct} confidence at most {_num(up, digits)}"
        if math.isfinite(lo) and math.isfinite(hi):
            text += f" ({pct} interval [{_num(lo, digits)}, {_num(hi, digits)}])"
    return text + "."


def best_and_ties(values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                  higher_is_better: bool) -> tuple[int | None, list[bool]]:
    """The best row and which rows the intervals cannot separate from it.

    Returns (index of the best finite value or None, tie flags per row): row i ties with the
    best when their intervals overlap (a conservative check: overlapping intervals never
    separate two values). Rows without an interval tie only when their value is equal.
    """
    v = np.asarray(values, dtype=np.float64)
    lo = np.asarray(lows, dtype=np.float64)
    hi = np.asarray(highs, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return None, [False] * len(v)
    best = int(np.nanargmax(np.where(ok, v, -np.inf)) if higher_is_better else np.nanargmin(np.where(ok, v, np.inf)))
    ties = []
    for i in range(len(v)):
        if i == best or not ok[i]:
            ties.append(False)
            continue
        if np.isfinite([lo[i], hi[i], lo[best], hi[best]]).all():
            ties.append(bool(lo[i] <= hi[best] and lo[best] <= hi[i]))
        else:
            ties.append(bool(v[i] == v[best]))
    return best, ties


def permutation_plan(n: int, n_groups: int, with_labels: bool,
                     n_perm: int | Mapping[str, int] | None) -> dict[str, int]:
    """{"spdd": shuffles[, "speo": shuffles]} that `audit_distances` draws for ``n`` rows in
    ``n_groups`` groups. ``n_perm``: one count for both tests; a mapping {"spdd": k, "speo": k}
    (a metric it leaves out gets the automatic count); None: `auto_n_perm` for both, a quarter
    budget for SPEO, whose statistic costs ~4×."""
    names = ("spdd", "speo") if with_labels else ("spdd",)
    given = n_perm if isinstance(n_perm, Mapping) else {name: n_perm for name in names}
    unknown = set(given) - {"spdd", "speo"}
    if unknown:
        raise ValueError(f"n_perm names metrics 'spdd' and 'speo'; got {sorted(map(str, unknown))}")
    plan = {}
    for name in names:
        k = given.get(name)
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0):
            raise ValueError(f"n_perm must be None or an integer ≥ 0, got {k!r}")
        plan[name] = int(k) if k is not None else auto_n_perm(n, n_groups, budget=4e7 if name == "spdd" else 1e7)
    return plan


def audit_distances(x: np.ndarray, codes: np.ndarray, y: np.ndarray | None, values: Mapping[str, float],
                    replicates: Mapping[str, np.ndarray], *, level: float,
                    n_perm: int | Mapping[str, int] | None,
                    random_state, progress=None, noise_floor: bool = False,
                    speo_breakpoints=None) -> dict[str, DistanceUncertainty]:
    """`DistanceUncertainty` of SPDD (and SPEO when ``y`` is given) for `fairviz.metrics.audit`.

    x: (n,) scores; codes: (n,) group codes 0..k−1; y: (n,) labels or None; values: the
    distances on the data; replicates: their bootstrap replicates (may lack a metric: no
    bootstrap). The permutation null comes from `fairviz.significance.permutation_test`
    (shuffles: `permutation_plan`). ``progress(done, total)`` follows the shuffles of both tests.
    ``speo_breakpoints``: SPEO's sorted breakpoints of (x, y), or a function that returns them
    (called only when SPEO's null is drawn).
    """
    # import cycle: fairviz.metrics imports this module, and the permutation test imports fairviz.metrics
    from fairviz.significance import permutation_test  # noqa: PLC0415

    k = int(codes.max()) + 1 if len(codes) else 2
    plan = permutation_plan(len(x), k, y is not None, n_perm)
    total, before = sum(plan.values()), 0
    out = {}
    for name, m in plan.items():
        null = np.empty(0)
        if m > 0:
            rs = np.random.default_rng(random_state) if isinstance(random_state, np.random.SeedSequence) else random_state
            follow = None if progress is None else (lambda done, _m, b=before: progress(b + done, total))
            null = permutation_test(x, codes, y, metric=name, n_perm=m, random_state=rs, progress=follow,
                                    breakpoints=speo_breakpoints if name == "speo" else None).null_values
        before += m
        out[name] = distance_uncertainty(values[name], replicates.get(name, np.empty(0)), null, level,
                                         noise_floor=noise_floor)
    return out
