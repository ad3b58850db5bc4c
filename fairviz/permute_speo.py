"""The permutation null of SPEO, fast: breakpoints sorted once for every grouping, labels relabeled.

SPEO = ∫ max_g − min_g of r_g(τ) dτ with r_g = A_g / max(B_g, 1), A_g = #{g: min(score, label) > τ},
B_g = #{g: label > τ} (`fairviz.metrics.speo`). Both counts step at the 2n breakpoints
min(score, label) ("A entries") and label ("B entries") of the rows. Those are sorted once
(`SpeoBreakpoints`); the sort does not depend on the groups, so every grouping of the same
rows (each attribute and their intersection) shares it. A permutation is a uniformly random
labeling of the rows with the observed group sizes (`fairviz.permute.relabel` for two groups,
`relabel_groups` for more; permutation r from seed r of ``SeedSequence(random_state).spawn(n_perm)``,
so the null does not depend on threads or batching). The step integral is one compiled pass
over the breakpoints (`fairviz._jit`): each breakpoint moves one entry of its row's group (integer
counts: exact), and the interval after it adds the spread of the groups' rates — O(n·G) cheap
steps instead of a cumulative sum and several numpy passes per group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairviz._jit import njit
from fairviz.metrics._kernels import spread
from fairviz.metrics._resample import _rng, _run_replicates, _seed_sequences
from fairviz.permute import draw_labeling


class SpeoBreakpoints:
    """The 2n SPEO breakpoints of (scores, labels), sorted once.

    x, y: (n,) scores and labels in [0, 1] (finite). Attributes: ``rows`` intp (2n,) the row of
    each sorted breakpoint, ``is_label`` bool (2n,) (a B entry, else an A entry), ``dz``
    float64 (2n − 1,) the gaps between consecutive breakpoints (score units). Group-independent:
    share it between groupings of the same rows. ``label_order``: an argsort of ``y`` already at
    hand (several score vectors against the same labels sort the labels once).

    The A entries min(x, y) and the B entries y are sorted apart and merged (`_merge`): two
    sorts of n and a linear merge cost about half one sort of the 2n together.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, label_order: np.ndarray | None = None):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(x) != len(y) or len(x) < 1:
            raise ValueError("scores and labels must be non-empty and of the same length")
        a = np.minimum(x, y)
        # the order of tied breakpoints does not matter (zero width between them): the faster sort
        order_a = np.argsort(a, kind="quicksort")
        order_b = np.argsort(y, kind="quicksort") if label_order is None else np.asarray(label_order)
        self.n = len(x)
        self.rows = np.empty(2 * self.n, dtype=np.intp)
        self.is_label = np.empty(2 * self.n, dtype=np.bool_)
        self.dz = np.empty(2 * self.n - 1)
        _merge(a[order_a], order_a, y[order_b], order_b, self.rows, self.is_label, self.dz)


@njit
def _merge(va, order_a, vb, order_b, rows, is_label, dz):
    """Merge the sorted A entries (values ``va`` (n,) ascending, their rows ``order_a``) and B
    entries (``vb``, ``order_b``) into ``rows`` / ``is_label`` (2n,) and the gaps ``dz``
    (2n − 1,) between consecutive merged values. Branch-free: which run gives the next entry is
    data (the runs interleave at random, and mispredicted branches would dominate)."""
    n = va.shape[0]
    inf = np.inf
    i = j = 0
    prev = 0.0
    for k in range(2 * n):
        x = va[i] if i < n else inf
        y = vb[j] if j < n else inf
        take_b = y < x  # ties: the A entry first (their order does not matter)
        v = y if take_b else x
        rows[k] = order_b[min(j, n - 1)] if take_b else order_a[min(i, n - 1)]
        is_label[k] = take_b
        i += 1 - take_b
        j += take_b
        if k > 0:
            dz[k - 1] = v - prev
        prev = v


class _SpeoKernel:
    """SPEO of a labeling (uint8 (n,) group code per row) over shared breakpoints; ``counts``
    (G,) rows per group. `worker()` gives a thread its callable (the compiled loop holds no
    state between calls)."""

    def __init__(self, bp: SpeoBreakpoints, counts: np.ndarray):
        self.bp = bp
        self.counts = np.asarray(counts, dtype=np.int64)
        if len(self.counts) < 2 or (self.counts < 1).any() or int(self.counts.sum()) != bp.n:
            raise ValueError("every group needs at least one row, and the counts must add up to the rows")

    def worker(self) -> Callable[[np.ndarray], float]:
        bp, counts = self.bp, self.counts
        return lambda labels: _speo_of_labeling(labels, bp.rows, bp.is_label, bp.dz, counts)


@njit
def _speo_of_labeling(labels, rows, is_label, dz, counts) -> float:
    """∫ max_g − min_g of A_g / max(B_g, 1) over the sorted breakpoints: one pass, each
    breakpoint removes its row's A or B entry from its group (labels[rows[i]]), then the
    interval up to the next breakpoint (width dz[i]) adds the groups' spread. Partial sums per
    block of 4,096 intervals keep the rounding error of a sum over 2·10⁶ terms near 1e-16.
    Branch-free (which entry and whether the interval is empty are data, not branches: the
    kinds of entry alternate at random, and mispredicted branches cost ~40 % of the pass); an
    empty interval adds exactly 0."""
    G = counts.shape[0]
    a = counts.copy()
    b = counts.copy()
    rate = np.ones(G)
    total = 0.0
    part = 0.0
    for i in range(dz.shape[0]):
        g = labels[rows[i]]
        lab = np.int64(is_label[i])
        a[g] -= 1 - lab
        b[g] -= lab
        rate[g] = a[g] / max(b[g], 1)
        part += spread(rate, G) * dz[i]
        if (i & 4095) == 4095:
            total += part
            part = 0.0
    return total + part


def observed_speo(bp: SpeoBreakpoints, codes: np.ndarray, counts) -> float:
    """SPEO of one labeling (codes: (n,) integer group code of each row, 0..G − 1) with the
    kernel the null uses."""
    kernel = _SpeoKernel(bp, counts)
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu":
        raise ValueError("group codes must be integers")
    # the pass reads the codes in random order: as bytes they stay in cache (2–3× faster than intp)
    small = len(kernel.counts) <= 256 and codes.dtype.itemsize > 1
    return kernel.worker()(np.ascontiguousarray(codes, dtype=np.uint8 if small else None))


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
