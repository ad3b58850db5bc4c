"""Within-group bootstrap draws: exact multinomial counts, seeds and threads."""

from __future__ import annotations

import concurrent.futures
import math
import os

import numpy as np

#
# A resample draws n_g rows with replacement inside each group g, i.e. a count vector that is
# Multinomial(n_g, uniform) over the group's rows. Counts are generated block by block (so
# that the metric kernels consume them while they are in cache), exactly:
#   1. split each group's n_g draws among the blocks: Multinomial(n_g, rows-in-block / n_g);
#   2. inside a block, draw iid Poisson(1) counts per row (a 15-bit table lookup, refined in
#      double precision for the few table cells that straddle a CDF step), then add or remove
#      the difference to the block target uniformly: given their total, iid Poisson counts are
#      multinomial, adding iid uniform draws or removing a uniformly chosen subset of the
#      drawn balls keeps them multinomial.

_CELL_BITS = 15
_NCELL = 1 << _CELL_BITS


def _poisson_tables():
    k = np.arange(40)
    pmf = np.exp(-1.0 - np.array([math.lgamma(i + 1.0) for i in k]))
    cdf = np.minimum(np.cumsum(pmf), 1.0)
    lo = np.arange(_NCELL) / _NCELL
    hi = np.nextafter((np.arange(_NCELL) + 1.0) / _NCELL, 0.0)
    c_lo = np.searchsorted(cdf, lo, side="right")  # Poisson(1) inverse CDF: min{k: u < F(k)}
    c_hi = np.searchsorted(cdf, hi, side="right")
    amb = c_lo != c_hi
    order = np.concatenate([np.flatnonzero(~amb), np.flatnonzero(amb)])
    first_amb = int((~amb).sum())
    return c_lo[order].astype(np.float64), first_amb, order[first_amb:].astype(np.float64), cdf


_PTAB, _PAMB0, _PAMB_CELL, _PCDF = _poisson_tables()
_PTAB_MAX = int(_PTAB[:_PAMB0].max())
_DRAW_STEP = 1 << 20  # counts drawn per pass; long passes keep two threads from taking turns on the GIL
_AMB_MARK = 0x80  # table cells that straddle a CDF step carry this bit until resolved
_PTAB8 = _PTAB.astype(np.uint8)
_PTAB8[_PAMB0:] |= _AMB_MARK
_HIGH_BITS = np.uint64(0x8080808080808080)
_BYTE_SUM = np.uint64(0x0101010101010101)  # (w · this) >> 56 = sum of w's bytes (each ≤ 31)


_TABLE_MAX_MEAN = 100  # Poisson means a `_PoissonTable` serves (its counts stay under 255)


class _PoissonTable:
    """iid Poisson(lam) counts by a 16-bit table lookup: a uniform 16-bit cell gives the count
    directly unless the cell straddles a CDF step; those few are refined in double precision
    (u = (cell + U) / 2¹⁶, count = min{k: u < F(k)}), so the counts are Poisson(lam) to double
    precision, as `Generator.poisson` is, at a fraction of its cost (lam ≤ `_TABLE_MAX_MEAN`)."""

    _MARK = 255

    def __init__(self, lam: float):
        lam = float(lam)
        k_max = int(lam + 12.0 * math.sqrt(lam) + 30.0)
        if k_max >= self._MARK:
            raise ValueError(f"Poisson mean {lam:g} is too large for 8-bit counts")
        k = np.arange(k_max + 1)
        pmf = np.exp(k * math.log(lam) - lam - np.array([math.lgamma(i + 1.0) for i in k])) if lam > 0 else (k == 0) * 1.0
        cdf = np.minimum(np.cumsum(pmf), 1.0)
        cdf[-1] = 1.0  # the tail beyond k_max (< 1e-20) goes to k_max
        cells = np.arange(1 << 16)
        lo = np.searchsorted(cdf, cells / 65536.0, side="right")
        hi = np.searchsorted(cdf, np.nextafter((cells + 1.0) / 65536.0, 0.0), side="right")
        self.table = np.where(lo == hi, lo, self._MARK).astype(np.uint8)
        self.cdf = cdf

    def draw(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """(m,) int64 iid Poisson(lam) counts."""
        cells = rng.bit_generator.random_raw(-(-m // 4)).view(np.uint16)[:m]
        c = np.take(self.table, cells).astype(np.int64)
        amb = np.flatnonzero(c == self._MARK)
        if amb.size:
            u = (cells[amb] + rng.random(amb.size)) * (1.0 / 65536.0)
            c[amb] = np.searchsorted(self.cdf, u, side="right")
        return c


def _byte_sum(words: np.ndarray, tmp: np.ndarray) -> int:
    """Sum of all bytes of ``words`` (uint64), valid while every byte is ≤ 31."""
    np.multiply(words, _BYTE_SUM, out=tmp)
    np.right_shift(tmp, np.uint64(56), out=tmp)
    return int(np.add.reduce(tmp))


def _draw_cells(rng: np.random.Generator, m: int) -> np.ndarray:
    """m iid uniform 15-bit table cells (uint16), from the raw 64-bit output of the generator."""
    raw = rng.bit_generator.random_raw(-(-m // 4))
    H = raw.view(np.uint16)[:m]
    np.right_shift(H, np.uint16(1), out=H)
    return H


def _resolve_cells(rng: np.random.Generator, cells: np.ndarray) -> np.ndarray:
    """Poisson(1) counts for draws that fell in table cells straddling a CDF step."""
    u = (_PAMB_CELL[cells - _PAMB0] + rng.random(len(cells))) * (1.0 / _NCELL)
    return np.searchsorted(_PCDF, u, side="right").astype(np.float64)


class _Counts:
    """Exact within-group multinomial resampling counts (uint8) over a sequence of positions.

    ``seq_codes`` (N,): the group code at each position (−1 = padding: never drawn); N must be
    a multiple of 8. One call of `draw` fills a count vector in which group g's positions hold
    Multinomial(n_g, uniform) counts: iid Poisson(1) counts, then the difference to n_g added
    as iid uniform draws or removed as a uniformly random subset of the drawn balls. When a
    group's total n_g differs from its number of positions (the bag of little bootstraps:
    n_g draws over a subset of the group's rows), its counts are drawn by
    iid Poisson(n_g / m) counts adjusted the same way; a count above 255 raises (never wraps).
    """

    def __init__(self, seq_codes: np.ndarray, counts: np.ndarray):
        seq_codes = np.asarray(seq_codes)
        self.N = len(seq_codes)
        if self.N % 8:
            raise AssertionError("sequence length must be a multiple of 8")
        self.counts = np.asarray(counts, dtype=np.int64)
        self.G = len(self.counts)
        self.rows = [np.flatnonzero(seq_codes == g) for g in range(self.G)]
        self.pad = np.flatnonzero(seq_codes < 0)
        if self.G == 2:
            self.m1 = np.where(seq_codes == 1, np.uint8(255), np.uint8(0)).astype(np.uint8).view(np.uint64)
        else:
            self.local = np.where(seq_codes < 0, self.G, seq_codes).astype(np.intp)
        self.scaled = any(len(r) != int(c) for r, c in zip(self.rows, self.counts))
        if self.scaled:
            # means too large for 8-bit counts keep numpy's draw (and raise below, never wrap)
            self.poisson = [_PoissonTable(int(c) / len(r)) if len(r) and int(c) <= _TABLE_MAX_MEAN * len(r) else None
                            for r, c in zip(self.rows, self.counts)]

    def _draw_scaled(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Multinomial(n_g; uniform over group g's positions) counts for every group: iid
        Poisson(n_g / m) counts (`_PoissonTable`), then the difference to n_g added or removed
        uniformly."""
        out[:] = 0
        for g, rows in enumerate(self.rows):
            m, n_g = len(rows), int(self.counts[g])
            table = self.poisson[g]
            c = table.draw(rng, m) if table is not None else rng.poisson(n_g / m, m)
            have = int(c.sum())
            if have < n_g:
                np.add.at(c, np.sort(rng.integers(0, m, size=n_g - have)), 1)
            elif have > n_g:
                _remove_balls(rng, c, np.arange(m), have - n_g, have, int(c.max()))
            if c.max(initial=0) > 255:
                raise OverflowError(f"a resampling count of {int(c.max())} does not fit uint8 "
                                    f"({n_g} draws over {m} rows)")
            out[rows] = c

    def draw(self, rng: np.random.Generator, out: np.ndarray, tmp: np.ndarray | None = None) -> None:
        """Fill ``out`` (uint8, length N) with one resample's counts."""
        if self.scaled:
            return self._draw_scaled(rng, out)
        N = self.N
        cmax = _PTAB_MAX
        step = _DRAW_STEP
        two = self.G == 2
        total = t1 = 0
        if tmp is None:
            tmp = np.empty(min(N, step) // 8, dtype=np.uint64)
        eight = np.arange(8)
        for a in range(0, N, step):
            o = out[a : a + step]
            m8 = len(o) // 8
            H = _draw_cells(rng, len(o))
            for t in range(0, len(o), 1 << 16):  # take casts H to intp: keep that copy in cache
                np.take(_PTAB8, H[t : t + (1 << 16)], out=o[t : t + (1 << 16)], mode="clip")
            words = o.view(np.uint64)
            tw = tmp[:m8]
            np.bitwise_and(words, _HIGH_BITS, out=tw)
            marked = np.flatnonzero(tw)
            if marked.size:  # resolve the cells that straddle a CDF step, in double precision
                cand = (marked[:, None] * 8 + eight).ravel()
                amb = cand[o[cand] >= _AMB_MARK]
                cnt = _resolve_cells(rng, H[amb])
                o[amb] = cnt
                cmax = max(cmax, int(cnt.max()))
            if two:  # totals while the chunk is in cache (padding counts as group 0 here)
                if cmax <= 31:
                    total += _byte_sum(words, tw)
                    np.bitwise_and(words, self.m1[a // 8 : a // 8 + m8], out=tw)
                    t1 += _byte_sum(tw, tw)
                else:
                    total += int(np.add.reduce(o, dtype=np.int64))
                    t64 = np.bitwise_and(words, self.m1[a // 8 : a // 8 + m8], out=tw)
                    t1 += int(np.add.reduce(t64.view(np.uint8), dtype=np.int64))
        if self.pad.size:
            if two:
                total -= int(np.add.reduce(out[self.pad], dtype=np.int64))
            out[self.pad] = 0
        if two:
            totals = (total - t1, t1)
        else:
            totals = np.bincount(self.local, weights=out, minlength=self.G + 1)[: self.G]
        for g in range(self.G):
            have = int(round(totals[g]))
            d = have - int(self.counts[g])
            rows = self.rows[g]
            if d < 0:  # too few: add -d iid uniform draws over the group's rows
                np.add.at(out, rows[np.sort(rng.integers(0, len(rows), size=-d))], 1)
            elif d > 0:
                _remove_balls(rng, out, rows, d, have, cmax)


def _remove_balls(rng, c: np.ndarray, rows: np.ndarray, d: int, have: int, cmax: int) -> None:
    """Remove d of the ``have`` balls on ``rows`` (counts ``c``), a uniformly random subset.

    Balls are (row, slot < count) pairs. Draw k pairs uniformly over rows × [0, cmax) and keep
    the distinct ones that are balls: by symmetry they form a uniformly random set of balls
    (given its size); a uniformly random d-subset of it is then a uniform d-subset of all
    balls. The draws are sorted first so that the lookups walk memory in order.
    """
    while True:
        k = int(1.3 * d * cmax * len(rows) / have) + 64
        rr = rows[np.sort(rng.integers(0, len(rows), size=k))]
        slot = rng.integers(0, cmax, size=k)
        ok = slot < c[rr]
        keys = np.sort(rr[ok].astype(np.int64) * cmax + slot[ok])
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.size else keys
        if keys.size >= d:
            break
    if keys.size > d:
        keys = keys[np.sort(rng.choice(keys.size, size=d, replace=False))]
    np.subtract.at(c, keys // cmax, 1)


def _seed_sequences(random_state, n_boot: int) -> list:
    if isinstance(random_state, np.random.Generator):
        root = np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    elif isinstance(random_state, np.random.SeedSequence):
        root = random_state
    else:
        if random_state is not None and (
            isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))
        ):
            raise ValueError(f"random_state must be None, an int, a SeedSequence or a Generator, got {random_state!r}")
        root = np.random.SeedSequence(None if random_state is None else int(random_state))
    return root.spawn(n_boot)


def _n_threads(work: float) -> int:
    env = os.environ.get("FAIRVIZ_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    if work < 4e6:
        return 1
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        avail = os.cpu_count() or 1
    return max(1, min(avail, 8))


def _run_replicates(make_worker, seeds: list, n_out: int, work: float, batch: int = 1,
                    progress=None) -> np.ndarray:
    """Evaluate resamples in batches, one worker per thread -> (n_boot, n_out).

    ``make_worker()`` returns ``f(list of SeedSequence) -> (len, n_out)``. Resample r always
    uses the generator seeded by seeds[r], so results do not depend on the number of threads.
    ``progress(k)`` (optional) is called with the number of resamples each batch finished, from
    the worker threads.
    """
    B = len(seeds)
    out = np.empty((B, n_out))
    k = min(_n_threads(work), -(-B // batch))

    def run(lo: int, hi: int) -> None:
        f = make_worker()
        for a in range(lo, hi, batch):
            b = min(hi, a + batch)
            out[a:b] = np.asarray(f(seeds[a:b]), dtype=np.float64).reshape(b - a, n_out)
            if progress is not None:
                progress(b - a)

    if k <= 1:
        run(0, B)
    else:
        cuts = (np.linspace(0, -(-B // batch), k + 1).astype(int) * batch).clip(max=B)
        with concurrent.futures.ThreadPoolExecutor(max_workers=k) as pool:
            for fut in [pool.submit(run, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]:
                fut.result()
    return out


def _rng(seed) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))

