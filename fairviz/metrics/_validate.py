"""Input checks shared by every metric: scores and labels in [0, 1], and the one group encoder.

`encode_groups` is the single place where group values become integer codes (sorted labels,
counts per group); `fairviz.groups`, `fairviz.repair`, `fairviz.significance` and the video
dataset call it rather than factorising on their own.
"""

from __future__ import annotations

import math
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


def python_scalar(v: Any) -> Any:
    """numpy scalar -> the Python scalar (so labels compare, hash and serialise like the input)."""
    return v.item() if isinstance(v, np.generic) else v


def sorted_labels(values: Sequence) -> list:
    """Values sorted; a mixed, unorderable set (e.g. 1 and "a") by its text, as fairviz.theme does."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _group_array(groups: Any) -> tuple[np.ndarray, list | None]:
    """Group values as a 1-D numpy array, and the categories of a categorical input (else None)."""
    cats = None
    if hasattr(groups, "cat") and hasattr(groups, "to_numpy"):  # pandas categorical Series
        cats = list(groups.cat.categories)
        arr = groups.to_numpy(dtype=object)
    elif type(groups).__name__ == "Categorical" and hasattr(groups, "categories"):
        cats = list(groups.categories)
        arr = np.asarray(groups, dtype=object)
    elif isinstance(getattr(groups, "dtype", None), pd.StringDtype):
        # text as pandas stores it (e.g. Arrow): hashed as stored, 4× faster than as Python strings
        arr = groups.array if isinstance(groups, pd.Series) else groups
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
    return arr, cats


def _encode_integers(arr: np.ndarray, n: int):
    """Bool / integer groups by counting (no hashing): (codes, labels, counts), or None when the
    values span too wide a range for a count table."""
    a = arr.view(np.uint8) if arr.dtype.kind == "b" else arr
    lo, hi = int(a.min()), int(a.max())
    if hi - lo > max(4 * n, 1 << 16):
        return None
    off = a.astype(np.intp, copy=False) if lo == 0 else a.astype(np.intp) - lo
    full = np.bincount(off, minlength=hi - lo + 1)
    present = np.flatnonzero(full)
    if len(present) == hi - lo + 1:
        codes = np.ascontiguousarray(off)
    else:
        lut = np.full(hi - lo + 1, -1, dtype=np.intp)
        lut[present] = np.arange(len(present))
        codes = lut[off]
    if arr.dtype.kind == "b":
        labels = tuple(bool(v + lo) for v in present)
    else:
        labels = tuple(python_scalar(arr.dtype.type(v + lo)) for v in present)
    return codes, labels, full[present].astype(np.int64)


def _is_missing(u: Any, missing) -> bool:
    return (isinstance(u, str) and u.strip().lower() in missing) or (isinstance(u, float) and math.isnan(u))


def _encode_values(arr: np.ndarray, what: str, missing):
    """Any hashable groups by `pandas.factorize`, labels sorted: (codes, labels, counts).

    missing None: a missing value (NaN, None, pd.NA) raises; else those values and the strings
    in ``missing`` (compared after strip().lower()) get code −1.
    """
    try:
        raw_codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    except TypeError:  # lists / dicts (e.g. from a Parquet file) are unhashable
        raise ValueError(f"{what} holds lists or other nested values; give one group label per row") from None
    if missing is None and (raw_codes < 0).any():
        bad = np.flatnonzero(raw_codes < 0)
        raise ValueError(
            f"{what} contain {bad.size} missing value(s) (first at index {bad[0]}); "
            "drop those rows or give them an explicit group such as 'unknown'"
        )
    uniq = [python_scalar(u) for u in np.asarray(uniques, dtype=object)]
    keep = [j for j, u in enumerate(uniq) if missing is None or not _is_missing(u, missing)]
    try:
        keep = sorted(keep, key=lambda j: uniq[j])
    except TypeError:  # mixed, unorderable labels: by their text (ties stay in order of appearance)
        keep = sorted(keep, key=lambda j: str(uniq[j]))
    remap = np.full(len(uniq) + 1, -1, dtype=np.intp)  # code −1 indexes the trailing −1
    remap[keep] = np.arange(len(keep))
    codes = remap[raw_codes]
    counts = np.bincount(codes[codes >= 0] if missing is not None else codes, minlength=len(keep))
    return codes, tuple(uniq[j] for j in keep), counts.astype(np.int64)


def factorize_groups(groups: Any, n: int, *, what: str = "groups", missing=None, need_two: bool = True,
                     unused_categories: str = "raise") -> tuple[np.ndarray, tuple, np.ndarray]:
    """The one group encoder: group values -> (codes intp (n,), labels tuple (G,), counts int64 (G,)).

    ``labels`` are the distinct values (Python scalars), sorted (mixed, unorderable ones by their
    text); ``codes[i]`` indexes them. ``missing``: None (a missing value raises ValueError) or
    strings meaning "missing" (lower case): those rows, and NaN/None/pd.NA, get code −1 and are
    not counted. ``need_two``: fewer than two distinct groups raise. ``unused_categories``: "raise" (a
    categorical's category without rows is an error) or "drop". ``what`` names the values in
    messages.
    """
    arr, cats = _group_array(groups)
    if len(arr) != n:
        raise ValueError(f"scores and groups differ in length: {n} scores, {len(arr)} group values")
    found = _encode_integers(arr, n) if arr.dtype.kind in "biu" and n else None
    codes, labels, counts = found if found is not None else _encode_values(arr, what, missing)
    if cats is not None and unused_categories == "raise":
        empty = [c for c in cats if c not in set(labels)]
        if empty:
            raise ValueError(
                f"group(s) {empty!r} are categories of the group column but have no rows; "
                "drop unused categories (e.g. series.cat.remove_unused_categories())"
            )
    if need_two and len(labels) < 2:
        found_text = f"only {labels[0]!r}" if labels else "none"
        raise ValueError(
            f"need at least two groups to compare, found {found_text} in {n} rows; check the group column"
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
    codes, glabels, counts = factorize_groups(groups, len(x))
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
