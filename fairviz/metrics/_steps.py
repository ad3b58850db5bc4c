"""The step-function integral: ∫ gap(ECDF counts per group) dτ over sorted breakpoints."""

from __future__ import annotations

import numpy as np

from fairviz.metrics._sort import _CHUNK


def _integrate_gap(z: np.ndarray, code: np.ndarray, n_tags: int, gap_fn, weights: np.ndarray | None = None) -> float:
    """Σ_k gap(C[:, k])·(z[k+1] − z[k]) where C[t, k] = Σ of ``weights`` (default 1) over the
    entries with tag t among z[:k+1].

    Streams over the sorted entries in chunks (memory O(chunk · tags)).
    """
    n = len(z)
    carry = np.zeros((n_tags, 1))
    total = 0.0
    c = min(_CHUNK, max(n - 1, 1))
    cum = np.empty((n_tags, c))
    cols = np.arange(c)
    for s in range(0, n - 1, c):
        m = min(c, n - 1 - s)
        C = cum[:, :m]
        C.fill(0.0)
        C[code[s : s + m], cols[:m]] = 1.0 if weights is None else weights[s : s + m]
        np.cumsum(C, axis=1, out=C)
        C += carry
        carry[:, 0] = C[:, -1]
        gap = gap_fn(C)
        dz = z[s + 1 : s + m + 1] - z[s : s + m]
        total += float(np.einsum("i,i->", gap, dz))
    return total


def _dp_gap_fn(counts: np.ndarray):
    inv = (1.0 / counts.astype(np.float64))[:, None]

    def gap(C):
        F = C * inv  # ECDF per group; max F − min F = max rate − min rate
        return _spread(F)

    return gap


def _eo_gap_fn(counts: np.ndarray):
    nn = counts.astype(np.float64)[:, None]

    def gap(C):
        A = nn - C[0::2]  # #{min(Ŷ, Y) > τ} per group
        B = nn - C[1::2]  # #{Y > τ} per group: a whole count, and A = 0 wherever B = 0
        np.maximum(B, 1.0, out=B)
        return _spread(np.divide(A, B, out=A))

    return gap

def _spread(rows) -> np.ndarray:
    """max − min over a sequence of equal-length rows (elementwise, no axis-0 reduction)."""
    rows = list(rows)
    if len(rows) == 2:
        out = np.subtract(rows[0], rows[1])
        return np.abs(out, out=out)
    hi = rows[0].copy()
    lo = rows[0].copy()
    for r in rows[1:]:
        np.maximum(hi, r, out=hi)
        np.minimum(lo, r, out=lo)
    np.subtract(hi, lo, out=hi)
    return hi
