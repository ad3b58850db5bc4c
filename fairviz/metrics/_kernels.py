"""Per-resample kernels over counts on the rows sorted by score: SPEO and many-group SPDD (the
spread of per-group step functions), PCC and SRCC (weighted moments and mid-ranks from counts).

Every kernel reads one resample as a count vector ``c`` (uint8, (n,)) over the rows in
(score, group) order — the layout the resampling draws in — and returns the statistic of the
explicitly resampled rows (row i repeated c_i times), without building them.
"""

from __future__ import annotations

import math

import numpy as np

from fairviz._jit import njit, njit_inline


class _StepSpread:
    """∫ [max_g − min_g] r_g dτ where r_g is a step function of group g's cumulative counts.

    Entries (E,) sorted by value carry a group and what they count (``field``, bit flags: 1 for
    A, 2 for B). Per resample one compiled pass (`step_spread`) adds each entry's count to
    its group's A and/or B, updates that group's r_g and adds the spread over the interval to
    the next entry. ``kind``: "dp" (r_g = A / n_g, the ECDF; its spread equals the selection
    rates') or "eo" (r_g = (n_g − A) / max(n_g − B, 1): P(Ŷ > τ | Y > τ, g) with A = #{min(Ŷ, Y)
    ≤ τ}, B = #{Y ≤ τ}; rate 0 where no Y > τ).
    """

    def __init__(self, vals: np.ndarray, gid: np.ndarray, field: np.ndarray, counts: np.ndarray, kind: str):
        self.kind = kind
        self.E, self.G = len(vals), len(counts)
        self.dz = np.diff(vals)
        self.n_g = np.asarray(counts, dtype=np.int64)
        self.gid = np.ascontiguousarray(gid, dtype=np.intp)
        self.field = np.ascontiguousarray(field, dtype=np.uint8)

    def integral(self, w: np.ndarray) -> float:
        """The integral for counts ``w`` (E,) uint8 on the entries."""
        return step_spread(np.ascontiguousarray(w), self.gid, self.field, self.dz, self.n_g,
                                 self.kind == "eo")


@njit
def step_spread(w, gid, field, dz, n_g, eo) -> float:
    """`_StepSpread.integral`'s pass: counts are integers (exact); partial sums per block of
    4,096 intervals keep the rounding of long sums near 1e-16. Branch-free over the entries (a
    resample's zero counts and the A / B fields fall at random: mispredicted branches cost a
    third of the pass); a zero count or an empty interval changes nothing."""
    G = n_g.shape[0]
    a = np.zeros(G, dtype=np.int64)
    b = np.zeros(G, dtype=np.int64)
    rate = np.zeros(G)
    if eo:
        for g in range(G):
            rate[g] = 1.0 if n_g[g] > 0 else 0.0
    total = 0.0
    part = 0.0
    for k in range(dz.shape[0]):
        c = np.int64(w[k])
        g = gid[k]
        f = field[k]
        a[g] += c * (f & 1)
        b[g] += c * ((f >> 1) & 1)
        if eo:
            rate[g] = (n_g[g] - a[g]) / max(n_g[g] - b[g], 1)
        else:
            rate[g] = a[g] / max(n_g[g], 1)  # a group without rows keeps rate 0
        part += spread(rate, G) * dz[k]
        if (k & 4095) == 4095:
            total += part
            part = 0.0
    return total + part


@njit_inline
def spread(rate, G) -> float:
    """Highest minus lowest of the G groups' rates ``rate`` (G,), inlined into the compiled passes."""
    hi = rate[0]
    lo = rate[0]
    for h in range(1, G):
        hi = max(hi, rate[h])
        lo = min(lo, rate[h])
    return hi - lo


def spdd_spread(z: np.ndarray, code: np.ndarray, counts: np.ndarray) -> _StepSpread:
    """SPDD of any number of groups over the sorted scores z (n,) with group codes (n,)."""
    return _StepSpread(z, code, np.ones(len(z), dtype=np.uint8), counts, "dp")


def speo_entries(z: np.ndarray, ys: np.ndarray, code: np.ndarray, counts: np.ndarray):
    """SPEO's breakpoints from the rows in score order: (`_StepSpread`, position (E,) of each
    entry's row). A row with Ŷ < Y has an entry at Ŷ (counts min(Ŷ, Y) ≤ τ) and one at Y
    (Y ≤ τ); a row with Y ≤ Ŷ one entry at Y counting both."""
    k = np.arange(len(z), dtype=np.int32)
    split = z < ys
    vals = np.concatenate([z[split], ys])
    pos = np.concatenate([k[split], k])
    field = np.concatenate([np.ones(int(split.sum()), dtype=np.uint8), np.where(split, 2, 3).astype(np.uint8)])
    order = np.argsort(vals, kind="stable")
    pos = pos[order].astype(np.intp)
    return _StepSpread(vals[order], code[pos], field[order], counts, "eo"), pos


def weighted_corr(sums: np.ndarray, n: int) -> float:
    """Pearson correlation from weighted sums (x, y, x², y², xy) of centred columns, total weight n."""
    sx, sy, sxx, syy, sxy = (float(v) for v in sums)
    vxx = sxx - sx * sx / n
    vyy = syy - sy * sy / n
    vxy = sxy - sx * sy / n
    if vxx <= 1e-12 * max(sxx, 1e-300) or vyy <= 1e-12 * max(syy, 1e-300):
        return math.nan
    return max(-1.0, min(1.0, vxy / math.sqrt(vxx * vyy)))


def moment_rows(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(5, n) centred x, y, x², y², xy of the rows in score order, for PCC from counts."""
    xc = xs - xs.mean()
    yc = ys - ys.mean()
    return np.stack([xc, yc, xc * xc, yc * yc, xc * yc])


class _RankCorr:
    """Spearman correlation of a resample from its counts: mid-ranks are cumulative counts.

    Under counts c over the rows in score order, a row's copies take ranks S_{<} + 1 … S_{<} + T
    of its tie block (S_{<}: the count of smaller values, T: the block's count), so all copies
    share the mid-rank S_{<} + (T + 1)/2; the labels' ranks are the same over the rows in label
    order (one gather of the counts). Doubled and centred at (n + 1)/2 the mid-ranks are int32
    integers (cumulative sums of the uint8 counts, fast and exact) with weighted mean 0 (they
    sum to n(n + 1)/2), so three weighted sums of products give the correlation.
    """

    def __init__(self, x_starts: np.ndarray, y_order_pos: np.ndarray, y_starts: np.ndarray, n: int,
                 total: int | None = None):
        """n positions; ``total``: the counts' sum (n unless a little bootstrap draws more)."""
        self.n = n
        self.x_ties = _Ties(x_starts, n, total)
        self.py = y_order_pos
        self.y_ties = _Ties(y_starts, n, total)

    def __call__(self, c: np.ndarray, cf: np.ndarray) -> float:
        """c: (n,) uint8 counts in score order; cf: the same as float64."""
        rx = self.x_ties.doubled_centred_ranks(c)
        cy = c[self.py]
        ry = self.y_ties.doubled_centred_ranks(cy).astype(np.float64)
        rxf = rx.astype(np.float64)
        sxx = float(np.einsum("i,i,i->", cf, rxf, rxf))
        wy = ry * cy
        syy = float(np.einsum("i,i->", wy, ry))
        sxy = float(np.einsum("i,i->", wy, rx[self.py], dtype=np.float64))
        if sxx <= 0.0 or syy <= 0.0:
            return math.nan
        return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


class _Ties:
    """Tie blocks of one sorted column (block starts (b,) over n positions) and the doubled,
    centred mid-ranks 2·R − (N + 1) of counts over them (int32; N = ``total``, the counts' sum,
    n by default)."""

    def __init__(self, starts: np.ndarray, n: int, total: int | None = None):
        self.n = n if total is None else int(total)
        self.few = len(starts) < n // 4  # few large blocks (e.g. binary labels): sum per block
        if len(starts) == n:
            self.tied = None
        elif self.few:
            self.starts, self.bid = starts, _block_ids(starts, n)
        else:  # mostly distinct values: fix up the rows of the tied blocks only
            ends = np.append(starts[1:], n)
            big = ends - starts > 1
            size = (ends - starts)[big]
            self.tied = np.repeat(starts[big], size) + (np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size))
            self.before = np.repeat(starts[big] - 1, size)  # cumulative count before the block (−1: none)
            self.last = np.repeat(ends[big] - 1, size)

    def doubled_centred_ranks(self, c: np.ndarray) -> np.ndarray:
        n1 = np.int32(self.n + 1)
        if self.few:
            T = np.add.reduceat(c, self.starts, dtype=np.int32)
            mid = np.cumsum(T, dtype=np.int32)
            mid += mid
            mid -= T
            mid -= self.n
            return mid[self.bid]  # 2·(S_< + (T + 1)/2) − (n + 1) = 2·S_incl − T − n
        S = np.cumsum(c, dtype=np.int32)
        r = S + S
        r -= c
        r -= self.n  # 2·S − c + 1 − (n + 1)
        if self.tied is not None and len(self.tied):
            S_before = np.where(self.before >= 0, S[np.maximum(self.before, 0)], 0)
            r[self.tied] = S_before + S[self.last] + 1 - n1
        return r


def _block_ids(starts: np.ndarray, n: int) -> np.ndarray:
    new = np.zeros(n, dtype=np.intp)
    new[starts[1:]] = 1
    return np.cumsum(new)
