"""Is a gap statistically meaningful? Tests next to the impact ratios and next to SPDD / SPEO.

- Rates (four-fifths rule at a threshold tau, and NYC Local Law 144's median-split scoring rates):
  each group is compared with the highest-rate group by a two-sided two-proportion z-test (pooled
  variance), or by Fisher's exact test (`scipy.stats.fisher_exact`) when any expected cell count
  of the 2x2 table is below 5 (where the normal approximation is poor). The EEOC's Uniform
  Guidelines look at both the ratio (< 0.8) and whether the difference is significant.
- SPDD / SPEO: a permutation test that shuffles group labels. It gives the p-value and the
  *chance level*: the metric's distribution when groups do not matter, for these group sizes (two
  samples from one distribution already differ by about sigma / sqrt(n)).

Permutation scheme (documented because a test reproduces it with a naive loop): rows are sorted
once by score (stable); ``c`` holds the group codes in that order; ``rng =
numpy.random.default_rng(random_state)`` and each permutation is ``rng.shuffle(c)`` applied to
the previous state (each state is a uniformly random assignment of the group labels). Because the
scores stay sorted, each group's ECDF is a cumulative sum of its indicator over ``c``; chunks of
permutations are evaluated at once, without re-sorting. SPDD with up to 16 groups: permutation r
is ``fairviz.permute.relabel`` (two groups) or ``relabel_groups`` with the generator seeded by
``SeedSequence(random_state).spawn(n_perm)[r]`` (also a uniformly random assignment with the same
group sizes), summed by blocks (`fairviz.permute`), on as many threads as help.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairviz.metrics._steps import _dp_gap_fn, _eo_gap_fn, _integrate_gap
from fairviz.metrics._validate import factorize_groups
from fairviz.permute import observed_spdd, spdd_null

__all__ = [
    "two_proportion_ztest",
    "compare_proportions",
    "rate_tests",
    "impact_ratio_tests",
    "scoring_rate_tests",
    "PermutationResult",
    "permutation_test",
    "FISHER_MIN_EXPECTED",
    "DPBand",
    "dp_band",
]

#: Fisher's exact test is used when any expected count of the 2x2 table is below this.
FISHER_MIN_EXPECTED = 5.0
FOUR_FIFTHS = 0.8
#: SPDD permutations go through `fairviz.permute` up to this many groups (beyond, its per-group
#: block sums cost more than the generic cumulative sums).
FAST_PERM_MAX_GROUPS = 16


# ------------------------------------------------------------------------ proportion tests
def two_proportion_ztest(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Two-sided pooled two-proportion z-test of p1 == p2; returns (z, p_value).

    z = (x1/n1 - x2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2). When the
    pooled proportion is 0 or 1 there is no difference to test: (0.0, 1.0).
    """
    from scipy.stats import norm

    _check_counts(x1, n1)
    _check_counts(x2, n2)
    p = (x1 + x2) / (n1 + n2)
    var = p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return float(z), float(min(1.0, 2.0 * norm.sf(abs(z))))


def _check_counts(x: int, n: int) -> None:
    if n <= 0 or x < 0 or x > n:
        raise ValueError(f"need 0 <= selected <= n and n >= 1; got selected={x}, n={n}")


def compare_proportions(x1: int, n1: int, x2: int, n2: int, *, min_expected: float = FISHER_MIN_EXPECTED) -> dict:
    """Test group 1 (x1 of n1 selected) against group 2 (x2 of n2), picking the test.

    Returns {"test": "z" | "fisher", "statistic": z or the odds ratio, "p_value": two-sided,
    "min_expected": smallest expected cell count}. Fisher's exact test when that count is below
    `min_expected` (5 by default, the usual rule of thumb), else the pooled z-test.
    """
    from scipy.stats import fisher_exact

    _check_counts(x1, n1)
    _check_counts(x2, n2)
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=np.int64)
    total = n1 + n2
    col = table.sum(axis=0)
    expected = np.outer([n1, n2], col) / total
    min_exp = float(expected.min())
    if min_exp < min_expected:
        res = fisher_exact(table, alternative="two-sided")
        odds = float(res.statistic) if np.isfinite(res.statistic) else float("inf")
        return {"test": "fisher", "statistic": odds, "p_value": float(res.pvalue), "min_expected": min_exp}
    z, p = two_proportion_ztest(x1, n1, x2, n2)
    return {"test": "z", "statistic": z, "p_value": p, "min_expected": min_exp}


RATE_TEST_COLUMNS = [
    "group", "n", "share", "selected", "rate", "impact_ratio", "small_group", "excluded",
    "reference", "four_fifths_fail", "test", "statistic", "p_value", "significant",
]


def rate_tests(
    selected: Mapping[Any, int],
    totals: Mapping[Any, int],
    *,
    alpha: float = 0.05,
    small_share: float = 0.02,
    exclude_small: bool = False,
    min_expected: float = FISHER_MIN_EXPECTED,
) -> pd.DataFrame:
    """Per-group rate table with each group tested against the highest-rate group.

    selected / totals: group -> count selected / group size (same keys, in display order).
    Groups under `small_share` of the rows are flagged (``small_group``); with
    `exclude_small=True` they are left out of the impact ratios (NYC LL144 lets an auditor do so)
    — they are neither the reference nor given a ratio or test — but their counts stay in the table.

    Columns: group, n, share, selected, rate, impact_ratio (rate / reference rate; NaN if excluded
    or the reference rate is 0), small_group, excluded, reference (the highest-rate group),
    four_fifths_fail (impact_ratio < 0.8), test ("z" | "fisher" | "" for the reference/excluded),
    statistic (z, or Fisher's odds ratio), p_value (two-sided), significant (p_value < alpha).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    keys = list(totals)
    if set(keys) != set(selected):
        raise ValueError("selected and totals must have the same groups")
    n = np.array([int(totals[k]) for k in keys], dtype=np.int64)
    x = np.array([int(selected[k]) for k in keys], dtype=np.int64)
    for k, xi, ni in zip(keys, x, n):
        if ni <= 0 or not 0 <= xi <= ni:
            raise ValueError(f"group {k!r}: need 1 <= n and 0 <= selected <= n (got {xi} of {ni})")
    share = n / n.sum()
    rate = x / n
    small = share < small_share
    excluded = small & bool(exclude_small)
    eligible = ~excluded
    if not eligible.any():  # every group is small: nothing to exclude against
        excluded[:] = False
        eligible[:] = True
    ref = int(np.flatnonzero(eligible)[np.argmax(rate[eligible])])
    rows = []
    for i, k in enumerate(keys):
        row = {
            "group": k, "n": int(n[i]), "share": float(share[i]), "selected": int(x[i]),
            "rate": float(rate[i]), "impact_ratio": np.nan, "small_group": bool(small[i]),
            "excluded": bool(excluded[i]), "reference": i == ref, "four_fifths_fail": False,
            "test": "", "statistic": np.nan, "p_value": np.nan, "significant": False,
        }
        if not excluded[i]:
            if rate[ref] > 0:
                row["impact_ratio"] = float(rate[i] / rate[ref])
                row["four_fifths_fail"] = bool(row["impact_ratio"] < FOUR_FIFTHS)
            if i != ref:
                res = compare_proportions(int(x[i]), int(n[i]), int(x[ref]), int(n[ref]), min_expected=min_expected)
                row.update(test=res["test"], statistic=res["statistic"], p_value=res["p_value"],
                           significant=bool(res["p_value"] < alpha))
        rows.append(row)
    return pd.DataFrame(rows, columns=RATE_TEST_COLUMNS)


def _counts_from_rates(rates: Mapping[Any, float], totals: Mapping[Any, int]) -> dict:
    return {g: int(round(float(rates[g]) * int(totals[g]))) for g in totals}


def _group_totals(groups: Any, order: Sequence) -> dict:
    values = groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    counts = pd.Series(values).value_counts(sort=False, dropna=False)
    lookup = {(k.item() if isinstance(k, np.generic) else k): int(v) for k, v in counts.items()}
    return {g: lookup[g] for g in order}


def impact_ratio_tests(
    scores: Any,
    groups: Any,
    tau: float,
    *,
    alpha: float = 0.05,
    small_share: float = 0.02,
    exclude_small: bool = False,
) -> pd.DataFrame:
    """Four-fifths check at threshold `tau` (selected = score > tau) with a test per group.

    Rates come from `fairviz.metrics.selection_rates`; see `rate_tests` for the columns.
    """
    from fairviz import metrics

    tau = float(tau)
    if not math.isfinite(tau):
        raise ValueError(f"tau must be a finite number; got {tau!r}")
    rates = metrics.selection_rates(scores, groups, tau)
    totals = _group_totals(groups, list(rates))
    return rate_tests(_counts_from_rates(rates, totals), totals, alpha=alpha,
                      small_share=small_share, exclude_small=exclude_small)


def scoring_rate_tests(
    scores: Any,
    groups: Any,
    *,
    alpha: float = 0.05,
    small_share: float = 0.02,
    exclude_small: bool = False,
) -> pd.DataFrame:
    """NYC Local Law 144 scoring-rate table (share scoring above the sample median) with tests.

    Rates come from `fairviz.metrics.scoring_rate_table`; see `rate_tests` for the columns
    (``rate`` is the LL144 scoring rate).
    """
    from fairviz import metrics

    table = metrics.scoring_rate_table(scores, groups)
    keys = [(g.item() if isinstance(g, np.generic) else g) for g in table["group"]]
    totals = {g: int(n) for g, n in zip(keys, table["n"])}
    rates = {g: float(r) for g, r in zip(keys, table["scoring_rate"])}
    return rate_tests(_counts_from_rates(rates, totals), totals, alpha=alpha,
                      small_share=small_share, exclude_small=exclude_small)


# ------------------------------------------------------------------------ permutation test
@dataclass(frozen=True)
class PermutationResult:
    """Permutation test of a group-gap metric.

    observed: the metric on the data; p_value: (1 + #{null >= observed}) / (1 + n_perm) (never 0);
    null_mean / null_std: of the metric under shuffled groups (the chance level);
    null_quantiles: {q: value} of that null distribution (e.g. {0.5: ..., 0.95: ...}): the band
    of values reachable by chance alone for these group sizes; null_values: (n_perm,) the draws.
    """

    metric: str
    observed: float
    p_value: float
    null_mean: float
    null_std: float
    null_quantiles: dict
    n_perm: int
    random_state: Any
    null_values: np.ndarray = field(repr=False, compare=False)

    @property
    def chance_level(self) -> float:
        """The 95 % quantile of the null (the top of the chance band), if computed, else the max."""
        return float(self.null_quantiles.get(0.95, np.max(self.null_values)))

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "observed": self.observed, "p_value": self.p_value,
            "null_mean": self.null_mean, "null_std": self.null_std,
            "null_quantiles": {str(q): v for q, v in self.null_quantiles.items()},
            "n_perm": self.n_perm,
        }


def _codes_by_appearance(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """Group codes (int64 (n,)) numbered in order of first appearance, and the number of groups.

    The one encoder numbers groups in sorted order; the permutation draws (which group is "1"
    in `fairviz.permute.relabel`) follow the order of appearance, so renumber to keep the
    published nulls reproducible.
    """
    codes, labels, _ = factorize_groups(groups, n, unused_categories="drop")
    first = np.full(len(labels), n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(labels))
    return rank[codes], len(labels)


def _check_permutation_args(metric: str, n_perm: Any, quantiles: Sequence[float]) -> None:
    if metric not in ("spdd", "speo"):
        raise ValueError(f"metric must be 'spdd' or 'speo'; got {metric!r}")
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer; got {n_perm!r}")
    for q in quantiles:
        if not 0.0 <= float(q) <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1]; got {q!r}")


def _finite_scores(scores: Any) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(x) == 0:
        raise ValueError("no rows to test")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN/inf; clean them first")
    return x


def _gap_statistic(metric: str, xs: np.ndarray, order: np.ndarray, labels: Any, counts: np.ndarray):
    """f(c) -> the metric for group codes ``c`` over the score-sorted rows, by the one step
    integral of `fairviz.metrics` (SPDD: the ECDF gap over the sorted scores; SPEO: the gap of
    the rates over the 2n sorted breakpoints min(score, label) and label of every row)."""
    n_groups = len(counts)
    if metric == "spdd":
        gap = _dp_gap_fn(counts)
        return lambda c: _integrate_gap(xs, c, n_groups, gap)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(y) != len(xs) or not np.all(np.isfinite(y)):
        raise ValueError("labels must be finite and as long as scores")
    ys = y[order]
    vals = np.concatenate([np.minimum(xs, ys), ys])
    by_value = np.argsort(vals, kind="stable")
    z = vals[by_value]
    rows = np.concatenate([np.arange(len(xs)), np.arange(len(xs))])[by_value]
    is_label = (by_value >= len(xs)).astype(np.intp)  # tag 2g: min(score, label); 2g + 1: label
    gap = _eo_gap_fn(counts)
    return lambda c: _integrate_gap(z, 2 * c[rows].astype(np.intp) + is_label, 2 * n_groups, gap)


def _shuffled_null(stat, c: np.ndarray, n_perm: int, random_state, progress) -> np.ndarray:
    """The statistic after each of ``n_perm`` successive in-place shuffles of ``c``."""
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    null = np.empty(n_perm, dtype=np.float64)
    step = max(1, -(-n_perm // 20)) if progress is not None else n_perm
    for r in range(n_perm):
        rng.shuffle(c)
        null[r] = stat(c)
        if progress is not None and ((r + 1) % step == 0 or r + 1 == n_perm):
            progress(r + 1, n_perm)
    return null


def permutation_test(
    scores: Any,
    groups: Any,
    labels: Any = None,
    metric: str = "spdd",
    *,
    n_perm: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    progress: Callable[[int, int], None] | None = None,
) -> PermutationResult:
    """Permutation test of SPDD (or SPEO, needs `labels`) under shuffled group labels.

    The statistic is the exact integral used by `fairviz.metrics.spdd` / `speo`
    (integral over tau of max_g - min_g of the group rates; W1 for two groups), computed by the
    same kernel. Cost: one sort, then O(n * n_groups) per permutation; SPDD with up to
    `FAST_PERM_MAX_GROUPS` groups takes `fairviz.permute`'s block sums over random relabelings
    instead (two groups: 1,000 permutations of 10⁶ rows in seconds, on two threads). See the
    module docstring for the exact schemes. ``progress(done, n_perm)`` is called as
    permutations finish. The smallest p-value is 1 / (n_perm + 1).
    """
    _check_permutation_args(metric, n_perm, quantiles)
    x = _finite_scores(scores)
    n = len(x)
    codes, n_groups = _codes_by_appearance(groups, n)
    if metric == "speo" and labels is None:
        raise ValueError("metric='speo' needs labels")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    c = codes[order].astype(np.uint8 if n_groups < 256 else np.int64)
    counts = np.bincount(codes, minlength=n_groups)
    if metric == "spdd" and n_groups <= FAST_PERM_MAX_GROUPS:
        observed = observed_spdd(xs, c, counts)
        null = spdd_null(xs, counts, int(n_perm), random_state, progress=progress)
    else:
        stat = _gap_statistic(metric, xs, order, labels, counts)
        observed = float(stat(c))
        null = _shuffled_null(stat, c, int(n_perm), random_state, progress)
    return _permutation_result(metric, observed, null, quantiles, random_state)


def _permutation_result(metric, observed, null, quantiles, random_state) -> PermutationResult:
    n_perm = len(null)
    tol = 1e-10 * max(1.0, abs(observed))
    p_value = (1.0 + np.count_nonzero(null >= observed - tol)) / (1.0 + n_perm)
    qs = {float(q): float(np.quantile(null, q)) for q in quantiles}
    return PermutationResult(
        metric=metric, observed=observed, p_value=float(p_value), null_mean=float(null.mean()),
        null_std=float(null.std(ddof=1)) if n_perm > 1 else 0.0, null_quantiles=qs,
        n_perm=int(n_perm), random_state=random_state if not isinstance(random_state, np.random.Generator) else None,
        null_values=null,
    )


# ------------------------------------------------------------------ bootstrap band of DP(tau)
@dataclass(frozen=True)
class DPBand:
    """Pointwise bootstrap band of DP(tau) on a grid of thresholds.

    taus (k,); value (k,) DP(tau) on the data; low / high (k,) the percentile band at `level`;
    n_boot resamples, resampled within each group (as `fairviz.metrics.bootstrap_ci` does).
    """

    taus: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    n_boot: int


def dp_band(
    curve: Any,
    group_counts: Mapping[Any, int] | Sequence[int],
    *,
    taus: Any = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> DPBand:
    """Pointwise percentile band of DP(tau) under the within-group bootstrap, from the curve alone.

    Resampling n_g rows with replacement inside group g makes the number of resampled rows above
    tau exactly Binomial(n_g, P(score > tau | g)), independently across groups. So at each tau the
    bootstrap distribution of DP(tau) = max_g - min_g of the resampled rates is drawn directly from
    those binomials: O(n_boot * n_groups * len(taus)), independent of the number of rows. (The band
    is pointwise: it shows how far each DP(tau) could move, not a band for the whole curve at once.)

    curve: `fairviz.metrics.DPCurve` (its ``rates_at``); group_counts: n per group in the order of
    ``curve.groups`` (a dict keyed by group, or a sequence); taus: default 201 points on [0, 1].
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    grid = np.linspace(0.0, 1.0, 201) if taus is None else np.asarray(taus, dtype=np.float64).reshape(-1)
    if isinstance(group_counts, Mapping):
        counts = np.array([int(group_counts[g]) for g in curve.groups], dtype=np.int64)
    else:
        counts = np.asarray(group_counts, dtype=np.int64).reshape(-1)
    rates = np.clip(np.asarray(curve.rates_at(grid), dtype=np.float64), 0.0, 1.0)  # (G, k)
    if rates.shape[0] != len(counts) or np.any(counts < 1):
        raise ValueError("group_counts must give n >= 1 for every group of the curve")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    hi = lo = None
    for g in range(len(counts)):
        draw = rng.binomial(counts[g], rates[g], size=(int(n_boot), len(grid))) / counts[g]
        hi = draw if hi is None else np.maximum(hi, draw)
        lo = draw if lo is None else np.minimum(lo, draw)
    dp = hi - lo
    alpha = (1.0 - level) / 2.0
    return DPBand(
        taus=grid,
        value=rates.max(axis=0) - rates.min(axis=0),
        low=np.quantile(dp, alpha, axis=0),
        high=np.quantile(dp, 1.0 - alpha, axis=0),
        level=float(level),
        n_boot=int(n_boot),
    )
