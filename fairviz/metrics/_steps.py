"""The one step-function integral: ∫ gap(ECDF counts per group) dτ over sorted breakpoints.

SPDD, SPEO (and their bootstrap and permutation replicates, on many groups) and the W1 of
each group to the pooled sample (`fairviz.groups`) are all this integral with another gap
function; `_block_dots` is the blockwise dot product that the two-group bootstrap and the
permutation null (`fairviz.permute`) share.
"""

from __future__ import annotations

import numpy as np

from fairviz.metrics._sort import _CHUNK


def _integrate_gap(z: np.ndarray, code: np.ndarray, n_tags: int, gap_fn, weights: np.ndarray | None = None):
    """Σ_k gap(C[:, k])·(z[k+1] − z[k]) where C[t, k] = Σ of ``weights`` (default 1) over the
    entries with tag t among z[:k+1].

    z: (n,) sorted values; code: (n,) their tags in [0, n_tags). ``gap_fn(C)`` maps the
    (n_tags, m) cumulative counts of a chunk to (m,) gaps (a float is returned) or (r, m)
    gaps ((r,) floats are returned). Streams over the entries in chunks (memory O(chunk · tags)).
    """
    n = len(z)
    # plain counts accumulate as integers (the same values, and a cumsum several times faster)
    dtype = np.int64 if weights is None else np.float64
    carry = np.zeros((n_tags, 1), dtype=dtype)
    total = 0.0
    # with many tags a chunk of counts (tags × chunk floats) would outgrow the cache
    c = min(_CHUNK if n_tags <= 8 else max(2048, (1 << 17) // n_tags), max(n - 1, 1))
    cum = np.empty((n_tags, c), dtype=dtype)
    cols = np.arange(c)
    for s in range(0, n - 1, c):
        m = min(c, n - 1 - s)
        C = cum[:, :m]
        C.fill(0)
        C[code[s : s + m], cols[:m]] = 1 if weights is None else weights[s : s + m]
        np.cumsum(C, axis=1, out=C)
        C += carry
        carry[:, 0] = C[:, -1]
        gap = gap_fn(C)
        dz = z[s + 1 : s + m + 1] - z[s : s + m]
        total = total + np.einsum("...i,i->...", gap, dz)
    return float(total) if np.ndim(total) == 0 else np.asarray(total, dtype=np.float64)


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
        B = nn - C[1::2]  # #{Y > τ} per group
        return _spread(_eo_rates(A, B))

    return gap

def _eo_rates(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """P(Ŷ > τ | Y > τ, g) = A / B from A = #{min(Ŷ, Y) > τ} and B = #{Y > τ} (float counts,
    same shape; A is overwritten). A group with no Y > τ counts as rate 0 (the paper's rule):
    B is a whole count and A = 0 wherever B = 0, so A / max(B, 1) gives 0 there."""
    np.maximum(B, 1.0, out=B)
    return np.divide(A, B, out=A)


def _pooled_gap_fn(counts: np.ndarray):
    """Gap |F_g − F_pooled| per group (rows of the result) for `_integrate_gap`."""
    inv = (1.0 / counts.astype(np.float64))[:, None]
    inv_n = 1.0 / float(counts.sum())

    def gap(C):
        F = C * inv
        F -= C.sum(axis=0) * inv_n
        return np.abs(F, out=F)

    return gap


def _block_dots(C: np.ndarray, X: np.ndarray, weights, BS: int, chunk: int) -> list[np.ndarray]:
    """Σ_j C[r, k·BS + j]·W[k, j] for each W in ``weights`` (None: plain sums), as (nb, B) arrays.

    C: (B, N) uint8 per-position counts or indicators, N = nb·BS; X: (≥B, ≥chunk) float
    scratch. Chunk by chunk so that the float copy of C stays in cache; einsum rather than
    matmul: OpenBLAS calls from two threads run one at a time here.
    """
    B, N = len(C), C.shape[1]
    out = [np.empty((N // BS, B)) for _ in weights]
    for a in range(0, N, chunk):
        m = min(chunk, N - a)
        blocks = slice(a // BS, (a + m) // BS)
        Xc = X[:B, :m]
        np.copyto(Xc, C[:, a : a + m])
        X3 = Xc.reshape(B, m // BS, BS)
        for o, W in zip(out, weights):
            o[blocks] = X3.sum(axis=2).T if W is None else np.einsum("bkj,kj->kb", X3, W[blocks])
    return out


def _two_group_signs(T0: np.ndarray, T1: np.ndarray, n0: float, n1: float):
    """Two groups over sorted positions in blocks: E = n0·n1·(F0 − F1) before each block and
    the sign of E on it, for (nb, B) block counts T0, T1 of the two groups (B labelings or
    resamples). Inside a block E stays in [E0 − n0·T1, E0 + n1·T0]; where that range does not
    straddle 0, |E| = sign·E on the whole block. Returns (E0, sign (±1, 0 where it straddles),
    (block, labeling) indices of the straddling blocks, to be summed position by position)."""
    U = n1 * T0 - n0 * T1  # E gained over each block (exact integers)
    E0 = np.cumsum(U, axis=0) - U
    pos = E0 - n0 * T1 >= 0.0
    neg = E0 + n1 * T0 <= 0.0
    return E0, np.where(pos, 1.0, np.where(neg, -1.0, 0.0)), np.nonzero(~(pos | neg))


def _add_abs_steps(acc: np.ndarray, rows: np.ndarray, W: np.ndarray, E_start: np.ndarray, dz: np.ndarray) -> None:
    """acc[rows[p]] += Σ_j |E_start[p] + Σ_{i≤j} W[p, i]|·dz[p, j] (W (P, BS) is overwritten)."""
    np.cumsum(W, axis=1, out=W)
    W += E_start[:, None]
    np.abs(W, out=W)
    np.add.at(acc, rows, np.einsum("pj,pj->p", W, dz))


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
