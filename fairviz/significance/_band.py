"""Simultaneous confidence band of DP(τ) from the curve alone (per-group DKW bands).

Why not a bootstrap band: DP(τ) = max_g − min_g of the groups' selection rates is a distance at
each τ, so its resampled values sit above the measured one, which sits above the truth; where a
model is fair at τ (DP(τ) = 0) a percentile band never contains 0 (docs/STATISTICS.md measures
it). The band here is a deterministic bound with a finite-sample guarantee instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DPBand:
    """Simultaneous confidence band of DP(τ) on a grid of thresholds.

    taus (k,); value (k,) DP(τ) on the data; low / high (k,) the band: with probability at least
    ``level`` the true DP(τ) lies in [low, high] at every τ of the grid at once. radius
    (n_groups,): each group's DKW half-width in rate units, in the order of ``curve.groups``.
    """

    taus: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    radius: np.ndarray

    @property
    def label(self) -> str:
        """How a figure names the band."""
        return f"DP(τ) {self.level:.0%} band (all τ at once; DKW, exact for any sample size)"


def dkw_radius(n: Any, alpha: float) -> np.ndarray:
    """Half-width ε of the two-sided Dvoretzky–Kiefer–Wolfowitz band with Massart's constant:
    P(sup_τ |F̂_n(τ) − F(τ)| > ε) ≤ 2·exp(−2nε²) = alpha, for any distribution (ties included)
    and any n ≥ 1. n: group sizes (any shape); returns ε (same shape), capped at 1."""
    n = np.asarray(n, dtype=np.float64)
    return np.minimum(np.sqrt(math.log(2.0 / alpha) / (2.0 * n)), 1.0)


def dp_band(
    curve: Any,
    group_counts: Mapping[Any, int] | Sequence[int],
    *,
    taus: Any = None,
    level: float = 0.95,
) -> DPBand:
    """Band that contains the true DP(τ) at every τ at once with probability ≥ ``level``.

    Each group's selection rate P(score > τ | g) = 1 − F_g(τ) lies within ±ε_g of the measured
    rate at every τ (DKW); the groups are independent samples of fixed sizes, so with each group
    at 1 − level^(1/G) (Šidák) all G bands hold together with probability ≥ ``level``. On that
    event DP(τ) = max_g − min_g of the true rates lies in [max(0, max_g L_g − min_g U_g),
    max_g U_g − min_g L_g], L and U the group bands clipped to [0, 1]. Distribution-free, no
    resampling, O(G·len(taus)); ε_g ≈ 1.5/√n_g for two groups at 95 %, so the band is wide for
    small groups (it is honest about the whole curve, not one τ).

    curve: `fairviz.metrics.DPCurve` (its ``rates_at``); group_counts: n per group in the order of
    ``curve.groups`` (a dict keyed by group, or a sequence); taus: default 201 points on [0, 1].
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    grid = np.linspace(0.0, 1.0, 201) if taus is None else np.asarray(taus, dtype=np.float64).reshape(-1)
    if isinstance(group_counts, Mapping):
        counts = np.array([int(group_counts[g]) for g in curve.groups], dtype=np.int64)
    else:
        counts = np.asarray(group_counts, dtype=np.int64).reshape(-1)
    rates = np.clip(np.asarray(curve.rates_at(grid), dtype=np.float64), 0.0, 1.0)  # (G, k)
    if rates.shape[0] != len(counts) or np.any(counts < 1):
        raise ValueError("group_counts must give n >= 1 for every group of the curve")
    alpha_g = -math.expm1(math.log(level) / len(counts))  # 1 − level^(1/G), without cancellation
    r = dkw_radius(counts, alpha_g)
    lo_g = np.clip(rates - r[:, None], 0.0, 1.0)
    hi_g = np.clip(rates + r[:, None], 0.0, 1.0)
    return DPBand(
        taus=grid,
        value=rates.max(axis=0) - rates.min(axis=0),
        low=np.maximum(lo_g.max(axis=0) - hi_g.min(axis=0), 0.0),
        high=hi_g.max(axis=0) - lo_g.min(axis=0),
        level=float(level),
        radius=r,
    )
