"""Per-resample kernels over counts on the rows sorted by score: SPEO and many-group SPDD (the
spread of per-group step functions), PCC and SRCC (weighted moments and mid-ranks from counts).

Every kernel reads one resample as a count vector ``c`` (uint8, (n,)) over the rows in
(score, group) order — the layout the resampling draws in — and returns the statistic of the
explicitly resampled rows (row i repeated c_i times), without building them.
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK = 1 << 15  # positions per chunk of the spread (a few float buffers stay in L2)
_MAX_INDEX = 12_000_000  # groups × entries of precomputed step indices kept at most (intp: gathers with
# intp indices run ~1.7× faster than with int32 ones, which numpy converts first)


class _StepSpread:
    """∫ [max_g − min_g] r_g dτ where r_g is a step function of group g's cumulative counts.

    Entries (E,) sorted by value carry a group and what they count (``field``, bit flags: 1 for
    A, 2 for B). Per resample each group's cumulative counts are int32 cumsums over its own
    entries only (E_g of them), turned into r_g at those entries, then read at every interval
    [v_k, v_{k+1}) through the index of the group's last entry ≤ k. ``kind``: "dp" (r_g =
    A / n_g, the ECDF; its spread equals the selection rates') or "eo" (r_g = (n_g − A) /
    max(n_g − B, 1): P(Ŷ > τ | Y > τ, g) with A = #{min(Ŷ, Y) ≤ τ}, B = #{Y ≤ τ}; rate 0 where
    no Y > τ).
    """

    def __init__(self, vals: np.ndarray, gid: np.ndarray, field: np.ndarray, counts: np.ndarray, kind: str):
        E = len(vals)
        G = len(counts)
        self.kind = kind
        self.E, self.G = E, G
        self.dz = np.diff(vals)
        self.n_g = counts.astype(np.float64)
        self.own = [np.flatnonzero(gid == g) for g in range(G)]
        self.is_a = [(field[o] & 1).astype(np.uint8) for o in self.own]
        self.is_b = [(field[o] >> 1).astype(np.uint8) for o in self.own]
        self.gid = gid
        # index into [initial value, r at own entry 0, 1, ...] of each interval k (entries ≤ k)
        self.last = ([np.cumsum(gid[:-1] == g, dtype=np.intp) for g in range(G)]
                     if G * E <= _MAX_INDEX else None)

    def _group_values(self, w: np.ndarray, g: int) -> np.ndarray:
        """r_g before any entry, then after each of group g's entries (E_g + 1,)."""
        wg = w[self.own[g]]
        n = self.n_g[g]
        out = np.empty(len(wg) + 1)
        if self.kind == "dp":
            out[0] = 0.0
            np.multiply(np.cumsum(wg, dtype=np.int32), 1.0 / n, out=out[1:])
            return out
        out[0] = 1.0 if n > 0 else 0.0
        A = np.cumsum(wg * self.is_a[g], dtype=np.int32)
        B = np.cumsum(wg * self.is_b[g], dtype=np.int32)
        den = np.subtract(n, B, dtype=np.float64)
        np.maximum(den, 1.0, out=den)
        np.subtract(n, A, out=out[1:])
        np.divide(out[1:], den, out=out[1:])
        return out

    def _index(self, g: int, a: int, b: int, base: np.ndarray) -> np.ndarray:
        """Index into group g's values for the intervals a..b−1 (``base[g]``: group g's entries
        before a, advanced here when the indices are computed on the fly)."""
        if self.last is not None:
            return self.last[g][a:b]
        idx = np.cumsum(self.gid[a:b] == g, dtype=np.intp)  # many groups: no stored indices
        idx += base[g]
        base[g] = idx[-1]
        return idx

    def integral(self, w: np.ndarray) -> float:
        """The integral for counts ``w`` (E,) on the entries."""
        vals = [self._group_values(w, g) for g in range(self.G)]
        total = 0.0
        base = np.zeros(self.G, dtype=np.intp)
        m = self.E - 1
        for a in range(0, m, _CHUNK):
            b = min(m, a + _CHUNK)
            r = [vals[g][self._index(g, a, b, base)] for g in range(self.G)]
            if self.G == 2:
                gap = np.subtract(r[0], r[1], out=r[0])
                np.abs(gap, out=gap)
            else:
                gap, lo = r[0], r[0].copy()
                for rg in r[1:]:
                    np.maximum(gap, rg, out=gap)
                    np.minimum(lo, rg, out=lo)
                gap -= lo
            total += float(np.einsum("i,i->", gap, self.dz[a:b]))
        return total


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
