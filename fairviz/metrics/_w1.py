"""Two-group SPDD: W1 between two sorted samples by quantile matching, in one pass."""

from __future__ import annotations

import numpy as np

from fairviz.metrics._sort import _CHUNK

_W1_BLOCK = 1024  # rows of group a per block in the blockwise W1 …
_W1_SUB = 32  # … and per sub-block where a block's quantile functions may cross
# finer blocks at both ends, where the two quantile functions start and end close together
_EDGE_CUTS = np.unique(np.ceil(1.2 ** np.arange(38)).astype(np.int64))


def _w1(a: np.ndarray, vb: np.ndarray, block: int = _W1_BLOCK, sub: int = _W1_SUB) -> float:
    """W1 between group a (>= 0, ascending) and b = −vb (vb <= 0, b ascending).

    Quantile matching: W1 = ∫₀¹ |Qa(u) − Qb(u)| du. In units of 1/(na·nb) the breakpoints are
    A_i = i·nb and B_j = j·na; every interval of the merged breakpoints is charged to its right
    end. Interval ending at A_i: Qa = a[i−1], Qb = b[f] with f = ⌊(A_i − 1)/na⌋, width
    min(nb, A_i − f·na). Interval ending at B_j (not equal to some A_i): Qb = b[j−1],
    Qa = a[f] with f = ⌊B_j/nb⌋, width min(na, B_j − f·nb) (0 when B_j is an A breakpoint).
    Large inputs go block by block (`_w1_blocks`), which visits most rows only to add them up.
    """
    na, nb = len(a), len(vb)
    if na * nb >= 1 << 48:  # pragma: no cover - ~3e7 rows per group
        return _w1_exact_int(a, -vb, na, nb)
    if na + nb < 8 * block:
        total = _lattice_part(a, vb, nb, strict=True) + _lattice_part(vb, a, na, strict=False)
    else:
        total = _w1_blocks(a, vb, block, sub)
    return total / (float(na) * float(nb))


def _w1_blocks(a: np.ndarray, vb: np.ndarray, block: int, sub: int) -> float:
    """na·nb·W1 by blocks of at most ``block`` rows of a (finer towards both ends, where the
    two quantile functions start and end close together), then sub-blocks of ``sub`` rows
    inside the blocks that `_settled` leaves, then the lattice (`_lattice_part`) for the rows
    of the sub-blocks left after that (where Qa and Qb cross).
    """
    na, nb = len(a), len(vb)
    cuts = np.sort(np.concatenate([np.arange(0, na, block, dtype=np.int64), _EDGE_CUTS, na - _EDGE_CUTS]))
    cuts = cuts[(cuts >= 0) & (cuts < na)]
    lo = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
    hi = np.append(lo[1:], na)
    total, left = _settled(a, vb, lo, hi)
    lo, hi = lo[left], hi[left]
    if lo.size > 8 and sub < block:  # a few blocks (the two ends, a crossing) cost less as they are
        lo, hi = _split_ranges(lo, hi, sub)
        part, left = _settled(a, vb, lo, hi)
        total += part
        lo, hi = lo[left], hi[left]
    if lo.size:
        total += _lattice_part(a, vb, nb, strict=True, rows=_ranges(lo, hi))
        total += _lattice_part(vb, a, na, strict=False, rows=_ranges(lo * nb // na, hi * nb // na))
    return total


def _settled(a: np.ndarray, vb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, np.ndarray]:
    """na·nb·∫|Qa − Qb| over the u-ranges [lo_k/na, hi_k/na] (a rows [lo_k, hi_k): sorted,
    disjoint, non-empty) where Qa ≥ Qb or Qb ≥ Qa throughout, and a mask of the other ranges.

    Where the range's smallest a is ≥ its largest b (or its smallest b ≥ its largest a),
    |Qa − Qb| = ±(Qa − Qb) on it, so its share is ±(∫Qa − ∫Qb): a sum of a rows and a sum of
    b rows with the two partial b rows at its ends. In e units (u·na·nb) the range is
    (E_lo, E_hi] and Qb = b[j] on (j·na, (j+1)·na].
    """
    na, nb = len(a), len(vb)
    E_lo, E_hi = lo * nb, hi * nb
    q_lo, q_hi = E_lo // na, E_hi // na  # b rows holding Qb just after E (q_hi = nb at the end)
    v_lo, v_hi = vb[q_lo], vb[np.minimum(q_hi, nb - 1)]
    gap = nb * _range_sums(a, lo, hi)  # ∫Qa, then + ∫(−Qb)
    gap += na * _range_sums(vb, q_lo, q_hi)
    gap += (E_hi - q_hi * na) * v_hi
    gap -= (E_lo - q_lo * na) * v_lo
    above = a[lo] >= -vb[(E_hi - 1) // na]  # smallest a ≥ largest b
    below = -v_lo >= a[hi - 1]  # smallest b ≥ largest a
    total = float(np.dot(above, gap)) - float(np.dot(below & ~above, gap))
    return total, ~(above | below)


def _split_ranges(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each range [lo_k, hi_k) cut into pieces of ``size`` rows (the last one shorter)."""
    counts = -(-(hi - lo) // size)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = np.repeat(lo, counts) + size * (np.arange(int(counts.sum()), dtype=np.int64) - first)
    return starts, np.minimum(starts + size, np.repeat(hi, counts))


def _range_sums(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ v[lo_k:hi_k] for sorted, disjoint ranges (lo_k ≤ hi_k, lo_k < len(v))."""
    if hi[-1] == len(v) and np.array_equal(lo[1:], hi[:-1]):  # a partition: one reduceat
        sums = np.add.reduceat(v, lo)
    else:
        idx = np.empty(2 * len(lo), dtype=np.int64)
        idx[0::2], idx[1::2] = lo, hi
        if idx[-1] == len(v):  # reduceat sums the last segment to the end by itself
            idx = idx[:-1]
        sums = np.add.reduceat(v, idx)[0::2]
    sums[lo == hi] = 0.0  # reduceat gives one row, not 0, for an empty range
    return sums


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) (int64)."""
    if len(lo) <= 8:  # the usual case (the two ends, a crossing or two): fewer numpy calls
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in zip(lo.tolist(), hi.tolist())])
    sizes = hi - lo
    keep = sizes > 0
    lo, sizes = lo[keep], sizes[keep]
    offsets = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) + offsets


def _lattice_part(own: np.ndarray, other: np.ndarray, n_other: int, *, strict: bool, rows=None) -> float:
    """Σ over the breakpoints e = (i+1)·n_other of ``own`` rows i (all, or ``rows``) of
    |own[i] + other[f]|·width.

    strict (the A part): f = ⌊(e − 1)/n_own⌋, width = min(n_other, e − f·n_own);
    otherwise (the B part): f = ⌊e/n_own⌋ (clipped to the last row), same width formula.
    The floors are computed as ⌊(e ∓ ½)·(1/n_own)⌋, exact while n_own·n_other < 2^48.
    """
    n_own = len(own)
    n_rows = n_own if rows is None else len(rows)
    inv, half = 1.0 / n_own, -0.5 if strict else 0.5
    total = 0.0
    for s in range(0, n_rows, _CHUNK):
        i = np.arange(s, min(n_rows, s + _CHUNK)) if rows is None else rows[s : s + _CHUNK]
        e = (i + 1).astype(np.float64)
        e *= n_other
        f = np.floor((e + half) * inv)
        e -= f * n_own  # the width
        if n_own > n_other:  # otherwise the width never exceeds n_other
            np.minimum(e, n_other, out=e)
        d = np.take(other, f.astype(np.intp), mode="clip")
        d += own[s : s + len(i)] if rows is None else own[i]
        total += float(np.dot(np.abs(d, out=d), e))
    return total


def _w1_exact_int(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> float:
    """Same as the lattice parts with int64 arithmetic (for na·nb ≥ 2^48)."""
    total = 0.0
    for s in range(0, na, _CHUNK):
        e = np.arange(s + 1, min(na, s + _CHUNK) + 1, dtype=np.int64) * nb
        f = (e - 1) // na
        w = np.minimum(e - f * na, nb)
        total += float(np.sum(np.abs(a[s : s + len(e)] - b[f]) * w))
    for s in range(0, nb, _CHUNK):
        e = np.arange(s + 1, min(nb, s + _CHUNK) + 1, dtype=np.int64) * na
        f = e // nb
        w = np.minimum(e - f * nb, na)
        total += float(np.sum(np.abs(a[np.minimum(f, na - 1)] - b[s : s + len(e)]) * w))
    return total / (float(na) * float(nb))

