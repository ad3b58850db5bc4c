"""The permutation null of SPEO, fast: breakpoints sorted once for every grouping, labels relabeled.

SPEO = ∫ max_g − min_g of r_g(τ) dτ with r_g = A_g / max(B_g, 1), A_g = #{g: min(score, label) > τ},
B_g = #{g: label > τ} (`fairviz.metrics.speo`). Both counts step at the 2n breakpoints
min(score, label) ("A entries") and label ("B entries") of the rows. Those are sorted once
(`SpeoBreakpoints`); the sort does not depend on the groups, so every grouping of the same
rows (each attribute and their intersection) shares it. A permutation is a uniformly random
labeling of the rows with the observed group sizes (`fairviz.permute.relabel` for two groups,
`relabel_groups` for more; permutation r from seed r of ``SeedSequence(random_state).spawn(n_perm)``,
so the null does not depend on threads or batching), read at the breakpoints by one gather.
The step integral runs over chunks that stay in cache, carrying each group's counts from one
chunk to the next (integers: exact). Two groups: group 0's counts are the totals minus group
1's, so a labeling costs two cumulative sums and a few passes instead of one per group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairviz.metrics._resample import _rng, _run_replicates, _seed_sequences
from fairviz.permute import draw_labeling

#: Breakpoints per chunk of the step integral (a chunk's few buffers fit in L2).
_CHUNK = 1 << 16


class SpeoBreakpoints:
    """The 2n SPEO breakpoints of (scores, labels), sorted once.

    x, y: (n,) scores and labels in [0, 1] (finite). Attributes: ``rows`` intp (2n,) the row of
    each sorted breakpoint, ``is_label`` / ``not_label`` bool (2n,) (a B / an A entry), ``dz``
    float64 (2n − 1,) the gaps between consecutive breakpoints (score units), ``labels_before``
    int64 (2n − 1,) B entries at or before each breakpoint. Group-independent: share it between
    groupings of the same rows.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(x) != len(y) or len(x) < 1:
            raise ValueError("scores and labels must be non-empty and of the same length")
        n = len(x)
        vals = np.concatenate([np.minimum(x, y), y])
        # the order of tied breakpoints does not matter (zero width between them): the faster sort
        by_value = np.argsort(vals, kind="quicksort")
        z = vals[by_value]
        self.n = n
        self.is_label = by_value >= n
        self.not_label = ~self.is_label
        self.rows = np.where(self.is_label, by_value - n, by_value)
        self.dz = np.diff(z)
        self.labels_before = np.cumsum(self.is_label)[:-1]


class _SpeoKernel:
    """SPEO of a labeling (uint8 (n,) group code per row) over shared breakpoints; ``counts``
    (G,) rows per group. `worker()` gives a thread its own scratch."""

    def __init__(self, bp: SpeoBreakpoints, counts: np.ndarray):
        self.bp = bp
        self.counts = np.asarray(counts, dtype=np.int64)
        self.G = len(self.counts)
        if self.G < 2 or (self.counts < 1).any() or int(self.counts.sum()) != bp.n:
            raise ValueError("every group needs at least one row, and the counts must add up to the rows")
        if self.G == 2:
            # group 0's A and B after each breakpoint: its size minus (all entries so far minus group 1's)
            n0 = float(self.counts[0])
            m = len(bp.dz)
            self.a0_base = n0 - (np.arange(1, m + 1) - bp.labels_before)
            self.b0_base = n0 - bp.labels_before

    def worker(self) -> Callable[[np.ndarray], float]:
        ch = min(_CHUNK, max(1, len(self.bp.dz)))
        buf = {"g": np.empty(ch, np.uint8), "eq": np.empty(ch, np.bool_), "mask": np.empty(ch, np.bool_),
               "a": np.empty(ch, np.int32), "b": np.empty(ch, np.int32),
               "r": np.empty(ch), "s": np.empty(ch), "d": np.empty(ch), "t": np.empty(ch)}
        stat = self._two if self.G == 2 else self._many
        return lambda labels: stat(labels, buf)

    def _chunks(self):
        m = len(self.bp.dz)
        for s in range(0, m, _CHUNK):
            yield s, min(m, s + _CHUNK), min(m, s + _CHUNK) - s

    def _counts(self, sel: np.ndarray, s: int, e: int, carry: list, buf: dict, k: int):
        """(a, b) int32 (k,): the A and B entries of the rows ``sel`` marks at or before each
        breakpoint s..e − 1, continuing from ``carry`` (updated)."""
        bp, mask = self.bp, buf["mask"][:k]
        a = np.cumsum(np.logical_and(sel, bp.not_label[s:e], out=mask), dtype=np.int32, out=buf["a"][:k])
        b = np.cumsum(np.logical_and(sel, bp.is_label[s:e], out=mask), dtype=np.int32, out=buf["b"][:k])
        a += carry[0]
        b += carry[1]
        carry[0], carry[1] = int(a[-1]), int(b[-1])
        return a, b

    def _two(self, labels: np.ndarray, buf: dict) -> float:
        bp = self.bp
        n1 = float(self.counts[1])
        carry = [0, 0]
        total = 0.0
        for s, e, k in self._chunks():
            in_1 = np.take(labels, bp.rows[s:e], out=buf["g"][:k]).view(np.bool_)
            a, b = self._counts(in_1, s, e, carry, buf, k)
            r1, r0, d = buf["r"][:k], buf["s"][:k], buf["d"][:k]
            np.subtract(n1, a, out=r1)  # group 1: A / max(B, 1) (no label above τ: A = 0, rate 0)
            np.subtract(n1, b, out=d)
            np.divide(r1, np.maximum(d, 1.0, out=d), out=r1)
            np.add(self.a0_base[s:e], a, out=r0)
            np.add(self.b0_base[s:e], b, out=d)
            np.divide(r0, np.maximum(d, 1.0, out=d), out=r0)
            total += float(np.einsum("i,i->", np.abs(np.subtract(r0, r1, out=r0), out=r0), bp.dz[s:e]))
        return total

    def _many(self, labels: np.ndarray, buf: dict) -> float:
        bp = self.bp
        left = [[float(n), float(n)] for n in self.counts]  # A and B of each group before the chunk
        total = 0.0
        for s, e, k in self._chunks():
            tag = np.take(labels, bp.rows[s:e], out=buf["g"][:k])
            np.left_shift(tag, 1, out=tag)
            np.add(tag, bp.is_label[s:e], out=tag)  # 2g: an A entry of group g, 2g + 1: a B entry
            hi, lo, r, t = buf["r"][:k], buf["s"][:k], buf["d"][:k], buf["t"][:k]
            for g in range(self.G):
                a = np.cumsum(np.equal(tag, 2 * g, out=buf["eq"][:k]), dtype=np.int32, out=buf["a"][:k])
                b = np.cumsum(np.equal(tag, 2 * g + 1, out=buf["eq"][:k]), dtype=np.int32, out=buf["b"][:k])
                rate = hi if g == 0 else r
                np.subtract(left[g][0], a, out=rate)  # A / max(B, 1) (no label above τ: A = 0, rate 0)
                np.subtract(left[g][1], b, out=t)
                np.divide(rate, np.maximum(t, 1.0, out=t), out=rate)
                left[g][0] -= float(a[-1])
                left[g][1] -= float(b[-1])
                if g == 0:
                    np.copyto(lo, hi)
                else:
                    np.maximum(hi, r, out=hi)
                    np.minimum(lo, r, out=lo)
            total += float(np.einsum("i,i->", np.subtract(hi, lo, out=hi), bp.dz[s:e]))
        return total


def observed_speo(bp: SpeoBreakpoints, codes: np.ndarray, counts) -> float:
    """SPEO of one labeling (codes: (n,) group code of each row, < 256 groups) with the kernel
    the null uses."""
    kernel = _SpeoKernel(bp, counts)
    return kernel.worker()(np.ascontiguousarray(codes, dtype=np.uint8))


def speo_null(bp: SpeoBreakpoints, counts, n_perm: int, random_state, *,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_perm,) SPEO of the breakpoints ``bp`` under uniformly random labelings with
    ``counts[g]`` rows in group g (at most 255 groups). ``progress(done, n_perm)`` is called
    from the calling thread after each of about 20 slices (the threads work inside a slice)."""
    counts = np.asarray(counts, dtype=np.int64)
    kernel = _SpeoKernel(bp, counts)
    seeds = _seed_sequences(random_state, n_perm)

    def make_worker():
        stat = kernel.worker()
        labels = np.empty(bp.n, dtype=np.uint8)

        def run(seed_batch) -> np.ndarray:
            out = np.empty(len(seed_batch))
            for r, sd in enumerate(seed_batch):
                draw_labeling(_rng(sd), counts, labels)
                out[r] = stat(labels)
            return out

        return run

    out = np.empty(n_perm)
    step = max(2, -(-n_perm // 20)) if progress is not None else n_perm
    work = 2.0 * bp.n * len(counts)
    for a in range(0, n_perm, step):
        b = min(n_perm, a + step)
        out[a:b] = _run_replicates(make_worker, seeds[a:b], 1, work=work * (b - a), batch=1)[:, 0]
        if progress is not None:
            progress(b, n_perm)
    return out
