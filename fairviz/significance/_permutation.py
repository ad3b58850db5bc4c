"""Permutation test of SPDD / SPEO under shuffled group labels (scheme: the package docstring)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairviz.metrics._steps import _dp_gap_fn, _eo_gap_fn, _integrate_gap
from fairviz.metrics._validate import factorize_groups
from fairviz.permute import observed_spdd, spdd_null
from fairviz.permute_speo import SpeoBreakpoints, observed_speo, speo_null

#: SPDD permutations go through `fairviz.permute` (SPEO's through `fairviz.permute_speo`) up to
#: this many groups: the most a relabeling's byte codes hold (`fairviz.permute.relabel_groups`).
FAST_PERM_MAX_GROUPS = 255

#: Nulls already drawn, while a `shared_nulls` block is active (None outside one).
_NULLS: ContextVar[dict | None] = ContextVar("fairviz_permutation_nulls", default=None)


@contextmanager
def shared_nulls(store: dict | None = None) -> Iterator[dict]:
    """Within this block, a permutation test of data, metric and seed already tested reuses the
    draws: permutation r is the same whatever ``n_perm`` is (its own seed, or the r-th successive
    shuffle), so a test of ``m`` permutations after one of ``M >= m`` takes the first ``m`` null
    values — the numbers of a fresh test, without the work. The report and the Audit page run the
    SPDD test (1,000 shuffles) and then the intervals, whose uncertainty asks for the same test
    again. ``store``: a dict to keep the nulls in beyond the block (e.g. per uploaded file);
    None: the enclosing block's store, or a new one."""
    if store is None:
        store = _NULLS.get()
        store = {} if store is None else store
    token = _NULLS.set(store)
    try:
        yield store
    finally:
        _NULLS.reset(token)


def _null_key(metric: str, x: np.ndarray, codes: np.ndarray, labels: Any, random_state) -> tuple | None:
    """The key of a test in the `shared_nulls` store: a digest of the data (scores, group codes by
    first appearance, labels), the metric and the seed; None when the draws are not reproducible."""
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(np.ascontiguousarray(x).view(np.uint8))
    h.update(np.ascontiguousarray(codes, dtype=np.int64).view(np.uint8))
    if metric == "speo" and labels is not None:
        h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.float64).reshape(-1)).view(np.uint8))
    return metric, int(random_state), len(x), h.hexdigest()


@dataclass(frozen=True)
class PermutationResult:
    """Permutation test of a group-gap metric.

    observed: the metric on the data; p_value: (1 + #{null >= observed}) / (1 + n_perm) (never 0);
    null_mean / null_std: of the metric under shuffled groups (the chance level);
    null_quantiles: {q: value} of that null distribution (e.g. {0.5: ..., 0.95: ...}): the band
    of values reachable by chance alone for these group sizes; null_values: (n_perm,) the draws.
    """

    metric: str
    observed: float
    p_value: float
    null_mean: float
    null_std: float
    null_quantiles: dict
    n_perm: int
    random_state: Any
    null_values: np.ndarray = field(repr=False, compare=False)

    @property
    def resolution(self) -> float:
        """The smallest p-value this many permutations can give, 1 / (n_perm + 1): a p-value
        equal to it means "no shuffle reached the observed value", i.e. p ≤ resolution."""
        return 1.0 / (self.n_perm + 1)

    @property
    def chance_level(self) -> float:
        """The 95 % quantile of the null (the top of the chance band), if computed, else the max."""
        return float(self.null_quantiles.get(0.95, np.max(self.null_values)))

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "observed": self.observed, "p_value": self.p_value,
            "null_mean": self.null_mean, "null_std": self.null_std,
            "null_quantiles": {str(q): v for q, v in self.null_quantiles.items()},
            "n_perm": self.n_perm, "p_value_resolution": self.resolution,
        }


def _codes_by_appearance(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """Group codes (int64 (n,)) numbered in order of first appearance, and the number of groups.

    The one encoder numbers groups in sorted order; the permutation draws (which group is "1"
    in `fairviz.permute.relabel`) follow the order of appearance, so renumber to keep the
    published nulls reproducible.
    """
    codes, labels, _ = factorize_groups(groups, n, unused_categories="drop")
    first = np.full(len(labels), n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(labels))
    return rank[codes], len(labels)


def _check_permutation_args(metric: str, n_perm: Any, quantiles: Sequence[float]) -> None:
    if metric not in ("spdd", "speo"):
        raise ValueError(f"metric must be 'spdd' or 'speo'; got {metric!r}")
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer; got {n_perm!r}")
    for q in quantiles:
        if not 0.0 <= float(q) <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1]; got {q!r}")


def _finite_scores(scores: Any) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(x) == 0:
        raise ValueError("no rows to test")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN/inf; clean them first")
    return x


def _finite_labels(labels: Any, n: int) -> np.ndarray:
    if labels is None:
        raise ValueError("metric='speo' needs labels")
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(y) != n or not np.all(np.isfinite(y)):
        raise ValueError("labels must be finite and as long as scores")
    return y


def _gap_statistic(metric: str, xs: np.ndarray, order: np.ndarray, labels: np.ndarray | None, counts: np.ndarray):
    """f(c) -> the metric for group codes ``c`` over the score-sorted rows, by the one step
    integral of `fairviz.metrics` (SPDD: the ECDF gap over the sorted scores; SPEO: the gap of
    the rates over the 2n sorted breakpoints min(score, label) and label of every row). The
    generic path, for more groups than the fast ones take."""
    n_groups = len(counts)
    if metric == "spdd":
        gap = _dp_gap_fn(counts)
        return lambda c: _integrate_gap(xs, c, n_groups, gap)
    ys = labels[order]
    vals = np.concatenate([np.minimum(xs, ys), ys])
    by_value = np.argsort(vals, kind="stable")
    z = vals[by_value]
    rows = np.concatenate([np.arange(len(xs)), np.arange(len(xs))])[by_value]
    is_label = (by_value >= len(xs)).astype(np.intp)  # tag 2g: min(score, label); 2g + 1: label
    gap = _eo_gap_fn(counts)
    return lambda c: _integrate_gap(z, 2 * c[rows].astype(np.intp) + is_label, 2 * n_groups, gap)


def _shuffled_null(stat, c: np.ndarray, n_perm: int, random_state, progress) -> np.ndarray:
    """The statistic after each of ``n_perm`` successive in-place shuffles of ``c``."""
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    null = np.empty(n_perm, dtype=np.float64)
    step = max(1, -(-n_perm // 20)) if progress is not None else n_perm
    for r in range(n_perm):
        rng.shuffle(c)
        null[r] = stat(c)
        if progress is not None and ((r + 1) % step == 0 or r + 1 == n_perm):
            progress(r + 1, n_perm)
    return null


def permutation_test(
    scores: Any,
    groups: Any,
    labels: Any = None,
    metric: str = "spdd",
    *,
    n_perm: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    progress: Callable[[int, int], None] | None = None,
    breakpoints: SpeoBreakpoints | Callable[[], SpeoBreakpoints] | None = None,
) -> PermutationResult:
    """Permutation test of SPDD (or SPEO, needs `labels`) under shuffled group labels.

    The statistic is the exact integral used by `fairviz.metrics.spdd` / `speo`
    (integral over tau of max_g - min_g of the group rates; W1 for two groups), computed by the
    same kernel. Cost: one sort, then O(n * n_groups) per permutation; SPDD with up to
    `FAST_PERM_MAX_GROUPS` groups takes `fairviz.permute`'s compiled pass over random relabelings
    of the sorted scores instead (two groups: 1,000 permutations of 10⁶ rows in seconds), and
    SPEO `fairviz.permute_speo`'s over relabelings of the sorted breakpoints. See the module docstring for
    the exact schemes. ``breakpoints``: SPEO's sorted breakpoints of these scores and labels
    (`fairviz.permute_speo.SpeoBreakpoints`, or a function that returns them, called only if
    the null is drawn), when the caller already has them (every grouping of the same rows shares
    them); built here otherwise. ``progress(done, n_perm)`` is called as
    permutations finish. The smallest p-value is 1 / (n_perm + 1) (`PermutationResult.resolution`).
    Inside `shared_nulls`, a test already run on the same data and seed is not run again.
    """
    _check_permutation_args(metric, n_perm, quantiles)
    x = _finite_scores(scores)
    n = len(x)
    codes, n_groups = _codes_by_appearance(groups, n)
    y = None if metric == "spdd" else _finite_labels(labels, n)
    store = _NULLS.get()
    key = None if store is None else _null_key(metric, x, codes, labels, random_state)
    if key is not None and key in store and len(store[key][1]) >= n_perm:
        observed, null = store[key]
        if progress is not None:
            progress(int(n_perm), int(n_perm))
        return _permutation_result(metric, observed, null[: int(n_perm)].copy(), quantiles, random_state)
    observed, null = _draw_null(metric, x, codes, n_groups, y, int(n_perm), random_state, progress, breakpoints)
    if key is not None:  # a copy: the caller may change its array, the store serves later callers
        store[key] = (observed, null.copy())
    return _permutation_result(metric, observed, null, quantiles, random_state)


def _draw_null(metric, x, codes, n_groups, labels, n_perm, random_state, progress,
               breakpoints=None) -> tuple[float, np.ndarray]:
    """(the statistic on the data, (n_perm,) its values under shuffled groups)."""
    counts = np.bincount(codes, minlength=n_groups)
    if metric == "speo" and n_groups <= FAST_PERM_MAX_GROUPS:
        bp = breakpoints() if callable(breakpoints) else breakpoints
        bp = bp if bp is not None else SpeoBreakpoints(x, labels)
        if bp.n != len(x):
            raise ValueError(f"the SPEO breakpoints are of {bp.n} rows, the scores of {len(x)}")
        return observed_speo(bp, codes, counts), speo_null(bp, counts, n_perm, random_state, progress=progress)
    fast = metric == "spdd" and n_groups <= FAST_PERM_MAX_GROUPS
    # the fast SPDD pass reads only the sorted scores and, for the observed value, their groups:
    # the order of tied scores changes nothing there (zero width), so the faster unstable sort
    order = np.argsort(x, kind="quicksort" if fast else "stable")
    xs = x[order]
    c = codes[order].astype(np.uint8 if n_groups < 256 else np.int64)
    if fast:
        return observed_spdd(xs, c, counts), spdd_null(xs, counts, n_perm, random_state, progress=progress)
    stat = _gap_statistic(metric, xs, order, labels, counts)
    observed = float(stat(c))
    return observed, _shuffled_null(stat, c, n_perm, random_state, progress)


def _permutation_result(metric, observed, null, quantiles, random_state) -> PermutationResult:
    n_perm = len(null)
    tol = 1e-10 * max(1.0, abs(observed))
    p_value = (1.0 + np.count_nonzero(null >= observed - tol)) / (1.0 + n_perm)
    qs = {float(q): float(np.quantile(null, q)) for q in quantiles}
    return PermutationResult(
        metric=metric, observed=observed, p_value=float(p_value), null_mean=float(null.mean()),
        null_std=float(null.std(ddof=1)) if n_perm > 1 else 0.0, null_quantiles=qs,
        n_perm=int(n_perm), random_state=random_state if not isinstance(random_state, np.random.Generator) else None,
        null_values=null,
    )

