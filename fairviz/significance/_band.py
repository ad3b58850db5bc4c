"""Pointwise bootstrap band of DP(τ) from the curve alone (binomial draws per group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


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

