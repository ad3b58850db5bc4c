"""Rate tables with a test per group: the four-fifths check at τ and NYC LL144's scoring rates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairviz import metrics
from fairviz.metrics._rates import FOUR_FIFTHS

#: Fisher's exact test is used when any expected count of the 2x2 table is below this.
FISHER_MIN_EXPECTED = 5.0


# ------------------------------------------------------------------------ proportion tests
def two_proportion_ztest(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Two-sided pooled two-proportion z-test of p1 == p2; returns (z, p_value).

    z = (x1/n1 - x2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2). When the
    pooled proportion is 0 or 1 there is no difference to test: (0.0, 1.0).
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    p = (x1 + x2) / (n1 + n2)
    var = p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return float(z), float(min(1.0, math.erfc(abs(z) / math.sqrt(2.0))))  # 2·P(N(0, 1) > |z|)


def _check_counts(x: int, n: int) -> None:
    if n <= 0 or x < 0 or x > n:
        raise ValueError(f"need 0 <= selected <= n and n >= 1; got selected={x}, n={n}")


def compare_proportions(x1: int, n1: int, x2: int, n2: int, *, min_expected: float = FISHER_MIN_EXPECTED) -> dict:
    """Test group 1 (x1 of n1 selected) against group 2 (x2 of n2), picking the test.

    Returns {"test": "z" | "fisher", "statistic": z or the odds ratio, "p_value": two-sided,
    "min_expected": smallest expected cell count}. Fisher's exact test when that count is below
    `min_expected` (5 by default, the usual rule of thumb), else the pooled z-test.
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=np.int64)
    total = n1 + n2
    col = table.sum(axis=0)
    expected = np.outer([n1, n2], col) / total
    min_exp = float(expected.min())
    if min_exp < min_expected:
        from scipy.stats import fisher_exact  # noqa: PLC0415 - scipy.stats takes ~1 s to import; only small counts need it

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


def _tests_of_rates(rates: Mapping[Any, float], totals: Mapping[Any, int], alpha: float, small_share: float,
                    exclude_small: bool) -> pd.DataFrame:
    """`rate_tests` from rates per group (selected counts = rate × n, rounded)."""
    selected = {g: int(round(float(rates[g]) * int(totals[g]))) for g in totals}
    return rate_tests(selected, totals, alpha=alpha, small_share=small_share, exclude_small=exclude_small)


def _group_totals(groups: Any, order: Sequence) -> dict:
    values = groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    counts = pd.Series(values).value_counts(sort=False, dropna=False)
    lookup = {(k.item() if isinstance(k, np.generic) else k): int(v) for k, v in counts.items()}
    return {g: lookup[g] for g in order}


def impact_ratio_tests(scores: Any, groups: Any, tau: float, *, alpha: float = 0.05, small_share: float = 0.02,
                       exclude_small: bool = False) -> pd.DataFrame:
    """Four-fifths check at threshold `tau` (selected = score > tau) with a test per group.

    Rates come from `fairviz.metrics.selection_rates`; see `rate_tests` for the columns.
    """
    tau = float(tau)
    if not math.isfinite(tau):
        raise ValueError(f"tau must be a finite number; got {tau!r}")
    rates = metrics.selection_rates(scores, groups, tau)
    return _tests_of_rates(rates, _group_totals(groups, list(rates)), alpha, small_share, exclude_small)


def scoring_rate_tests(scores: Any, groups: Any, *, alpha: float = 0.05, small_share: float = 0.02,
                       exclude_small: bool = False) -> pd.DataFrame:
    """NYC Local Law 144 scoring-rate table (share scoring above the sample median) with tests.

    Rates come from `fairviz.metrics.scoring_rate_table`; see `rate_tests` for the columns
    (``rate`` is the LL144 scoring rate).
    """
    table = metrics.scoring_rate_table(scores, groups)
    keys = [(g.item() if isinstance(g, np.generic) else g) for g in table["group"]]
    totals = {g: int(n) for g, n in zip(keys, table["n"])}
    rates = {g: float(r) for g, r in zip(keys, table["scoring_rate"])}
    return _tests_of_rates(rates, totals, alpha, small_share, exclude_small)

