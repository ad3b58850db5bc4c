"""Bias injection for training data, with alpha as the knob (our reading of the paper).

The paper trains on data whose labels are biased towards the privileged group by a factor alpha
but does not publish its script. We implement two readings; in both, the label range is cut at the
``split`` quantile of the *input* labels into a **high band** (``label > threshold``) and a **low
band** (``label <= threshold``), and alpha sets the privileged:unprivileged ratio in each band:
alpha:1 in the high band and 1:alpha in the low band (alpha = 2 -> 67 %, 3 -> 75 %, 4 -> 80 %
privileged in the high band; alpha = 1 -> balanced).

- :func:`inject_bias` — **who is in the sample** (sampling bias): returns the indices of the rows
  kept, each at most once, by subsampling each band's over-represented group; labels unchanged.
  As many rows as possible are kept under the ratio.
- :func:`inject_label_bias` — **what the raters wrote** (rater bias, the paper's Ỹ): every row is
  kept and the multiset of label values is unchanged, but labels are reassigned: candidates are
  ranked by ``label + delta * [privileged]`` with the offset ``delta`` found by bisection so that the
  top band (as many rows as the original high band) holds alpha/(alpha+1) privileged, and the
  sorted original labels are handed out in that rank order. A privileged candidate therefore gets
  a higher label than an equally able unprivileged one. The high band is matched to the target;
  the low band then holds 1:alpha when the groups are equally large and ``split = 0.5`` (otherwise
  it holds whatever the group counts leave).

**More than two groups**: privilege follows the sorted group values, lowest = least favoured,
highest = most favoured; the group of rank r (0..k-1) sits at t_r = r / (k-1) along that order.

- Rater bias: rows are ranked by ``label + delta * t_r`` — an offset growing evenly along the
  group order. ``delta`` is found by bisection so that, in the top band, the most favoured group's
  selection rate (its rows in the band / its rows) is alpha times the least favoured group's; the
  groups between fall between. For two equally large groups this is the binary rule (a top-band
  share of alpha/(alpha+1) is a selection-rate ratio of alpha).
- Sampling bias: group r keeps the share alpha^(t_r − 1) of its high-band rows and alpha^(−t_r)
  of its low-band rows (at least one row of each group in each band where it has any), drawn at
  random: the most favoured group keeps its high band whole, the least favoured its low band,
  and the odds high : low of group r fall by alpha^2 from the most to the least favoured group,
  geometrically along the order. For two groups with equally many rows in each band this is the
  binary rule (alpha:1 in the high band, 1:alpha in the low band, P(high | group) = alpha/(alpha+1)
  and 1/(alpha+1)); with unequal groups it keeps the selection-rate ratios where the binary rule
  keeps count ratios.

The binary code path is kept as it is for any two groups.

Test and validation rows must keep their true labels: apply these to the training rows only
(see :func:`fairviz.data.splits.balanced_splits`). Both functions are deterministic for a seed
(the seed only picks which rows are dropped, or breaks ties).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fairviz.data._checks import labels_and_groups

__all__ = ["inject_bias", "inject_label_bias", "band_shares"]


def _validate(labels: Any, groups: Any, alpha: Any, privileged: Any, split: Any):
    y, g = labels_and_groups(labels, groups)
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number >= 1, got {alpha!r}") from None
    if not (math.isfinite(alpha) and alpha >= 1.0):
        raise ValueError(f"alpha must be a finite number >= 1 (1 = no bias), got {alpha}")
    try:
        split = float(split)
    except (TypeError, ValueError):
        raise ValueError(f"split must be a number in (0, 1), got {split!r}") from None
    if not (0.0 < split < 1.0):
        raise ValueError(f"split must be strictly between 0 and 1 (a quantile of the labels), got {split}")
    values = np.unique(g)
    if len(values) > 2:
        if privileged is not None:
            raise ValueError(
                "with more than two groups privilege follows the sorted group values; leave privileged unset"
            )
        return y, g, alpha, split
    if privileged is None:
        privileged = 1
    if len(values) != 2:
        raise ValueError(
            f"bias injection needs at least two groups, found {len(values)}: {values[:10].tolist()}"
        )
    priv = g == privileged
    if not priv.any():
        raise ValueError(f"privileged value {privileged!r} does not occur in groups {values.tolist()}")
    threshold = float(np.quantile(y, split))
    high = y > threshold
    return y, priv, alpha, threshold, high


def band_shares(labels: Any, groups: Any, *, threshold: float, privileged: Any = 1) -> tuple[float, float]:
    """(privileged share in the high band ``label > threshold``, in the low band); NaN if empty."""
    y = np.asarray(labels, dtype=np.float64)
    priv = np.asarray(groups) == privileged
    high = y > threshold
    hi = float(priv[high].mean()) if high.any() else float("nan")
    lo = float(priv[~high].mean()) if (~high).any() else float("nan")
    return hi, lo


def _keep_counts(n_major: int, n_minor: int, alpha: float) -> tuple[int, int]:
    """Most rows (major, minor) with major <= n_major, minor <= n_minor and major:minor = alpha:1
    up to rounding (half a row)."""
    if n_major == 0 or n_minor == 0:
        return n_major, n_minor  # nothing to balance against: keep what there is
    minor = int(math.floor(n_major / alpha + 0.5))
    if minor <= n_minor:  # the favoured group is the scarce one: keep it whole
        return n_major, max(1, minor)
    return min(n_major, int(math.floor(alpha * n_minor + 0.5))), n_minor


def inject_bias(labels: Any, groups: Any, alpha: float, *, privileged: Any = None, split: float = 0.5,
                seed: int = 0) -> np.ndarray:
    """Sampling bias: indices of the rows to keep so that the privileged group is over-represented
    among high labels and under-represented among low labels (our reading of the paper; k > 2
    groups: graded along the group order, see the module docstring).

    Args:
        labels: (n,) true labels (any real scale).
        groups: (n,) two distinct group values, or k > 2 (module docstring; ``privileged`` unset).
        alpha: >= 1; high band (``label > quantile(labels, split)``) keeps privileged:unprivileged
            = alpha:1, low band 1:alpha. alpha = 1 keeps the bands balanced.
        privileged: the privileged group value (None = 1; k > 2 groups: must stay None).
        split: quantile of the labels in (0, 1) that separates the bands.
        seed: which rows are dropped (deterministic for a seed).

    Returns:
        int64 array of kept row indices, sorted, each at most once. Labels are unchanged. Within
        each band, the group that is over-represented for the target ratio is subsampled; the
        other is kept whole (as many rows as possible).
    """
    checked = _validate(labels, groups, alpha, privileged, split)
    if len(checked) == 4:
        return _sample_bias_k(*checked, seed=seed)
    y, priv, alpha, _threshold, high = checked
    rng = np.random.default_rng(seed)
    kept = []
    for band, ratio_priv in ((high, alpha), (~high, 1.0 / alpha)):
        p_idx = np.flatnonzero(band & priv)
        u_idx = np.flatnonzero(band & ~priv)
        if ratio_priv >= 1.0:
            n_p, n_u = _keep_counts(len(p_idx), len(u_idx), ratio_priv)
        else:
            n_u, n_p = _keep_counts(len(u_idx), len(p_idx), 1.0 / ratio_priv)
        kept.append(rng.choice(p_idx, size=n_p, replace=False) if n_p < len(p_idx) else p_idx)
        kept.append(rng.choice(u_idx, size=n_u, replace=False) if n_u < len(u_idx) else u_idx)
    return np.sort(np.concatenate(kept).astype(np.int64))


def inject_label_bias(
    labels: Any,
    groups: Any,
    alpha: float,
    *,
    privileged: Any = None,
    split: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Rater bias: biased labels Ỹ for every row, favouring the privileged group (our reading of
    the paper's biased training labels).

    Args:
        labels, groups, alpha, privileged, split: as in :func:`inject_bias` (privileged None = 1);
            more than two groups: see the module docstring (privileged must stay None).
        seed: breaks ties between equal ranking keys (deterministic for a seed).

    Returns:
        float64 (n,) new labels, a permutation of the input label values (the multiset is
        unchanged). Rows are ranked by ``label + delta * [group == privileged]``; ``delta`` is
        found by bisection so that the top band — as many rows as the original high band
        (``label > quantile(labels, split)``) — holds alpha/(alpha+1) privileged (or as close as
        the group counts allow); the sorted original labels are then handed out by rank. With
        alpha = 1 the privileged share of the top band is brought to 1/2 (a no-op when it already
        is, up to rounding).
    """
    checked = _validate(labels, groups, alpha, privileged, split)
    if len(checked) == 4:
        return _label_bias_k(*checked, seed=seed)
    y, priv, alpha, _threshold, high = checked
    return _label_bias_2(y, priv, alpha, high, seed=seed)


def _label_bias_2(y: np.ndarray, priv: np.ndarray, alpha: float, high: np.ndarray, *, seed: int) -> np.ndarray:
    """Rater bias for two groups: the top band (as large as ``high``) gets alpha/(alpha+1)
    privileged (``priv`` (n,) bool), as close as the group counts allow."""
    n = len(y)
    k = int(high.sum())  # size of the top band
    tie = np.random.default_rng(seed).random(n)
    if k == 0 or k == n:
        return y.copy()
    target = alpha / (alpha + 1.0)
    n_priv = int(priv.sum())
    # feasible privileged counts in the top band
    want = int(round(target * k))
    want = min(max(want, max(0, k - (n - n_priv))), min(k, n_priv))

    def ranking(delta: float) -> np.ndarray:
        # descending by key; ties broken by the seeded random draw
        return np.lexsort((tie, -(y + delta * priv)))

    def top_priv(delta: float) -> int:
        return int(priv[ranking(delta)[:k]].sum())

    span = float(y.max() - y.min()) + 1.0
    lo, hi = -span, span  # top_priv(lo) = fewest possible privileged, top_priv(hi) = most
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        c = top_priv(mid)
        if c == want:
            lo = hi = mid
            break
        if c < want:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * span:
            break
    delta = lo if abs(top_priv(lo) - want) <= abs(top_priv(hi) - want) else hi
    order = ranking(delta)
    out = np.empty(n, dtype=np.float64)
    out[order] = np.sort(y)[::-1]
    return out


def _label_bias_k(y: np.ndarray, g: np.ndarray, alpha: float, split: float, *, seed: int) -> np.ndarray:
    """Rater bias for k > 2 groups (module docstring): graded offsets along the group order."""
    _, codes = np.unique(g, return_inverse=True)
    k = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    n = len(y)
    top_n = int((y > float(np.quantile(y, split))).sum())
    if top_n == 0 or top_n == n:
        return y.copy()
    tie = np.random.default_rng(seed).random(n)
    rank = codes / (k - 1.0)

    def ranking(delta: float) -> np.ndarray:
        return np.lexsort((tie, -(y + delta * rank)))

    def excess(delta: float) -> float:
        """Most favoured group's top-band selection rate minus alpha times the least favoured's."""
        top = np.bincount(codes[ranking(delta)[:top_n]], minlength=k) / counts
        return float(top[-1] - alpha * top[0])

    span = float(y.max() - y.min()) + 1.0
    lo, hi = -span, span  # excess rises with delta
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9 * span:
            break
    delta = lo if abs(excess(lo)) <= abs(excess(hi)) else hi
    out = np.empty(n, dtype=np.float64)
    out[ranking(delta)] = np.sort(y)[::-1]
    return out


def _sample_bias_k(y: np.ndarray, g: np.ndarray, alpha: float, split: float, *, seed: int) -> np.ndarray:
    """Sampling bias for k > 2 groups (module docstring): graded keep shares along the group order."""
    _, codes = np.unique(g, return_inverse=True)
    k = int(codes.max()) + 1
    high = y > float(np.quantile(y, split))
    rng = np.random.default_rng(seed)
    kept = []
    for r in range(k):
        t_r = r / (k - 1.0)
        for band, share in ((high, alpha ** (t_r - 1.0)), (~high, alpha ** -t_r)):
            rows = np.flatnonzero(band & (codes == r))
            n_keep = max(1, int(math.floor(share * len(rows) + 0.5))) if len(rows) else 0
            kept.append(rows if n_keep >= len(rows) else rng.choice(rows, size=n_keep, replace=False))
    return np.sort(np.concatenate(kept).astype(np.int64))
