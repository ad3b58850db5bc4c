"""Bootstrap replicates of the metrics from resampling counts over the sorted rows."""

from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from fairviz.metrics._prepared import PreparedAudit, as_prepared
from fairviz.metrics._resample import _DRAW_STEP, _Counts, _rng, _run_replicates, _seed_sequences
from fairviz.metrics._steps import (
    _add_abs_steps,
    _block_dots,
    _dp_gap_fn,
    _eo_gap_fn,
    _integrate_gap,
    _two_group_signs,
)
from fairviz.metrics._threshold import _speo_entries
from fairviz.metrics._validate import _Data, _prepare

STATISTICS = ("spdd", "speo", "pcc", "srcc")


class _SpddBoot:
    """SPDD replicates for two groups, a batch of resamples at a time.

    Sorted positions k (padded to N = nb·BS, in blocks of BS) carry W_k = c_k·s_k, with c the
    resample's counts and s = n1 (group 0), −n0 (group 1), 0 (padding). E_k = Σ_{m≤k} W_m =
    n0·n1·(F0 − F1) just after position k, an exact float64 integer, and
    SPDD*·n0·n1 = Σ_k |E_k|·dz_k with dz_k = z[k+1] − z[k].

    Inside a block, E stays within [E0 − n0·T1, E0 + n1·T0] (E0: E before the block; Tg: the
    resample's count of group g in the block). When that range does not straddle 0, |E| = σ·E
    on the whole block (σ = ±1) and the block's share is σ·(E0·Σ dz + Σ_m c_m·P_m) with
    P_m = s_m·Σ_{k≥m in the block} dz_k: two dot products per block give Σ c·P, T0 and T1
    for every resample of the batch. Only the few blocks whose range straddles 0 (where
    the two ECDFs cross or meet, e.g. at the ends) are summed position by position.
    """

    def __init__(self, d: _Data | PreparedAudit, block: int = 1024, chunk: int = 1 << 14, batch: int = 8):
        p = as_prepared(d)
        d = p.data
        z, code = p.sorted_scores()
        n = len(z)
        n0, n1 = int(d.counts[0]), int(d.counts[1])
        BS = max(8, min(int(block), -(-n // 8) * 8) // 8 * 8)  # _Counts needs N % 8 == 0
        nb = -(-n // BS)
        N = nb * BS
        code_p = np.full(N, -1, dtype=np.intp)
        code_p[:n] = code
        dz = np.zeros(N)
        dz[: n - 1] = np.diff(z)
        s = np.where(code_p == 0, float(n1), np.where(code_p == 1, -float(n0), 0.0)).reshape(nb, BS)
        dz = dz.reshape(nb, BS)
        tail = np.cumsum(dz[:, ::-1], axis=1)[:, ::-1]  # Σ_{k≥m in the block} dz_k
        self.P = s * tail
        self.K = float(1 << (255 * BS).bit_length())  # > any block's T0 (counts are uint8)
        self.tag = np.select([code_p == 0, code_p == 1], [1.0, self.K], 0.0).reshape(nb, BS)
        self.block_dz = tail[:, 0].copy()
        self.s, self.dz = s, dz
        self.BS, self.nb, self.N, self.n, self.n0, self.n1 = BS, nb, N, n, float(n0), float(n1)
        self.chunk = max(1, int(chunk) // BS) * BS
        self.batch = int(batch)
        self.gen = _Counts(code_p, d.counts)
        self.z, self.code = z, code
        self.norm = float(n0) * float(n1)
        self.exact_blocks = 0  # blocks summed position by position (diagnostics and tests)

    def _block_sums(self, C: np.ndarray, X: np.ndarray):
        """Per block and resample ((nb, B) each): Σ c·P, T0 and T1 (C: (B, N) uint8 counts).

        T0 and T1 come from one dot product with is0 + K·is1 (K a power of two above any T0,
        so both are exact).
        """
        cp, tt = _block_dots(C, X, (self.P, self.tag), self.BS, self.chunk)
        T1 = np.floor(tt * (1.0 / self.K))
        return cp, tt - self.K * T1, T1

    def _exact_blocks(self, C: np.ndarray, E0: np.ndarray, bi: np.ndarray, ri: np.ndarray, acc: np.ndarray) -> None:
        """Add Σ_k |E_k|·dz_k over blocks bi of resamples ri to acc[ri], position by position."""
        Cb = C.reshape(len(C), self.nb, self.BS)
        step = max(1, (1 << 16) // self.BS)
        for a in range(0, len(bi), step):
            b, r = bi[a : a + step], ri[a : a + step]
            _add_abs_steps(acc, r, Cb[r, b] * self.s[b], E0[b, r], self.dz[b])
        self.exact_blocks += len(bi)

    def worker(self, keep: list | None = None):
        C = np.empty((self.batch, self.N), dtype=np.uint8)
        X = np.empty((self.batch, self.chunk))
        tmp = np.empty(min(self.N, _DRAW_STEP) // 8, dtype=np.uint64)

        def run(seeds) -> np.ndarray:
            B = len(seeds)
            for r, sd in enumerate(seeds):
                self.gen.draw(_rng(sd), C[r], tmp)
                if keep is not None:
                    keep.append(C[r, : self.n].astype(np.float64))
            cp, T0, T1 = self._block_sums(C[:B], X)
            E0, sign, (bi, ri) = _two_group_signs(T0, T1, self.n0, self.n1)
            acc = np.einsum("br,br->r", sign, E0 * self.block_dz[:, None] + cp)
            if bi.size:
                self._exact_blocks(C[:B], E0, bi, ri, acc)
            return acc / self.norm

        return run


class _GenericBoot:
    """Replicates of any statistics from count vectors over the rows (in row order)."""

    def __init__(self, p: PreparedAudit, stats: Sequence[str]):
        d = p.data
        self.d = d
        self.stats = tuple(stats)
        n = d.n
        seq = np.full(-(-n // 8) * 8, -1, dtype=np.intp)
        seq[:n] = d.codes
        self.gen = _Counts(seq, d.counts)
        if "spdd" in self.stats:
            order = p.score_order()
            self.sp_order = order
            self.sp_z = d.x[order]
            self.sp_code = d.codes[order]
            self.sp_gap = _dp_gap_fn(d.counts)
        if "speo" in self.stats:
            vals, tags = _speo_entries(d)
            order = np.argsort(vals, kind="stable")
            self.eo_rows = np.concatenate([np.arange(n), np.arange(n)])[order]
            self.eo_tag = tags[order]
            self.eo_z = vals[order]
            self.eo_gap = _eo_gap_fn(d.counts)
        if "pcc" in self.stats:
            xc = d.x - d.x.mean()
            yc = d.y - d.y.mean()
            self.pc = np.stack([xc, yc, xc * xc, yc * yc, xc * yc])
        if "srcc" in self.stats:
            self.rk = [p.tie_blocks(0), p.tie_blocks(1)]
            self._local = threading.local()

    @staticmethod
    def _weighted_corr(c: np.ndarray, m: np.ndarray, n: int) -> float:
        """Weighted Pearson correlation from the (5, n) rows x, y, x², y², xy."""
        sx, sy, sxx, syy, sxy = np.einsum("i,ki->k", c, m)
        vxx = sxx - sx * sx / n
        vyy = syy - sy * sy / n
        vxy = sxy - sx * sy / n
        if vxx <= 1e-12 * max(sxx, 1e-300) or vyy <= 1e-12 * max(syy, 1e-300):
            return math.nan
        return max(-1.0, min(1.0, vxy / math.sqrt(vxx * vyy)))

    def _ranks(self, c: np.ndarray, which: int, out: np.ndarray) -> np.ndarray:
        """Mid-ranks (in ``out``, row order) of the scores (0) or labels (1) under counts ``c``."""
        order, starts, block_id = self.rk[which]
        cs = c[order]
        T = cs if len(starts) == len(cs) else np.add.reduceat(cs, starts)  # no ties: one row per block
        mid = np.cumsum(T) - T + (T + 1.0) / 2.0
        out[order] = mid if len(mid) == len(c) else mid[block_id]
        return out

    def _rank_rows(self, c: np.ndarray) -> np.ndarray:
        """(5, n) centred mid-ranks rx, ry and rx², ry², rx·ry under counts ``c``, in a buffer kept
        per thread (a fresh 5·n array per resample cost more than the arithmetic)."""
        m = getattr(self._local, "m", None)
        if m is None:
            m = self._local.m = np.empty((5, self.d.n))
        mid = (self.d.n + 1) / 2.0
        rx, ry = self._ranks(c, 0, m[0]), self._ranks(c, 1, m[1])
        rx -= mid
        ry -= mid
        np.multiply(rx, rx, out=m[2])
        np.multiply(ry, ry, out=m[3])
        np.multiply(rx, ry, out=m[4])
        return m

    def compute(self, c: np.ndarray) -> list[float]:
        d = self.d
        n = d.n
        out = []
        for s in self.stats:
            if s == "spdd":
                cs = c[self.sp_order]
                out.append(_integrate_gap(self.sp_z, self.sp_code, d.n_groups, self.sp_gap, cs))
            elif s == "speo":
                ce = c[self.eo_rows]
                out.append(_integrate_gap(self.eo_z, self.eo_tag, 2 * d.n_groups, self.eo_gap, ce))
            elif s == "pcc":
                out.append(self._weighted_corr(c, self.pc, n))
            elif s == "srcc":
                out.append(self._weighted_corr(c, self._rank_rows(c), n))
        return out

    def worker(self, keep: list | None = None):
        c8 = np.empty(self.gen.N, dtype=np.uint8)
        c = np.empty(self.gen.N)
        n = self.d.n

        def run(seeds):
            out = []
            for sd in seeds:
                self.gen.draw(_rng(sd), c8)
                np.copyto(c, c8)
                if keep is not None:
                    keep.append(c[:n].copy())
                out.append(self.compute(c[:n]))
            return out

        return run


def _replicates(d: _Data | PreparedAudit, stats: Sequence[str], n_boot: int, random_state, *,
                keep: dict | None = None, progress=None) -> dict:
    """Bootstrap replicate values {statistic: (n_boot,) array} of prepared data (its sorts are
    reused); ``keep`` collects the counts (row order for the generic path, sorted order for
    two-group SPDD) — for tests. ``progress(done, total)`` follows the resamples (from threads)."""
    p = as_prepared(d)
    d = p.data
    seeds = _seed_sequences(random_state, n_boot)
    out: dict[str, np.ndarray] = {}
    generic = [s for s in stats if s != "spdd" or d.n_groups != 2]
    step = _progress_steps(progress, n_boot * (int(bool(generic)) + int("spdd" in stats and d.n_groups == 2)))
    if "spdd" in stats and d.n_groups == 2:
        sb = _SpddBoot(p)
        k = None if keep is None else keep.setdefault("spdd", [])
        out["spdd"] = _run_replicates(lambda: sb.worker(k), seeds, 1, d.n * n_boot, sb.batch, step)[:, 0]
        if keep is not None:
            keep["spdd_sorted"] = (sb.z, sb.code)
    if generic:
        gb = _GenericBoot(p, generic)
        k = None if keep is None else keep.setdefault("generic", [])
        vals = _run_replicates(lambda: gb.worker(k), seeds, len(generic), 4 * d.n * n_boot, progress=step)
        for i, s in enumerate(generic):
            out[s] = vals[:, i]
    return out


def _progress_steps(progress, total: int):
    """A ``step(k)`` that adds k finished resamples and calls ``progress(done, total)`` (thread-safe), or None."""
    if progress is None:
        return None
    lock = threading.Lock()
    done = [0]

    def step(k: int) -> None:
        with lock:
            done[0] += k
            progress(done[0], total)

    return step


def _check_boot_args(n_boot, level, *, allow_zero: bool) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise ValueError(f"n_boot must be an integer, got {n_boot!r}")
    if n_boot < (0 if allow_zero else 1):
        raise ValueError(f"n_boot must be at least {0 if allow_zero else 1}, got {n_boot}")
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95, got {level!r}") from None
    if not 0.0 < lv < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    return int(n_boot), lv


def _percentile_ci(reps: np.ndarray, level: float) -> tuple[float, float]:
    r = reps[np.isfinite(reps)]
    if r.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return float(lo), float(hi)


def _check_statistic(statistic) -> str:
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}; got {statistic!r}")
    return statistic


def bootstrap_ci(
    statistic: str,
    scores,
    groups,
    labels=None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state=0,
) -> tuple[float, float]:
    """Percentile bootstrap CI ``(low, high)`` for "spdd", "speo", "pcc" or "srcc".

    For the distances (SPDD, SPEO) this interval is biased upward and never contains a fair
    model's 0; `audit` shows the test-inversion interval and upper bound of
    `fairviz.uncertainty` instead (docs/STATISTICS.md).

    Rows are resampled with replacement within each group (group sizes stay fixed); the data
    are sorted once and each resample is a vector of multinomial counts over the sorted rows.
    ``random_state`` (int, None, SeedSequence or Generator) fixes the draws; results do not
    depend on the number of threads (set FAIRVIZ_THREADS to choose it).
    """
    stat = _check_statistic(statistic)
    n_boot, lv = _check_boot_args(n_boot, level, allow_zero=False)
    d = _prepare(scores, groups, labels, need_labels=stat != "spdd")
    reps = _replicates(PreparedAudit(d), (stat,), n_boot, random_state)[stat]
    return _percentile_ci(reps, lv)


