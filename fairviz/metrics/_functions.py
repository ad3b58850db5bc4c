"""The public one-call metrics: each prepares its inputs (`PreparedAudit`) and asks for one number.

Callers that need several numbers of the same data should `prepare` once instead.
"""

from __future__ import annotations

import pandas as pd

from fairviz.metrics._prepared import PreparedAudit, prepare
from fairviz.metrics._threshold import DPCurve, _check_grid, _spdd_fast
from fairviz.metrics._validate import _prepare


def spdd(scores, groups, grid: int | None = None) -> float:
    """Statistical parity distance: ∫₀¹ DP(τ) dτ, exactly (the default) or on a τ grid.

    scores: (n,) in [0, 1]; groups: (n,) any hashable values, at least two distinct.
    ``grid=None``: the exact integral of the step function DP(τ) (for two groups this equals
    the 1-Wasserstein distance between the group score distributions). ``grid=50``: the
    paper's evaluation, the mean of DP(τ) over τ ∈ {0, 0.02, …, 0.98} with a strict ``>``.
    Returns a float in [0, 1]. Cost: one sort, O(n log n).
    """
    if _check_grid(grid) is None:
        fast = _spdd_fast(scores, groups)  # two integer groups: check, pack and sort in one pass
        if fast is not None:
            return float(fast)
    return prepare(scores, groups).spdd(grid)


def speo(scores, labels, groups, grid: int | None = None) -> float:
    """Equal-opportunity distance: ∫₀¹ [max_g − min_g] P(Ŷ > τ | Y > τ, S = g) dτ.

    The threshold moves on the score and the label together. A group with no Y > τ counts as
    rate 0 at that τ. Exact by default (the rates are step functions of τ: counts of
    min(Ŷ, Y) > τ over counts of Y > τ per group, from one sort of the 2n breakpoints);
    ``grid=50`` gives the paper's mean over τ ∈ {0, 0.02, …, 0.98}.
    """
    _check_grid(grid)
    return PreparedAudit(_prepare(scores, groups, labels, need_labels=True)).speo(grid)


def dp_curve(scores, groups) -> DPCurve:
    """The exact DP(τ) step function and per-group selection-rate curves (one sort)."""
    return prepare(scores, groups).dp_curve()


def spdd_parts(scores, groups) -> dict:
    """Split SPDD by who is favoured: {group: area where its selection rate is the highest}.

    For two groups: ∫ max(DP₊, 0) dτ and ∫ max(DP₋, 0) dτ (the values sum to `spdd`). With
    more groups, DP(τ) on each interval goes to the group with the highest rate (shared
    equally on ties), so the values again sum to `spdd`.
    """
    return prepare(scores, groups).spdd_parts()


def selection_rates(scores, groups, tau) -> dict:
    """P(Ŷ > τ | S = g) for each group (strict ``>``), as {group: rate}."""
    return prepare(scores, groups).selection_rates(tau)


def impact_ratio(scores, groups, tau) -> dict:
    """Each group's selection rate at τ over the highest group's rate, as {group: ratio}.

    The four-fifths rule flags ratios below `FOUR_FIFTHS` (0.8). When no group has anyone above τ the ratio is
    undefined and every value is NaN.
    """
    return prepare(scores, groups).impact_ratio(tau)


def scoring_rate_table(scores, groups) -> pd.DataFrame:
    """NYC Local Law 144 style table: one row per group (pandas DataFrame).

    Columns: ``group``, ``n``, ``share`` (n / total), ``scoring_rate`` (share of the group
    scoring strictly above the median score of the full sample), ``impact_ratio`` (scoring
    rate over the highest group's), ``small_group`` (share < 2%; such groups may be excluded
    from the impact-ratio calculation under the LL144 rules).
    """
    return prepare(scores, groups).scoring_rate_table()
