"""Input checks shared by the data modules: labels with their groups, and row selections."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def labels_and_groups(labels: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as float64 (n,) and ``groups`` as an (n,) array, checked: one-dimensional, the
    same non-zero length, finite labels (ValueError naming the problem otherwise)."""
    y = np.asarray(labels, dtype=np.float64)
    g = np.asarray(groups)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    if g.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {g.shape}")
    if len(y) != len(g):
        raise ValueError(f"labels has {len(y)} rows but groups has {len(g)}")
    if len(y) == 0:
        raise ValueError("labels is empty")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"labels has {bad.size} NaN/inf value(s), first at index {bad[0]}")
    return y, g


def row_indices(idx: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """``idx`` (integer indices, negative ones from the end, or a boolean mask of length ``n``)
    as int64 row indices into ``n`` rows; ValueError for a wrong mask, non-integers or an index
    out of range."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean mask of shape {idx.shape}, expected ({n},)")
        idx = np.flatnonzero(idx)
    elif idx.size == 0:
        idx = idx.astype(np.int64)
    elif not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"subset indices must be integers or a boolean mask, got {idx.dtype}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"subset index out of range for {n} rows")
    return idx.astype(np.int64, copy=False)
