"""Step functions and thresholds: ECDF and DP(τ) drawing points, axis ranges, the four-fifths
ranges and what happens at one τ (plain numbers in, plain numbers out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairviz.figures._base import DEFAULT_MAX_POINTS, FOUR_FIFTHS


def ecdf_points(scores, max_points: int = DEFAULT_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Exact points of the empirical CDF F(x) = P(score ≤ x), at most ``max_points`` (+2) of them.

    Returns ``(x, y)`` to draw as a step line (Plotly ``line_shape="hv"``): starting at (0, 0),
    ending at (1, 1) for scores in [0, 1]. With more scores than ``max_points`` the points are
    taken at evenly spaced ranks; each ``y`` is still the exact ECDF value at its ``x`` (ties
    included), so the drawing is off by at most 1/max_points vertically.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if s.size == 0:
        raise ValueError("ecdf_points needs at least one score")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    n = s.size
    if n <= max_points:
        x = np.unique(s)
    else:
        idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
        x = np.unique(s[idx])
    y = np.searchsorted(s, x, side="right") / n
    lo, hi = min(0.0, float(s[0])), max(1.0, float(s[-1]))
    x = np.concatenate([[lo], x, [hi]])
    y = np.concatenate([[0.0], y, [1.0]])
    return x, y


def step_points(edges, values, max_points: int = DEFAULT_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points to draw a step function (value ``values[i]`` on ``[edges[i], edges[i+1])``).

    Returns ``(x, y)`` for ``line_shape="hv"`` with ``y[-1] == y[-2]`` (the last step is drawn to
    the right edge). With more than ``max_points`` steps, the function is averaged over
    ``max_points`` equal-width bins: the area under the drawn curve equals the exact area (so a
    shaded DP(τ) still shows SPDD), narrow spikes are smoothed.
    """
    edges = np.asarray(edges, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if edges.size != values.size + 1:
        raise ValueError(
            f"a step function needs len(edges) == len(values) + 1, got {edges.size} and {values.size}"
        )
    if values.size == 0:
        raise ValueError("a step function needs at least one step")
    if values.size <= max_points:
        return edges.copy(), np.append(values, values[-1])
    widths = np.diff(edges)
    cum = np.concatenate([[0.0], np.cumsum(values * widths)])
    grid = np.linspace(edges[0], edges[-1], max_points + 1)
    cum_grid = np.interp(grid, edges, cum)  # the integral is piecewise linear between edges
    y = np.diff(cum_grid) / np.diff(grid)
    return grid, np.append(y, y[-1])


def score_range(lo: float, hi: float, *, step: float = 0.05, min_span: float = 0.2) -> tuple[float, float]:
    """An axis range for scores in [lo, hi]: padded by a step, rounded out to multiples of
    ``step``, inside [0, 1], and at least ``min_span`` wide (so a narrow score range is readable
    instead of squeezed into a corner of [0, 1])."""
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        return 0.0, 1.0
    a = max(0.0, np.floor(lo / step) * step - step)
    b = min(1.0, np.ceil(hi / step) * step + step)
    while b - a < min_span - 1e-12 and (a > 0 or b < 1):
        a, b = max(0.0, a - step / 2), min(1.0, b + step / 2)
    return round(a, 10), round(b, 10)


def resolve_range(x_range, lo: float, hi: float) -> tuple[float, float]:
    """The drawn x range: "auto" (`score_range` of the data range [lo, hi]), None or "full" ([0, 1]),
    or an explicit (low, high)."""
    if x_range is None or x_range == "full":
        return 0.0, 1.0
    if x_range == "auto":
        return score_range(lo, hi)
    a, b = x_range
    return float(a), float(b)


def curve_data_range(curve) -> tuple[float, float]:
    """The scores' range of a DP curve: its inner thresholds (where DP(τ) can change)."""
    t = np.asarray(curve.thresholds, dtype=np.float64)
    inner = t[1:-1]
    return (float(inner.min()), float(inner.max())) if inner.size else (0.0, 1.0)


def curve_area(curve) -> float:
    """∫ DP(τ) dτ of a DP curve, exactly (its SPDD)."""
    t = np.asarray(curve.thresholds, dtype=np.float64)
    return float(np.sum(np.asarray(curve.values, dtype=np.float64) * np.diff(t)))


def impact_ratio_violations(curve, threshold: float = FOUR_FIFTHS) -> list[tuple[float, float]]:
    """τ ranges where some group's impact ratio is under ``threshold`` (the four-fifths rule).

    The impact ratio of group g at τ is P(score > τ | g) / max_h P(score > τ | h). Where no group
    has anyone selected (max rate 0, e.g. τ above every score) the ratio is undefined and not a
    violation. Returns merged, sorted ``(τ0, τ1)`` half-open ranges ``[τ0, τ1)`` from the exact
    intervals of the curve.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    rates = np.asarray(curve.rates, dtype=np.float64)
    t = np.asarray(curve.thresholds, dtype=np.float64)
    top = rates.max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(top > 0, rates.min(axis=0) / np.where(top > 0, top, 1.0), 1.0)
    bad = (top > 0) & (low < threshold - 1e-12)
    if not bad.any():
        return []
    # run-length encode the violating intervals
    padded = np.concatenate([[False], bad, [False]]).astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    starts, stops = change[0::2], change[1::2]
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, stops)]


def merge_ranges(ranges: Sequence[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """Join ranges separated by less than ``min_gap`` (for drawing: fewer, visible rectangles)."""
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a - out[-1][1] < min_gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def tau_summary(curve, tau: float) -> dict[str, Any]:
    """What happens at one threshold τ, read off a precomputed curve (cheap: no scores needed).

    Returns ``{"tau", "dp", "rates": {group: P(score > τ | group)}, "impact_ratios": {group:
    rate / highest rate} (NaN where nobody is selected), "min_impact_ratio", "four_fifths_ok"}``.
    """
    tau = float(tau)
    if not np.isfinite(tau) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"τ must be in [0, 1], got {tau}")
    rates = np.asarray(curve.rates_at(np.array([tau])), dtype=np.float64)[:, 0]
    top = rates.max()
    ratios = rates / top if top > 0 else np.full_like(rates, np.nan)
    groups = list(curve.groups)
    min_ratio = float(np.nanmin(ratios)) if top > 0 else float("nan")
    return {
        "tau": tau,
        "dp": float(np.asarray(curve.at(np.array([tau])))[0]),
        "rates": {g: float(r) for g, r in zip(groups, rates)},
        "impact_ratios": {g: float(r) for g, r in zip(groups, ratios)},
        "min_impact_ratio": min_ratio,
        "four_fifths_ok": bool(top == 0 or min_ratio >= FOUR_FIFTHS - 1e-12),
    }
