"""The permutation null of SPDD, fast: relabel the already-sorted scores, sum by blocks.

`fairviz.significance.permutation_test` uses this for SPDD with up to 16 groups (two groups is the
common case and the one worth 1,000+ permutations at 10⁶ rows). Scores are sorted once; a
permutation is a uniformly random assignment of the group labels to the sorted positions with
the observed group sizes:

- drawing (`relabel`, two groups): iid Bernoulli bits (16-bit uniform words under a threshold
  near ``n1 / n``), then the surplus of ones (or of zeros) is flipped back at a uniformly random
  subset of them. Bits that are iid are exchangeable and the correction treats every position
  alike, so the result is uniform over all labelings with exactly ``n1`` ones — the law of a
  shuffle — at the cost of one pass over bytes instead of ``n`` random swaps. `relabel_groups`
  does the same for more groups (iid codes, then the surplus of each over-full group, pooled in
  random order, fills the groups that are short);
- statistic, two groups: with ``s_m = n1`` (group 0) or ``−n0`` (group 1), ``E_k = Σ_{m≤k} s_m =
  n0·n1·(F0 − F1)`` after sorted position ``k`` (an exact integer in float64), and
  SPDD·n0·n1 = Σ_k |E_k|·(z_{k+1} − z_k). Ties need nothing special: the width is 0 inside a
  run of equal scores. In a block of positions, E stays in [E0 − n0·T1, E0 + n1·T0] (Tg: group
  g's rows in the block); when that range does not straddle 0, |E| = ±E on the whole block and
  its share is ±(E0·Σ dz + Σ_m s_m·tail_m) (tail_m = Σ_{k≥m in the block} dz_k): one dot product
  per block. Blocks where the ECDFs cross are summed position by position (the idea of
  `fairviz.metrics`' two-group SPDD bootstrap). More groups: `GroupsSpdd`, one compiled pass
  over the sorted positions per labeling.

Permutation r uses its own generator (seed r of ``SeedSequence(random_state).spawn(n_perm)``), so
the null values do not depend on threads or batching.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairviz.metrics._kernels import step_spread
from fairviz.metrics._resample import _rng, _run_replicates, _seed_sequences
from fairviz.metrics._steps import _add_abs_steps, _block_dots, _two_group_signs


def relabel(rng: np.random.Generator, n: int, n1: int, out: np.ndarray) -> None:
    """Fill ``out[:n]`` (uint8) with 0/1, exactly ``n1`` ones at uniformly random positions."""
    if not 0 <= n1 <= n:
        raise ValueError(f"need 0 <= n1 <= n; got n1 = {n1}, n = {n}")
    thr = min(65535, max(1, round(65536 * n1 / n))) if n else 1
    raw = rng.bit_generator.random_raw(-(-n // 4)).view(np.uint16)[:n]
    bits = out[:n].view(np.bool_)
    np.less(raw, np.uint16(thr), out=bits)
    d = int(np.count_nonzero(bits)) - n1
    if d:  # flip |d| uniformly random positions among the ones (d > 0) or the zeros (d < 0)
        value = 1 if d > 0 else 0
        out[_pick(rng, out[:n], value, abs(d), n1 + d if d > 0 else n - n1 - d)] = 1 - value


class _Blocks:
    """The sorted scores cut into blocks of ``block`` positions (padded to N = nb·BS): widths
    dz (nb, BS), tails Σ_{k≥m in the block} dz_k, and block sums of labelings."""

    def __init__(self, xs: np.ndarray, block: int = 64, chunk: int = 1 << 15):
        n = len(xs)
        self.n = n
        BS = max(8, min(int(block), -(-n // 8) * 8))
        nb = -(-n // BS)
        N = nb * BS
        dz = np.zeros(N)
        dz[: n - 1] = np.diff(xs)
        self.dz = dz.reshape(nb, BS)
        self.tail = np.cumsum(self.dz[:, ::-1], axis=1)[:, ::-1]  # Σ_{k≥m in the block} dz_k
        self.block_dz = self.tail[:, 0].copy()
        self.tail_sum = self.tail.sum(axis=1)
        real = np.zeros(N)
        real[:n] = 1.0
        self.real = real.reshape(nb, BS)
        self.real_count = self.real.sum(axis=1)
        self.BS, self.nb, self.N = BS, nb, N
        self.chunk = max(1, int(chunk) // BS) * BS
        self.exact_blocks = 0  # blocks summed position by position (diagnostics and tests)

    def _block_sums(self, C: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per block and labeling ((nb, B) each), for 0/1 indicators C (B, N): Σ C·tail and Σ C."""
        q, t1 = _block_dots(C, X, (self.tail, None), self.BS, self.chunk)
        return q, t1



class TwoGroupSpdd(_Blocks):
    """Exact two-group SPDD for many labelings of the same sorted scores.

    xs: (n,) sorted scores. `stat(C)`: C (B, N) uint8 group-1 indicators over the sorted
    positions (N = padded length, zeros past n) -> (B,) SPDD values.
    """

    def __init__(self, xs: np.ndarray, n1: int, block: int = 64, chunk: int = 1 << 15):
        super().__init__(xs, block, chunk)
        self.n1, self.n0 = int(n1), self.n - int(n1)
        if self.n0 < 1 or self.n1 < 1:
            raise ValueError("both groups need at least one row")

    def stat(self, C: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        B = len(C)
        if X is None:
            X = np.empty((B, min(self.chunk, self.N)))
        n0, n1, n = float(self.n0), float(self.n1), float(self.n)
        q, T1 = self._block_sums(C, X)
        T0 = self.real_count[:, None] - T1
        E0, sign, (bi, ri) = _two_group_signs(T0, T1, n0, n1)
        share = E0 * self.block_dz[:, None] + n1 * self.tail_sum[:, None] - n * q
        acc = np.einsum("br,br->r", sign, share)
        if bi.size:
            self._exact_blocks(C, E0, bi, ri, acc)
        return acc / (n0 * n1)

    def _exact_blocks(self, C, E0, bi, ri, acc) -> None:
        Cb = C.reshape(len(C), self.nb, self.BS)
        step = max(1, (1 << 16) // self.BS)
        for a in range(0, len(bi), step):
            b, r = bi[a : a + step], ri[a : a + step]
            W = self.real[b] * float(self.n1) - Cb[r, b] * float(self.n)  # s_m: n1 or −n0 (0 on padding)
            _add_abs_steps(acc, r, W, E0[b, r], self.dz[b])
        self.exact_blocks += len(bi)


def relabel_groups(rng: np.random.Generator, counts: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out[:n]`` (uint8, n = sum of ``counts``) with group codes 0..G−1, exactly
    ``counts[g]`` of code g, uniformly over all such labelings: iid codes (16-bit uniform words
    cut at thresholds near the cumulative shares), then a uniformly random surplus of each
    over-full group is pooled and the pool, in random order, fills the groups that are short.
    Every step treats all positions alike, so the result is exchangeable, hence uniform."""
    counts = np.asarray(counts, dtype=np.int64)
    n, G = int(counts.sum()), len(counts)
    if G > 255:
        raise ValueError("at most 255 groups")
    cuts = np.clip(np.round(65536 * np.cumsum(counts)[:-1] / n), 0, 65535).astype(np.uint16)
    raw = rng.bit_generator.random_raw(-(-n // 4)).view(np.uint16)[:n]
    v = out[:n]
    v[:] = 0
    for c in cuts:  # code = number of cuts at or below the draw
        v += raw >= c
    have = np.bincount(v, minlength=G)[:G]
    pool = [_pick(rng, v, g, int(have[g] - counts[g]), int(have[g])) for g in range(G) if have[g] > counts[g]]
    if pool:
        free = rng.permutation(np.concatenate(pool))
        need = np.maximum(counts - have, 0)
        v[free] = np.repeat(np.arange(G, dtype=np.uint8), need)


def _pick(rng: np.random.Generator, v: np.ndarray, value: int, d: int, total: int) -> np.ndarray:
    """Positions of a uniformly random d of the ``total`` entries of ``v`` equal to ``value``."""
    n = len(v)
    while True:
        k = int(1.3 * d * n / total) + 64
        hit = np.unique(rng.integers(0, n, size=k))
        hit = hit[v[hit] == value]
        if hit.size >= d:
            break
    return hit[rng.choice(hit.size, size=d, replace=False)] if hit.size > d else hit


class GroupsSpdd:
    """Exact SPDD (∫ max_g − min_g of the ECDFs) for many labelings of the same sorted scores,
    three or more groups: one compiled pass per labeling over the sorted positions
    (`fairviz.metrics._kernels.step_spread`: each position adds one to its group's count, the
    interval after it adds the spread of the ECDFs). Same interface as `TwoGroupSpdd` (no
    padding: N = n; no scratch)."""

    def __init__(self, xs: np.ndarray, counts: np.ndarray):
        self.n = self.N = len(xs)
        self.chunk = 1
        self.counts = np.asarray(counts, dtype=np.int64)
        if len(self.counts) < 2 or (self.counts < 1).any() or self.counts.sum() != self.n:
            raise ValueError("every group needs at least one row, and the counts must add up to the rows")
        self.dz = np.diff(np.asarray(xs, dtype=np.float64))
        self.ones = np.ones(self.n, dtype=np.uint8)

    def stat(self, C: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """C (B, n) uint8 group codes over the sorted positions -> (B,) SPDD values."""
        return np.array([step_spread(self.ones, C[r], self.ones, self.dz, self.counts, False) for r in range(len(C))])


def _kernel(xs: np.ndarray, counts: np.ndarray) -> TwoGroupSpdd | GroupsSpdd:
    return TwoGroupSpdd(xs, int(counts[1])) if len(counts) == 2 else GroupsSpdd(xs, counts)


def draw_labeling(rng: np.random.Generator, counts: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (uint8, n = sum of ``counts``) with a uniformly random labeling: `relabel` for
    two groups, `relabel_groups` for more."""
    if len(counts) == 2:
        relabel(rng, int(counts.sum()), int(counts[1]), out)
    else:
        relabel_groups(rng, counts, out)


def spdd_null(xs: np.ndarray, counts, n_perm: int, random_state, *, batch: int = 8,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_perm,) SPDD of the sorted scores ``xs`` under uniformly random labelings with
    ``counts[g]`` rows in group g. ``progress(done, n_perm)`` is called from the calling thread
    after each of about 20 slices (the threads work inside a slice)."""
    counts = np.asarray(counts, dtype=np.int64)
    kernel = _kernel(xs, counts)
    seeds = _seed_sequences(random_state, n_perm)

    def make_worker():
        C = np.zeros((batch, kernel.N), dtype=np.uint8)
        X = np.empty((batch, min(kernel.chunk, kernel.N)))

        def run(seed_batch) -> np.ndarray:
            for r, sd in enumerate(seed_batch):
                draw_labeling(_rng(sd), counts, C[r])
            return kernel.stat(C[: len(seed_batch)], X)

        return run

    out = np.empty(n_perm)
    step = max(4 * batch, -(-n_perm // 20)) if progress is not None else n_perm
    work = float(len(xs)) * max(1, len(counts) - 1)
    for a in range(0, n_perm, step):
        b = min(n_perm, a + step)
        out[a:b] = _run_replicates(make_worker, seeds[a:b], 1, work=work * (b - a), batch=batch)[:, 0]
        if progress is not None:
            progress(b, n_perm)
    return out


def observed_spdd(xs: np.ndarray, codes: np.ndarray, counts) -> float:
    """SPDD of one labeling (codes: (n,) group codes over the sorted positions) with the same kernel."""
    kernel = _kernel(xs, np.asarray(counts, dtype=np.int64))
    C = np.zeros((1, kernel.N), dtype=np.uint8)
    C[0, : len(xs)] = codes
    return float(kernel.stat(C)[0])
