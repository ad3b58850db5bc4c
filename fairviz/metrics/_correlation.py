"""Pearson and Spearman correlation of scores with labels."""

from __future__ import annotations

import math

import numpy as np

from fairviz.metrics._validate import _unit_interval


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ac = _unit_peak(a - a.mean())
    bc = _unit_peak(b - b.mean())
    if ac is None or bc is None:
        return math.nan
    saa = float(np.einsum("i,i->", ac, ac))
    sbb = float(np.einsum("i,i->", bc, bc))
    if saa <= 0.0 or sbb <= 0.0:
        return math.nan
    r = float(np.einsum("i,i->", ac, bc)) / math.sqrt(saa * sbb)
    return max(-1.0, min(1.0, r))


def _unit_peak(centred: np.ndarray) -> np.ndarray | None:
    """``centred`` divided by its largest magnitude, or None when it is all zeros.

    Squaring raw deviations of tiny (subnormal) spreads underflows to 0 and would call a
    non-constant column constant; scaling to a peak of 1 first keeps the correlation exact.
    """
    peak = float(np.max(np.abs(centred)))
    if peak == 0.0:
        return None
    return centred / peak


def _pair(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    x = _unit_interval(scores, "scores")
    y = _unit_interval(labels, "labels")
    if len(x) != len(y):
        raise ValueError(f"scores and labels differ in length: {len(x)} scores, {len(y)} labels")
    if len(x) < 2:
        raise ValueError("need at least two rows for a correlation")
    return x, y


def pcc(scores, labels) -> float:
    """Pearson correlation of scores and labels (NaN when either is constant)."""
    x, y = _pair(scores, labels)
    return _corr(x, y)


def _tie_blocks(v: np.ndarray, stable: bool = True):
    """order (an argsort: stable, or the faster unstable one where the order of tied values does
    not matter), block starts in sorted order, block id per sorted position."""
    order = np.argsort(v, kind="stable" if stable else "quicksort")
    vs = v[order]
    new = np.empty(len(v), dtype=bool)
    new[0] = True
    np.not_equal(vs[1:], vs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    block_id = np.cumsum(new) - 1
    return order, starts, block_id


def _midranks(v: np.ndarray) -> np.ndarray:
    # a tie block's mid-rank does not depend on the order inside it: the unstable sort (~4× faster)
    return _midranks_from_blocks(*_tie_blocks(v, stable=False))


def _midranks_from_blocks(order: np.ndarray, starts: np.ndarray, block_id: np.ndarray) -> np.ndarray:
    """1-based mid-ranks (n,) in row order from `_tie_blocks`' output."""
    ends = np.append(starts[1:], len(order))
    mid = (starts + ends + 1) / 2.0  # average of the 1-based ranks starts+1 .. ends
    r = np.empty(len(order))
    r[order] = mid[block_id]
    return r


def srcc(scores, labels) -> float:
    """Spearman rank correlation (average ranks for ties; NaN when either is constant)."""
    x, y = _pair(scores, labels)
    return _corr(_midranks(x), _midranks(y))

