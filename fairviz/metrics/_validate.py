"""Input checks shared by every metric: scores and labels in [0, 1], and the one group encoder.

`encode_groups` is the single place where group values become integer codes (sorted labels,
counts per group); `fairviz.groups`, `fairviz.repair`, `fairviz.significance` and the video
dataset call it rather than factorising on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd


def _to_float_array(values: Any, name: str) -> np.ndarray:
    """Convert an array-like to a 1-D float64 array (no range checks)."""
    try:
        if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be numbers in [0, 1]; could not read them as numbers ({err})"
        ) from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per row), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _raise_bad_values(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    problems = []
    if not finite.all():
        bad = np.flatnonzero(~finite)
        problems.append(
            f"{name} contain {bad.size} NaN or infinite value(s) (first at index {bad[0]}); "
            "drop or fill those rows"
        )
    with np.errstate(invalid="ignore"):
        out = finite & ((arr < 0.0) | (arr > 1.0))
    if out.any():
        bad = np.flatnonzero(out)
        problems.append(
            f"{name} contain {bad.size} value(s) outside [0, 1] (first at index {bad[0]}: "
            f"{float(arr[bad[0]]):g}); rescale them to [0, 1] (values are never clipped)"
        )
    if problems:
        raise ValueError("; ".join(problems))


def _unit_interval(values: Any, name: str) -> np.ndarray:
    """1-D float64 array with every value in [0, 1], or ValueError."""
    arr = _to_float_array(values, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one row")
    lo, hi = arr.min(), arr.max()  # NaN propagates, so one test catches NaN, inf and range
    if not (lo >= 0.0 and hi <= 1.0):
        _raise_bad_values(arr, name)
    return arr


def _python_scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _sorted_labels(values: Sequence) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed, unorderable labels: sort by their text (as fairviz.theme does)
        return sorted(values, key=str)


def _encode_groups(groups: Any, n: int) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Group values -> (codes intp (n,), sorted labels tuple, counts int64 (G,))."""
    unused: list = []
    if hasattr(groups, "cat") and hasattr(groups, "to_numpy"):  # pandas categorical Series
        cats = list(groups.cat.categories)
        arr = groups.to_numpy(dtype=object)
        unused = cats
    elif type(groups).__name__ == "Categorical" and hasattr(groups, "categories"):
        cats = list(groups.categories)
        arr = np.asarray(groups, dtype=object)
        unused = cats
    elif hasattr(groups, "to_numpy") and not isinstance(groups, np.ndarray):
        arr = groups.to_numpy()
    else:
        arr = np.asarray(groups)
        if arr.dtype.kind in "US" and not isinstance(groups, np.ndarray):
            # numpy turns mixed lists such as [2, "a"] into text; keep the original values
            if any(not isinstance(v, str) for v in groups):
                arr = np.asarray(list(groups), dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"groups must be one-dimensional (one value per row), got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"scores and groups differ in length: {n} scores, {len(arr)} group values")

    codes = labels = counts = None
    if arr.dtype.kind in "biu":
        a = arr.view(np.uint8) if arr.dtype.kind == "b" else arr
        lo, hi = int(a.min()), int(a.max())
        if hi - lo <= max(4 * n, 1 << 16):
            off = a.astype(np.intp, copy=False) if lo == 0 else a.astype(np.intp) - lo
            full = np.bincount(off, minlength=hi - lo + 1)
            present = np.flatnonzero(full)
            if len(present) == hi - lo + 1:
                codes = np.ascontiguousarray(off)
            else:
                lut = np.full(hi - lo + 1, -1, dtype=np.intp)
                lut[present] = np.arange(len(present))
                codes = lut[off]
            counts = full[present].astype(np.int64)
            if arr.dtype.kind == "b":
                labels = tuple(bool(v + lo) for v in present)
            else:
                labels = tuple(_python_scalar(arr.dtype.type(v + lo)) for v in present)
    if codes is None:


        raw_codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        missing = raw_codes < 0
        if missing.any():
            bad = np.flatnonzero(missing)
            raise ValueError(
                f"groups contain {bad.size} missing value(s) (first at index {bad[0]}); "
                "drop those rows or give them an explicit group such as 'unknown'"
            )
        uniq = [_python_scalar(u) for u in np.asarray(uniques, dtype=object)]
        ordered = _sorted_labels(uniq)
        rank = {id(u): i for i, u in enumerate(ordered)}
        # ids are stable because `ordered` holds the very objects of `uniq`
        remap = np.array([rank[id(u)] for u in uniq], dtype=np.intp)
        codes = remap[raw_codes]
        labels = tuple(ordered)
        counts = np.bincount(codes, minlength=len(labels)).astype(np.int64)
    if unused:
        empty = [c for c in unused if c not in set(labels)]
        if empty:
            raise ValueError(
                f"group(s) {empty!r} are categories of the group column but have no rows; "
                "drop unused categories (e.g. series.cat.remove_unused_categories())"
            )
    if len(labels) < 2:
        raise ValueError(
            f"need at least two groups to compare, found only {labels[0]!r} in {n} rows; "
            "check the group column"
        )
    return codes, labels, counts


@dataclass(frozen=True)
class _Data:
    x: np.ndarray  # float64 (n,) scores in [0, 1]
    codes: np.ndarray  # intp (n,) index into labels
    labels: tuple  # sorted group labels
    counts: np.ndarray  # int64 (G,) rows per group
    y: np.ndarray | None  # float64 (n,) labels in [0, 1] or None

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def n_groups(self) -> int:
        return len(self.labels)


def _prepare(scores, groups, labels=None, *, need_labels: bool = False) -> _Data:
    x = _unit_interval(scores, "scores")
    y = None
    if labels is not None:
        y = _unit_interval(labels, "labels")
        if len(y) != len(x):
            raise ValueError(f"scores and labels differ in length: {len(x)} scores, {len(y)} labels")
    elif need_labels:
        raise ValueError("this metric needs labels (the true outcome Y in [0, 1]); pass labels=...")
    codes, glabels, counts = _encode_groups(groups, len(x))
    return _Data(x, codes, glabels, counts, y)


def validate_inputs(scores, groups, labels=None):
    """Check and convert audit inputs.

    Returns ``(scores, codes, group_labels, labels)``: scores float64 (n,) in [0, 1]; codes
    int64 (n,) indexing ``group_labels`` (a tuple of the distinct group values, sorted; mixed
    unorderable values are sorted by their text); labels float64 (n,) in [0, 1] or None.

    Raises ValueError (with the count and the first offending index) for lengths that differ,
    NaN/inf, values outside [0, 1], missing group values, fewer than two groups, n == 0.
    """
    d = _prepare(scores, groups, labels)
    return d.x, d.codes.astype(np.int64, copy=False), d.labels, d.y
