"""Threshold-free metrics SPDD and SPEO (exact or on the paper's τ grid) and the DP(τ) curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairviz._jit import njit
from fairviz.metrics._sort import _pack_sign, _split_sorted
from fairviz.metrics._steps import _eo_rates, _spread
from fairviz.metrics._validate import _Data, _raise_bad_values, _to_float_array
from fairviz.metrics._w1 import _w1


def _w1_from_sorted(z: np.ndarray, code: np.ndarray) -> float:
    """W1 of two groups from the scores sorted by value (z (n,)) and their 0/1 codes."""
    a = z[code == 0]
    vb = np.negative(z[code == 1])  # −(group 1 ascending): the layout `_w1` takes (see `_split_sorted`)
    return _w1(a, vb)


def _spdd_fast(scores, groups) -> float | None:
    """SPDD for two integer groups {0, 1}: validation and packing in one pass, one sort, W1."""
    if not isinstance(groups, np.ndarray) or groups.dtype.kind not in "biu" or groups.ndim != 1:
        return None
    x = _to_float_array(scores, "scores")
    if len(x) != len(groups) or len(x) < 2:
        return None
    key, ok, groups01 = _pack_sign(x, groups)
    if not ok:
        _raise_bad_values(x, "scores")
    if not groups01:
        return None
    a, vb = _split_sorted(key, groups)
    if len(a) == 0 or len(vb) == 0:
        return None  # one group only: the general path explains
    return _w1(a, vb)


def _check_grid(grid) -> int | None:
    if grid is None:
        return None
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be None (exact integral) or a positive integer such as 50, got {grid!r}")
    return int(grid)


def _grid_above(values: np.ndarray, codes: np.ndarray, n_groups: int, grid: int) -> np.ndarray:
    """(G, grid) counts of values > τ_j per group, τ_j = j / grid; O(n), no sort."""
    taus = np.arange(grid) / grid
    hist = np.zeros((n_groups, grid + 1), dtype=np.int64)
    _grid_histogram(np.ascontiguousarray(values, dtype=np.float64), np.ascontiguousarray(codes), taus, hist)
    suffix = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # suffix[:, j] = #{b >= j}
    return suffix[:, 1:].astype(np.float64)  # column j: #{b >= j + 1} = #{v > τ_j}


@njit
def _grid_histogram(values, codes, taus, hist):
    """hist[code, b] += 1 with b = #{τ_j < v} for each value v: the estimate ⌈v·grid⌉, then
    moved until τ_{b−1} < v ≤ τ_b by exact comparisons with the τ's themselves (as a binary
    search in ``taus`` would find it, but one pass)."""
    grid = taus.shape[0]
    for i in range(values.shape[0]):
        v = values[i]
        b = min(max(int(np.ceil(v * grid)), 0), grid)
        while b > 0 and not taus[b - 1] < v:
            b -= 1
        while b < grid and taus[b] < v:
            b += 1
        hist[codes[i], b] += 1


def _spdd_grid(d: _Data, grid: int) -> float:
    rates = _grid_above(d.x, d.codes, d.n_groups, grid) / d.counts[:, None]
    return float(np.mean(rates.max(axis=0) - rates.min(axis=0)))


def _speo_grid(d: _Data, grid: int) -> float:
    A = _grid_above(np.minimum(d.x, d.y), d.codes, d.n_groups, grid)
    B = _grid_above(d.y, d.codes, d.n_groups, grid)
    r = _eo_rates(A, B)
    return float(np.mean(r.max(axis=0) - r.min(axis=0)))


@dataclass(frozen=True, eq=False)
class DPCurve:
    """The exact step function DP(τ) on [0, 1].

    ``thresholds`` (k+1,): interval edges, increasing, ``[0] = 0.0``, ``[-1] = 1.0`` (the
    interior edges are the distinct scores in (0, 1)). ``values`` (k,): DP(τ) for τ in
    ``[thresholds[i], thresholds[i+1])``. ``rates`` (n_groups, k): P(Ŷ > τ | S = g) on each
    interval, rows in the order of ``groups``. DP(τ) = 0 outside [0, 1).
    """

    thresholds: np.ndarray
    values: np.ndarray
    groups: tuple
    rates: np.ndarray

    def _index(self, tau) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        if np.isnan(t).any():
            raise ValueError("tau contains NaN")
        i = np.searchsorted(self.thresholds, t, side="right") - 1
        inside = (t >= 0.0) & (t < 1.0)
        return t, np.clip(i, 0, len(self.values) - 1), inside

    def at(self, tau) -> np.ndarray:
        """DP at each τ (array-like or scalar) -> float64 array of the same length."""
        t, i, inside = self._index(tau)
        return np.where(inside, self.values[i], 0.0)

    def rates_at(self, tau) -> np.ndarray:
        """Selection rates P(Ŷ > τ | g) -> (n_groups, len(tau)); 1 below 0, 0 from 1 on."""
        t, i, inside = self._index(tau)
        out = self.rates[:, i]
        return np.where(inside[None, :], out, np.where(t[None, :] < 0.0, 1.0, 0.0))

    def integral(self) -> float:
        """∫₀¹ DP(τ) dτ (= `spdd`)."""
        return float(np.einsum("i,i->", self.values, np.diff(self.thresholds)))


def _curve_from_sorted(z: np.ndarray, code: np.ndarray, d: _Data) -> DPCurve:
    """The DP(τ) curve of ``d`` from its scores sorted by value (z (n,)) and their codes."""
    n = len(z)
    last = np.empty(n, dtype=bool)
    np.not_equal(z[1:], z[:-1], out=last[:-1])
    last[-1] = True
    distinct = bool(last.all())  # the usual case for continuous scores: no gather needed
    ends = None if distinct else np.flatnonzero(last)
    vals = z if distinct else z[ends]
    k = int(np.searchsorted(vals, 1.0, side="left"))  # left edges are the distinct values < 1
    G = d.n_groups
    prepend = k == 0 or vals[0] > 0.0
    off = int(prepend)
    rates = np.empty((G, k + off))
    hit = np.empty(n if not distinct else k, dtype=bool)
    cum = None if distinct else np.empty(n)
    for g in range(G):
        row = rates[g, off:]
        if distinct:  # C_g at sorted position i = #{group g among the first i + 1}
            np.equal(code[:k], g, out=hit)
            np.cumsum(hit, out=row, dtype=np.float64)
        else:
            np.equal(code, g, out=hit)
            np.cumsum(hit, out=cum, dtype=np.float64)
            np.take(cum, ends[:k], out=row)
        row *= -1.0 / float(d.counts[g])
        row += 1.0
    if prepend:
        rates[:, 0] = 1.0
    thresholds = np.empty(k + off + 1)
    thresholds[0] = 0.0
    thresholds[off : k + off] = vals[:k]
    thresholds[-1] = 1.0
    values = _spread(rates)
    return DPCurve(thresholds=thresholds, values=values, groups=d.labels, rates=rates)


def _parts(curve: DPCurve) -> dict:
    w = np.diff(curve.thresholds)
    rates = curve.rates
    top = rates[0].copy()
    for r in rates[1:]:
        np.maximum(top, r, out=top)
    winners = [r == top for r in rates]
    n_win = np.zeros(len(top))
    for m in winners:
        n_win += m
    area = curve.values * w / n_win  # DP on each interval, shared by the groups at the top
    return {g: float(np.einsum("i,i->", m.astype(np.float64), area)) for g, m in zip(curve.groups, winners)}
