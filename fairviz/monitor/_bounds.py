"""Anytime-valid bounds on fairness gaps from per-group score counts (pure numpy, vectorised).

Every function takes arrays with optional leading "batch" axes (``...``), so the same code serves
one monitor state and thousands of simulated streams at once.

The one probabilistic ingredient is the time-uniform Dvoretzky–Kiefer–Wolfowitz inequality of
Howard & Ramdas (Bernoulli 28(3), 2022): for i.i.d. draws with CDF F, with probability at least
1 − α, for every t ≥ 1 at once,

    sup_x |F̂_t(x) − F(x)| ≤ 0.85 · sqrt((log log(e·t) + 0.8 · log(1612 / α)) / t).

Applied to every group with α/k each, all groups' survival functions S_g(τ) = P(score > τ | g)
lie in the bands Ŝ_g ± r_g at every threshold and every moment together, with probability at
least 1 − α. Everything below is deterministic arithmetic on those bands, so one α covers SPDD
and the selection-rate gap at every τ, at every look.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = [
    "dkw_radius",
    "survival",
    "spdd_estimate",
    "spdd_bounds",
    "rate_gap",
    "fixed_spdd_z",
    "fixed_rate_z",
    "z_critical",
]

_HR_SCALE, _HR_WEIGHT, _HR_CONST = 0.85, 0.8, 1612.0


def dkw_radius(n, alpha: float) -> np.ndarray:
    """Half-width of the Howard–Ramdas time-uniform DKW band after `n` draws (any shape of
    counts) at error level `alpha`; 1.0 (no information) where n = 0. Values in (0, 1]."""
    n = np.asarray(n, dtype=np.float64)
    t = np.maximum(n, 1.0)
    r = _HR_SCALE * np.sqrt((np.log(np.log(np.e * t)) + _HR_WEIGHT * np.log(_HR_CONST / alpha)) / t)
    return np.where(n > 0, np.minimum(r, 1.0), 1.0)


def survival(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T, n)`` from binned counts.

    counts: (..., k, B + 1) integers; bin 0 holds scores equal to 0, bin b ≥ 1 holds scores in
    ((b − 1)/B, b/B]. Returns T (..., k, B + 1) float64 with T[..., g, j] = share of group g's
    scores above j/B (exact: the grid points are never inside a bin), 0 for an empty group, and
    n (..., k) the group sizes.
    """
    counts = np.asarray(counts)
    n = counts.sum(axis=-1)
    above = n[..., None] - np.cumsum(counts, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(n[..., None] > 0, above / np.maximum(n, 1)[..., None], 0.0)
    return t, n


def _per_column(n, like: np.ndarray) -> np.ndarray:
    """Group sizes (..., k) or (..., k, m) as (..., k, m) float64, shaped like `like`."""
    n = np.asarray(n, dtype=np.float64)
    return np.broadcast_to(n if n.ndim == like.ndim else n[..., None], like.shape)


def _spread(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """max − min over the group axis (-2) of `values` (..., k, m), using only `seen` groups
    ((..., k) or (..., k, m)); NaN where fewer than two groups are seen."""
    s = np.broadcast_to(seen if seen.ndim == values.ndim else seen[..., None], values.shape)
    hi = np.where(s, values, -np.inf).max(axis=-2)
    lo = np.where(s, values, np.inf).min(axis=-2)
    return np.where(s.sum(axis=-2) >= 2, hi - lo, np.nan)


def spdd_estimate(t: np.ndarray, n: np.ndarray) -> np.ndarray:
    """SPDD of the binned data, (...): each score stands at the middle of its bin (0 for bin 0),
    so this equals `metrics.spdd` of those representatives exactly. Each score moves by at most
    h/2 (h = 1/B), so it differs from SPDD of the raw scores by at most h for two groups (W1 and
    the triangle inequality) and k·h for k groups (DP moves by at most 2·max_g |ΔS_g|)."""
    b = t.shape[-1] - 1
    h = 1.0 / b
    gap = _spread(t[..., :-1], n > 0)  # (..., B): the gap on each step between representatives
    w = np.full(b, h)
    w[0] = h / 2  # from 0 to the first midpoint h/2
    return np.einsum("...j,j->...", gap, w)


def spdd_bounds(t: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Anytime-valid (lower, upper) bounds on the population SPDD, each (...).

    On cell [j/B, (j+1)/B] every S_g lies between S_g((j+1)/B) and S_g(j/B) (it is
    non-increasing), and those lie within T ± r. So DP(τ) on the cell is at least
    max_g L_g − min_g U_g and at most max_g U_g − min_g L_g (bands clipped to [0, 1]); the bounds
    integrate these. A group with no data has the band [0, 1]: it cannot raise the lower bound,
    so the lower bound (the test) is valid from the first two groups on.
    """
    k = t.shape[-2]
    b = t.shape[-1] - 1
    r = dkw_radius(n, alpha / k)[..., None]
    low_band = np.clip(t[..., 1:] - r, 0.0, 1.0)  # (..., k, B): L_g on each cell
    up_band = np.clip(t[..., :-1] + r, 0.0, 1.0)
    lower = np.maximum(low_band.max(axis=-2) - up_band.min(axis=-2), 0.0).sum(axis=-1) / b
    upper = (up_band.max(axis=-2) - low_band.min(axis=-2)).sum(axis=-1) / b
    return lower, upper


def rate_gap(above: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection-rate gap at thresholds: ``(estimate, lower, upper)``, each (..., m).

    above: (..., k, m) counts of rows above τ per group and threshold; n: (..., k) group sizes,
    or (..., k, m) when each threshold has its own rows (the qualified rows of EO(τ)). The
    estimate (max − min of the observed rates) is NaN with fewer than two groups seen; the bounds
    use per-group bands like `spdd_bounds` (for DP, the very same event: no extra α).
    """
    above = np.asarray(above, dtype=np.float64)
    k = above.shape[-2]
    nn = _per_column(n, above)
    rate = np.where(nn > 0, above / np.maximum(nn, 1.0), 0.0)
    r = dkw_radius(nn, alpha / k)
    lo_b, up_b = np.clip(rate - r, 0.0, 1.0), np.clip(rate + r, 0.0, 1.0)
    lower = np.maximum(lo_b.max(axis=-2) - up_b.min(axis=-2), 0.0)
    upper = up_b.max(axis=-2) - lo_b.min(axis=-2)
    return _spread(rate, nn > 0), lower, upper


def z_critical(level: float) -> float:
    """One-sided normal quantile z with P(Z > z) = level."""
    return NormalDist().inv_cdf(1.0 - level)


def fixed_spdd_z(counts: np.ndarray, epsilon: float) -> np.ndarray:
    """The naive fixed-sample statistic for H0 "SPDD ≤ ε", (...): (SPDD − ε) / se with
    se² = σ²_a/n_a + σ²_b/n_b for the groups a, b with the highest and lowest mean score
    (the delta-method error of a mean difference; right for groups whose score distributions do
    not cross). Only valid at one planned sample size; `z > z_critical(α)` rejects. NaN with
    fewer than two groups of 2+ rows."""
    counts = np.asarray(counts)
    b = counts.shape[-1] - 1
    reps = np.concatenate([[0.0], (np.arange(1, b + 1) - 0.5) / b])
    t, n = survival(counts)
    nn = np.maximum(n, 1)
    mean = counts @ reps / nn
    var = np.maximum(counts @ reps**2 / nn - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    seen = n >= 2
    a = np.where(seen, mean, -np.inf).argmax(axis=-1)[..., None]
    c = np.where(seen, mean, np.inf).argmin(axis=-1)[..., None]
    se2 = (np.take_along_axis(var / nn, a, -1) + np.take_along_axis(var / nn, c, -1))[..., 0]
    est = spdd_estimate(t, np.where(seen, n, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se2 > 0, (est - epsilon) / np.sqrt(se2), np.where(est > epsilon, np.inf, -np.inf))
    return np.where(seen.sum(axis=-1) >= 2, z, np.nan)


def fixed_rate_z(above: np.ndarray, n: np.ndarray, epsilon: float) -> np.ndarray:
    """The naive fixed-sample two-proportion statistic for H0 "rate gap ≤ ε" at each τ,
    (..., m): (gap − ε) / se between the groups with the highest and lowest rate (n as in
    `rate_gap`)."""
    above = np.asarray(above, dtype=np.float64)
    nn = _per_column(n, above)
    seen = nn > 0
    p = np.where(seen, above / np.maximum(nn, 1.0), 0.0)
    a = np.where(seen, p, -np.inf).argmax(axis=-2)[..., None, :]
    c = np.where(seen, p, np.inf).argmin(axis=-2)[..., None, :]
    v = p * (1 - p) / np.maximum(nn, 1.0)
    pa, pc = np.take_along_axis(p, a, -2)[..., 0, :], np.take_along_axis(p, c, -2)[..., 0, :]
    se2 = np.take_along_axis(v, a, -2)[..., 0, :] + np.take_along_axis(v, c, -2)[..., 0, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (pa - pc - epsilon) / np.sqrt(se2)
    two = seen.sum(axis=-2) >= 2
    return np.where(two, np.where(se2 > 0, z, np.where(pa - pc > epsilon, np.inf, -np.inf)), np.nan)
