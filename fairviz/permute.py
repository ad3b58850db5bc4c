"""The permutation null of two-group SPDD, fast: relabel the already-sorted scores, sum by blocks.

`fairviz.significance.permutation_test` uses this for SPDD with two groups (the common case and
the one worth 1,000+ permutations at 10⁶ rows). Scores are sorted once; a permutation is a
uniformly random choice of which ``n1`` of the ``n`` sorted positions belong to group 1:

- drawing: iid Bernoulli bits (16-bit uniform words under a threshold near ``n1 / n``), then the
  surplus of ones (or of zeros) is flipped back at a uniformly random subset of them. Bits that
  are iid are exchangeable and the correction treats every position alike, so the result is
  uniform over all labelings with exactly ``n1`` ones — the law of a shuffle — at the cost of one
  pass over bytes instead of ``n`` random swaps;
- statistic: with ``s_m = n1`` (group 0) or ``−n0`` (group 1), ``E_k = Σ_{m≤k} s_m =
  n0·n1·(F0 − F1)`` after sorted position ``k`` (an exact integer in float64), and
  SPDD·n0·n1 = Σ_k |E_k|·(z_{k+1} − z_k). Ties need nothing special: the width is 0 inside a
  run of equal scores. In a block of positions, E stays in [E0 − n0·T1, E0 + n1·T0] (Tg: group
  g's rows in the block); when that range does not straddle 0, |E| = ±E on the whole block and
  its share is ±(E0·Σ dz + Σ_m s_m·tail_m) (tail_m = Σ_{k≥m in the block} dz_k): one dot product
  per block. Blocks where the ECDFs cross are summed position by position (the idea of
  `fairviz.metrics`' two-group SPDD bootstrap).

Permutation r uses its own generator (seed r of ``SeedSequence(random_state).spawn(n_perm)``), so
the null values do not depend on threads or batching.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairviz.metrics import _rng, _run_replicates, _seed_sequences


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
        _flip_some(rng, out[:n], 1 if d > 0 else 0, abs(d), n1 if d > 0 else n - n1)


def _flip_some(rng: np.random.Generator, v: np.ndarray, value: int, d: int, have: int) -> None:
    """Flip ``d`` of the positions of ``v`` holding ``value`` (there are ``have + d`` of them),
    a uniformly random subset: draw positions uniformly, keep the distinct ones holding
    ``value`` (by symmetry a uniformly random set of them, given its size), take d of those."""
    n = len(v)
    total = have + d
    while True:
        k = int(1.3 * d * n / total) + 64
        hit = np.unique(rng.integers(0, n, size=k))
        hit = hit[v[hit] == value]
        if hit.size >= d:
            break
    if hit.size > d:
        hit = hit[rng.choice(hit.size, size=d, replace=False)]
    v[hit] = 1 - value


class TwoGroupSpdd:
    """Exact two-group SPDD for many labelings of the same sorted scores.

    xs: (n,) sorted scores. `stat(C)`: C (B, N) uint8 group-1 indicators over the sorted
    positions (N = padded length, zeros past n) -> (B,) SPDD values.
    """

    def __init__(self, xs: np.ndarray, n1: int, block: int = 64, chunk: int = 1 << 15):
        n = len(xs)
        self.n, self.n1, self.n0 = n, int(n1), n - int(n1)
        if self.n0 < 1 or self.n1 < 1:
            raise ValueError("both groups need at least one row")
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
        """Per block and labeling ((nb, B) each): Σ is1·tail and T1 (group-1 rows)."""
        B, BS = len(C), self.BS
        q = np.empty((self.nb, B))
        t1 = np.empty((self.nb, B))
        for a in range(0, self.N, self.chunk):
            m = min(self.chunk, self.N - a)
            blocks = slice(a // BS, (a + m) // BS)
            Xc = X[:B, :m]
            np.copyto(Xc, C[:, a : a + m])
            X3 = Xc.reshape(B, m // BS, BS)
            q[blocks] = np.einsum("bkj,kj->kb", X3, self.tail[blocks])
            t1[blocks] = X3.sum(axis=2).T
        return q, t1

    def stat(self, C: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        B = len(C)
        if X is None:
            X = np.empty((B, min(self.chunk, self.N)))
        n0, n1, n = float(self.n0), float(self.n1), float(self.n)
        q, T1 = self._block_sums(C, X)
        T0 = self.real_count[:, None] - T1
        U = n1 * T0 - n0 * T1  # E gained over each block (exact integers)
        E0 = np.cumsum(U, axis=0) - U
        pos = E0 - n0 * T1 >= 0.0
        neg = E0 + n1 * T0 <= 0.0
        sign = np.where(pos, 1.0, np.where(neg, -1.0, 0.0))
        share = E0 * self.block_dz[:, None] + n1 * self.tail_sum[:, None] - n * q
        acc = np.einsum("br,br->r", sign, share)
        bi, ri = np.nonzero(~(pos | neg))
        if bi.size:
            self._exact_blocks(C, E0, bi, ri, acc)
        return acc / (n0 * n1)

    def _exact_blocks(self, C, E0, bi, ri, acc) -> None:
        Cb = C.reshape(len(C), self.nb, self.BS)
        step = max(1, (1 << 16) // self.BS)
        for a in range(0, len(bi), step):
            b, r = bi[a : a + step], ri[a : a + step]
            W = self.real[b] * float(self.n1) - Cb[r, b] * float(self.n)  # s_m: n1 or −n0 (0 on padding)
            np.cumsum(W, axis=1, out=W)
            W += E0[b, r][:, None]
            np.abs(W, out=W)
            np.add.at(acc, r, np.einsum("pj,pj->p", W, self.dz[b]))
        self.exact_blocks += len(bi)


def spdd_null(xs: np.ndarray, n1: int, n_perm: int, random_state, *, batch: int = 8,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_perm,) SPDD of the sorted scores ``xs`` under uniformly random two-group labelings
    with ``n1`` rows in group 1. ``progress(done, n_perm)`` is called from the calling thread
    after each of about 20 slices (the threads work inside a slice)."""
    kernel = TwoGroupSpdd(xs, n1)
    seeds = _seed_sequences(random_state, n_perm)

    def make_worker():
        C = np.zeros((batch, kernel.N), dtype=np.uint8)
        X = np.empty((batch, min(kernel.chunk, kernel.N)))

        def run(seed_batch) -> np.ndarray:
            for r, sd in enumerate(seed_batch):
                relabel(_rng(sd), kernel.n, kernel.n1, C[r])
            return kernel.stat(C[: len(seed_batch)], X)

        return run

    out = np.empty(n_perm)
    step = max(4 * batch, -(-n_perm // 20)) if progress is not None else n_perm
    for a in range(0, n_perm, step):
        b = min(n_perm, a + step)
        out[a:b] = _run_replicates(make_worker, seeds[a:b], 1, work=float(len(xs)) * (b - a), batch=batch)[:, 0]
        if progress is not None:
            progress(b, n_perm)
    return out


def observed_spdd(xs: np.ndarray, is1: np.ndarray) -> float:
    """SPDD of one labeling (is1: (n,) 0/1 over the sorted positions) with the same kernel."""
    kernel = TwoGroupSpdd(xs, int(np.count_nonzero(is1)))
    C = np.zeros((1, kernel.N), dtype=np.uint8)
    C[0, : len(xs)] = is1
    return float(kernel.stat(C)[0])
