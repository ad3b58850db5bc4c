"""The permutation null of SPDD, fast: relabel the already-sorted scores, one pass per labeling.

`fairviz.significance.permutation_test` uses this for SPDD with up to 255 groups (two groups is the
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
- statistic (`SortedSpdd`): one compiled pass over the sorted positions (`fairviz._jit`). Two
  groups: with ``s_m = n1`` (group 0) or ``−n0`` (group 1), ``E_k = Σ_{m≤k} s_m = n0·n1·(F0 − F1)``
  after sorted position ``k`` (an exact integer), and SPDD·n0·n1 = Σ_k |E_k|·(z_{k+1} − z_k).
  More groups: each position adds one to its group's count and the interval after it adds the
  spread (highest minus lowest) of the ECDFs. Ties need nothing special: the width is 0 inside
  a run of equal scores.

Permutation r uses its own generator (seed r of ``SeedSequence(random_state).spawn(n_perm)``), so
the null values do not depend on threads or batching.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairviz._jit import njit
from fairviz.metrics._kernels import step_spread
from fairviz.metrics._resample import _rng, _run_replicates, _seed_sequences


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
    cuts = np.clip(np.round(65536 * np.cumsum(counts)[:-1] / n), 0, 65535).astype(np.int64)
    # code of a draw = number of cuts at or below it, read from a table of all 65,536 draws
    table = np.repeat(np.arange(G, dtype=np.uint8), np.diff(np.concatenate([[0], cuts, [65536]])))
    raw = rng.bit_generator.random_raw(-(-n // 4)).view(np.uint16)[:n]
    v = out[:n]
    have = _codes_from_table(raw, table, v, G)
    pool = [_pick(rng, v, g, int(have[g] - counts[g]), int(have[g])) for g in range(G) if have[g] > counts[g]]
    if pool:
        free = rng.permutation(np.concatenate(pool))
        need = np.maximum(counts - have, 0)
        v[free] = np.repeat(np.arange(G, dtype=np.uint8), need)


@njit
def _codes_from_table(raw, table, out, G):
    """out[i] = table[raw[i]] for the (n,) uint16 draws; returns the (G,) count of each code
    (four interleaved tallies: consecutive increments of one counter would wait on each other)."""
    tally = np.zeros((4, G), np.int64)
    for i in range(raw.shape[0]):
        c = table[raw[i]]
        out[i] = c
        tally[i & 3, c] += 1
    return tally.sum(axis=0)


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


class SortedSpdd:
    """Exact SPDD of labelings of the same sorted scores xs (n,), ``counts`` (G,) rows per group:
    one compiled pass over the sorted positions per labeling (two groups: several labelings per
    pass, `_two_group_pass4`); more groups: `fairviz.metrics._kernels.step_spread` (each
    position adds one to its group's count, the interval after it adds the spread of the
    ECDFs)."""

    def __init__(self, xs: np.ndarray, counts: np.ndarray):
        self.n = len(xs)
        self.counts = np.asarray(counts, dtype=np.int64)
        if len(self.counts) < 2 or (self.counts < 1).any() or self.counts.sum() != self.n:
            raise ValueError("every group needs at least one row, and the counts must add up to the rows")
        self.dz = np.diff(np.asarray(xs, dtype=np.float64))
        self.ones = np.ones(self.n, dtype=np.uint8) if len(self.counts) > 2 else None

    def many(self, codes: np.ndarray) -> np.ndarray:
        """(B,) SPDD of B labelings: codes (B, n) uint8 group codes over the sorted positions.
        Each labeling's value does not depend on the others in the batch (nor on B)."""
        B = len(codes)
        if self.ones is not None:
            return np.array([step_spread(self.ones, c, self.ones, self.dz, self.counts, False) for c in codes])
        out = np.empty(-(-B // 4) * 4)
        n0, n1 = int(self.counts[0]), int(self.counts[1])
        for a in range(0, B, 4):
            rows = [codes[min(a + i, B - 1)] for i in range(4)]  # a short last batch repeats its last labeling
            _two_group_pass4(*rows, self.dz, n0, n1, out[a : a + 4])
        return out[:B]

    def __call__(self, codes: np.ndarray) -> float:
        """SPDD of one labeling: codes (n,) uint8 group codes over the sorted positions."""
        return float(self.many(codes.reshape(1, -1))[0])


@njit
def _two_group_pass4(c0, c1, c2, c3, dz, n0, n1, out):
    """Two groups, four labelings (codes c0..c3, each (n,)) in one pass over the gaps dz: for
    labeling b, E_k = Σ_{m≤k} s_m with s = n1 (group 0) or −n0 (group 1) is n0·n1·(F0 − F1)
    after sorted position k, an exact integer, and out[b] = Σ_k |E_k|·dz_k / (n0·n1). The four
    sums are independent chains that overlap in the processor and read each gap once; each is
    formed in the same order as alone, with partial sums per block of 4,096 positions
    (rounding near 1e-16)."""
    step = n0 + n1
    e0 = e1 = e2 = e3 = 0
    p0 = p1 = p2 = p3 = 0.0
    t0 = t1 = t2 = t3 = 0.0
    for k in range(dz.shape[0]):
        d = dz[k]
        e0 += n1 - step * c0[k]  # branch-free: codes are 0 or 1
        e1 += n1 - step * c1[k]
        e2 += n1 - step * c2[k]
        e3 += n1 - step * c3[k]
        p0 += abs(e0) * d
        p1 += abs(e1) * d
        p2 += abs(e2) * d
        p3 += abs(e3) * d
        if (k & 4095) == 4095:
            t0 += p0
            t1 += p1
            t2 += p2
            t3 += p3
            p0 = p1 = p2 = p3 = 0.0
    scale = n0 * n1
    out[0] = (t0 + p0) / scale
    out[1] = (t1 + p1) / scale
    out[2] = (t2 + p2) / scale
    out[3] = (t3 + p3) / scale


def draw_labeling(rng: np.random.Generator, counts: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (uint8, n = sum of ``counts``) with a uniformly random labeling: `relabel` for
    two groups, `relabel_groups` for more."""
    if len(counts) == 2:
        relabel(rng, int(counts.sum()), int(counts[1]), out)
    else:
        relabel_groups(rng, counts, out)


#: Labelings per pass of the two-group kernel (and per batch of a thread).
_BATCH = 8


def spdd_null(xs: np.ndarray, counts, n_perm: int, random_state, *,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_perm,) SPDD of the sorted scores ``xs`` under uniformly random labelings with
    ``counts[g]`` rows in group g. ``progress(done, n_perm)`` is called from the calling thread
    after each of about 20 slices (the threads work inside a slice)."""
    counts = np.asarray(counts, dtype=np.int64)
    stat = SortedSpdd(xs, counts)
    seeds = _seed_sequences(random_state, n_perm)

    def make_worker():
        codes = np.empty((_BATCH, stat.n), dtype=np.uint8)

        def run(seed_batch) -> np.ndarray:
            for r, sd in enumerate(seed_batch):
                draw_labeling(_rng(sd), counts, codes[r])
            return stat.many(codes[: len(seed_batch)])

        return run

    out = np.empty(n_perm)
    step = max(32, -(-n_perm // 20)) if progress is not None else n_perm
    work = float(len(xs)) * max(1, len(counts) - 1)
    for a in range(0, n_perm, step):
        b = min(n_perm, a + step)
        out[a:b] = _run_replicates(make_worker, seeds[a:b], 1, work=work * (b - a), batch=_BATCH)[:, 0]
        if progress is not None:
            progress(b, n_perm)
    return out


def observed_spdd(xs: np.ndarray, codes: np.ndarray, counts) -> float:
    """SPDD of one labeling (codes: (n,) group codes over the sorted positions) with the same kernel."""
    return float(SortedSpdd(xs, np.asarray(counts, dtype=np.int64))(np.ascontiguousarray(codes, dtype=np.uint8)))
