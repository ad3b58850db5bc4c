"""Bootstrap replicates of the metrics from resampling counts over the sorted rows: one draw
per resample (`_SortedBoot`), read by every statistic (two-group SPDD: `_SpddBoot`'s block sums;
the others: `fairviz.metrics._kernels`)."""

from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from fairviz.metrics._kernels import _RankCorr, moment_rows, spdd_spread, speo_entries, weighted_corr
from fairviz.metrics._prepared import PreparedAudit, as_prepared
from fairviz.metrics._resample import _DRAW_STEP, _Counts, _rng, _run_replicates, _seed_sequences
from fairviz.metrics._steps import _add_abs_steps, _block_dots, _two_group_signs
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
        BS = _block_size(n, block)
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

    def values(self, C: np.ndarray, X: np.ndarray) -> np.ndarray:
        """SPDD of each resample of the batch C (B, N) uint8 counts over the sorted positions; X:
        (≥ B, chunk) float scratch."""
        cp, T0, T1 = self._block_sums(C, X)
        E0, sign, (bi, ri) = _two_group_signs(T0, T1, self.n0, self.n1)
        acc = np.einsum("br,br->r", sign, E0 * self.block_dz[:, None] + cp)
        if bi.size:
            self._exact_blocks(C, E0, bi, ri, acc)
        return acc / self.norm

    def worker(self, keep: list | None = None):
        """f(seeds) -> SPDD of each resample, drawing its own counts (for tests of the kernel)."""
        C = np.empty((self.batch, self.N), dtype=np.uint8)
        X = np.empty((self.batch, self.chunk))
        tmp = np.empty(min(self.N, _DRAW_STEP) // 8, dtype=np.uint64)

        def run(seeds) -> np.ndarray:
            B = len(seeds)
            for r, sd in enumerate(seeds):
                self.gen.draw(_rng(sd), C[r], tmp)
                if keep is not None:
                    keep.append(C[r, : self.n].astype(np.float64))
            return self.values(C[:B], X)

        return run


class _SortedBoot:
    """Replicates of any statistics from one count vector per resample over the rows in
    (score, group) order: the two-group SPDD bootstrap's draw (same seed, same counts), shared
    by SPEO, PCC, SRCC and many-group SPDD (see `fairviz.metrics._kernels`)."""

    def __init__(self, p: PreparedAudit, stats: Sequence[str]):
        d = p.data
        self.n, self.stats = d.n, tuple(stats)
        self.total = int(d.counts.sum())  # the resample's size: n, or more over a little bootstrap's subset
        self.rows = _score_rows(p)
        code = d.codes[self.rows]
        self.spdd2 = _SpddBoot(p) if "spdd" in self.stats and d.n_groups == 2 else None
        self.BS = _block_size(d.n, 1024)  # _SpddBoot's blocks: the same layout and draws with or without it
        N = -(-d.n // self.BS) * self.BS
        self.chunk = max(1, (1 << 14) // self.BS) * self.BS
        seq = np.full(N, -1, dtype=np.intp)
        seq[: d.n] = code
        self.gen = _Counts(seq, d.counts)
        self.kernels = {}
        if "spdd" in self.stats and self.spdd2 is None:
            self.kernels["spdd"] = spdd_spread(d.x[self.rows], code, d.counts)
        if d.y is not None and {"speo", "pcc", "srcc"} & set(self.stats):
            ys = d.y[self.rows]
            if "speo" in self.stats:
                self.eo, self.eo_pos = speo_entries(d.x[self.rows], ys, code, d.counts)
            if "pcc" in self.stats:  # as blocks, so a batch of resamples reads them once
                m = np.zeros((5, N))
                m[:, : d.n] = moment_rows(d.x[self.rows], ys)
                self.moments = tuple(row.reshape(-1, self.BS) for row in m)
            if "srcc" in self.stats:
                pos = np.empty(d.n, dtype=np.intp)
                pos[self.rows] = np.arange(d.n)
                order_y, starts_y, _ = p.tie_blocks(1)
                self.rank = _RankCorr(p.tie_blocks(0)[1], pos[order_y], starts_y, d.n, self.total)

    def _one(self, c: np.ndarray, cf: np.ndarray) -> list[float]:
        out = []
        for s in self.stats:
            if (s == "spdd" and self.spdd2 is not None) or s == "pcc":
                out.append(math.nan)  # filled for the whole batch
            elif s == "spdd":
                out.append(self.kernels["spdd"].integral(c))
            elif s == "speo":
                out.append(self.eo.integral(c[self.eo_pos]))
            else:
                out.append(self.rank(c, cf))
        return out

    def worker(self, keep: list | None = None):
        B = self.spdd2.batch if self.spdd2 is not None else 8
        C = np.empty((B, self.gen.N), dtype=np.uint8)
        X = np.empty((B, self.chunk))
        tmp = np.empty(min(self.gen.N, _DRAW_STEP) // 8, dtype=np.uint64)
        cf = np.empty(self.n) if "srcc" in self.stats else None
        n = self.n

        def run(seeds) -> np.ndarray:
            b = len(seeds)
            out = np.empty((b, len(self.stats)))
            for r, sd in enumerate(seeds):
                self.gen.draw(_rng(sd), C[r], tmp)
                if keep is not None:
                    rc = np.zeros(n)
                    rc[self.rows] = C[r, :n]
                    keep.append(rc)
                c = C[r, :n]
                if cf is not None:
                    np.copyto(cf, c)
                out[r] = self._one(c, cf)
            if self.spdd2 is not None:
                out[:, self.stats.index("spdd")] = self.spdd2.values(C[:b], X)
            if "pcc" in self.stats:
                sums = np.stack([s.sum(axis=0) for s in _block_dots(C[:b], X, self.moments, self.BS, self.chunk)])
                out[:, self.stats.index("pcc")] = [weighted_corr(sums[:, r], self.total) for r in range(b)]
            return out

        return run


def _block_size(n: int, block: int) -> int:
    return max(8, min(int(block), -(-n // 8) * 8) // 8 * 8)  # _Counts needs N % 8 == 0


def _score_rows(p: PreparedAudit) -> np.ndarray:
    """Rows in (score, group) order: the order of `PreparedAudit.sorted_scores` (ties by group)."""
    order, starts, block_id = p.tie_blocks(0)
    if len(starts) == len(order):
        return order
    return order[np.lexsort((p.data.codes[order], block_id))]


def _replicates(d: _Data | PreparedAudit, stats: Sequence[str], n_boot: int, random_state, *,
                keep: dict | None = None, progress=None) -> dict:
    """Bootstrap replicate values {statistic: (n_boot,) array} of prepared data (its sorts are
    reused). Resample r draws one count vector from seeds[r] and every statistic reads it.
    ``keep["counts"]`` collects each resample's counts in row order (for tests).
    ``progress(done, total)`` follows the resamples (from threads)."""
    p = as_prepared(d)
    d = p.data
    stats = tuple(dict.fromkeys(stats))
    seeds = _seed_sequences(random_state, n_boot)
    engine = _SortedBoot(p, stats)
    k = None if keep is None else keep.setdefault("counts", [])
    vals = _run_replicates(lambda: engine.worker(k), seeds, len(stats), 4 * d.n * n_boot, 8,
                           _progress_steps(progress, n_boot))
    return {s: vals[:, i] for i, s in enumerate(stats)}


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


