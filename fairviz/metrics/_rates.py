"""Selection-rate helpers: the τ check, impact ratios, the four-fifths and small-group thresholds."""

from __future__ import annotations

import math

import numpy as np

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


def _ratios(rates: np.ndarray) -> np.ndarray:
    top = rates.max()
    if top <= 0:
        return np.full(len(rates), math.nan)
    return rates / top
