"""Selection rates at a threshold, impact ratios and the LL144 scoring-rate table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairviz.metrics._validate import _Data, _prepare

_SMALL_GROUP_SHARE = 0.02
#: The four-fifths rule: an impact ratio below this flags adverse impact (EEOC Uniform Guidelines).
FOUR_FIFTHS = 0.8


def _check_tau(tau) -> float:
    try:
        t = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a number (a threshold on the score), got {tau!r}") from None
    if not math.isfinite(t):
        raise ValueError(f"tau must be finite, got {tau!r}")
    return t


def _rates_at(d: _Data, tau: float) -> np.ndarray:
    above = np.bincount(d.codes, weights=(d.x > tau), minlength=d.n_groups)
    return above / d.counts


def selection_rates(scores, groups, tau) -> dict:
    """P(Ŷ > τ | S = g) for each group (strict ``>``), as {group: rate}."""
    t = _check_tau(tau)
    d = _prepare(scores, groups)
    return {g: float(r) for g, r in zip(d.labels, _rates_at(d, t))}


def _ratios(rates: np.ndarray) -> np.ndarray:
    top = rates.max()
    if top <= 0:
        return np.full(len(rates), math.nan)
    return rates / top


def impact_ratio(scores, groups, tau) -> dict:
    """Each group's selection rate at τ over the highest group's rate, as {group: ratio}.

    The four-fifths rule flags ratios below `FOUR_FIFTHS` (0.8). When no group has anyone above τ the ratio is
    undefined and every value is NaN.
    """
    t = _check_tau(tau)
    d = _prepare(scores, groups)
    return {g: float(r) for g, r in zip(d.labels, _ratios(_rates_at(d, t)))}


def scoring_rate_table(scores, groups):
    """NYC Local Law 144 style table: one row per group (pandas DataFrame).

    Columns: ``group``, ``n``, ``share`` (n / total), ``scoring_rate`` (share of the group
    scoring strictly above the median score of the full sample), ``impact_ratio`` (scoring
    rate over the highest group's), ``small_group`` (share < 2%; such groups may be excluded
    from the impact-ratio calculation under the LL144 rules).
    """
    d = _prepare(scores, groups)
    med = float(np.median(d.x))
    rates = _rates_at(d, med)
    share = d.counts / d.n
    return pd.DataFrame(
        {
            "group": list(d.labels),
            "n": d.counts.astype(np.int64),
            "share": share,
            "scoring_rate": rates,
            "impact_ratio": _ratios(rates),
            "small_group": share < _SMALL_GROUP_SHARE,
        }
    )

