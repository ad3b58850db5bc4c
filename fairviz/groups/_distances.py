"""Exact W1 between groups: pairwise, and of each group to the pooled sample."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from fairviz.metrics._steps import _dp_gap_fn, _integrate_gap, _pooled_gap_fn


def w1_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two samples given **sorted** (ascending).

    W1 = ∫ |F_a(x) − F_b(x)| dx over the merged sample: a stable sort of the two concatenated
    sorted runs (timsort: linear time), then `fairviz.metrics`' step integral of the ECDF gap,
    O(n_a + n_b). Equal to `scipy.stats.wasserstein_distance(a, b)` (ties: zero-width steps).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("W1 needs two non-empty samples")
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")
    sample = (order >= len(a)).astype(np.intp)  # 0: a, 1: b
    return _integrate_gap(both[order], sample, 2, _dp_gap_fn(np.array([len(a), len(b)])))


def _split_sorted(xs: np.ndarray, codes_sorted: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Per-group sorted samples from score-sorted rows (stable counting sort on the codes)."""
    idx = np.argsort(codes_sorted.astype(np.int16 if n_groups < 2**15 else np.int64), kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes_sorted, minlength=n_groups))]
    by_group = xs[idx]
    return [by_group[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


def pairwise_w1(samples: Sequence[np.ndarray], *, presorted: bool = False) -> np.ndarray:
    """(G, G) symmetric matrix of exact W1 between samples (zero diagonal).

    Cost O((G − 1) · n) after sorting (each sample is merged with every other once).
    """
    groups = [np.asarray(s, dtype=np.float64) if presorted else np.sort(np.asarray(s, dtype=np.float64))
              for s in samples]
    k = len(groups)
    out = np.zeros((k, k), dtype=np.float64)
    for i, j in combinations(range(k), 2):
        out[i, j] = out[j, i] = w1_sorted(groups[i], groups[j])
    return out


def w1_to_pooled(xs: np.ndarray, codes_sorted: np.ndarray, n_groups: int) -> np.ndarray:
    """(G,) exact W1 of each group to the pooled sample, from score-sorted rows and their codes.

    ∫ |F_g − F_pooled| over the pooled sorted values (the step integral of `fairviz.metrics`),
    O(G · n); NaN for a group without rows.
    """
    counts = np.bincount(codes_sorted, minlength=n_groups)
    out = np.full(n_groups, np.nan)
    present = np.flatnonzero(counts)
    if len(xs) < 2:
        out[present] = 0.0
        return out
    lut = np.full(n_groups, -1, dtype=np.intp)
    lut[present] = np.arange(len(present))
    out[present] = _integrate_gap(xs, lut[codes_sorted], len(present), _pooled_gap_fn(counts[present]))
    return out

