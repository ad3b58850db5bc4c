"""Train / validation / test splits whose evaluation parts are balanced by group.

Validation and test rows keep their *true* labels and hold the same number of rows of every group
within each label band, so that a score's group gap on them measures the model, not the sample.
Bias injection (``fairviz.data.bias``) is applied to the training rows only.

With the default synthetic data (4000 candidates, groups balanced and independent of the label)
the defaults give about 1200 test, 600 validation and 2200 training rows; a test split of that
size keeps the finite-sample floor of SPDD (two same-distribution samples of ~600 scores per
group) around 0.01-0.02.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fairviz.data._checks import labels_and_groups

__all__ = ["balanced_splits", "label_bands"]

DEFAULT_TEST_FRACTION = 0.3
DEFAULT_VAL_FRACTION = 0.15
DEFAULT_BANDS = 10


def label_bands(labels: Any, bands: int | Sequence[float] = DEFAULT_BANDS) -> np.ndarray:
    """Band index (int64, (n,)) of every label.

    ``bands`` is either a number of quantile bands (equal-count bands of the labels; tied labels
    stay in one band, so there may be fewer) or an increasing sequence of interior edges (a label
    equal to an edge goes to the band above it).
    """
    y = np.asarray(labels, dtype=np.float64)
    if isinstance(bands, (int, np.integer)) and not isinstance(bands, bool):
        if bands < 1:
            raise ValueError(f"bands must be >= 1, got {bands}")
        edges = np.unique(np.quantile(y, np.linspace(0.0, 1.0, int(bands) + 1)[1:-1]))
    else:
        try:
            edges = np.asarray(bands, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"bands must be an int or a sequence of edges, got {bands!r}") from None
        if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError("band edges must be a finite, strictly increasing sequence")
    return np.searchsorted(edges, y, side="right").astype(np.int64)


def _fraction(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def balanced_splits(
    labels: Any,
    groups: Any,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    bands: int | Sequence[float] = DEFAULT_BANDS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split rows into train / val / test, with val and test balanced by group within each band.

    Within every label band (see :func:`label_bands`) of ``m`` rows, test takes
    ``round(test_fraction * m / n_groups)`` rows of *each* group (fewer if a group has fewer rows
    in that band: the smallest group sets the count, i.e. the majority is subsampled), then
    validation does the same with ``val_fraction`` from the rows left. Everything else — including
    the majority rows that balancing left over — goes to train.

    Args:
        labels: (n,) true labels.
        groups: (n,) group values (two or more distinct values).
        test_fraction, val_fraction: target shares of all rows, each in [0, 1), sum < 1.
        bands: number of label quantile bands, or interior band edges.
        seed: which rows go where (deterministic for a seed).

    Returns:
        ``{"train", "val", "test"}`` -> sorted int64 index arrays, disjoint, covering all rows.
    """
    y, g = labels_and_groups(labels, groups)
    test_fraction = _fraction("test_fraction", test_fraction)
    val_fraction = _fraction("val_fraction", val_fraction)
    if test_fraction + val_fraction >= 1.0:
        raise ValueError(
            f"test_fraction + val_fraction must be < 1 to leave training rows, got "
            f"{test_fraction} + {val_fraction}"
        )
    values, codes = np.unique(g, return_inverse=True)
    if len(values) < 2:
        raise ValueError(f"balanced splits need at least two groups, found {values.tolist()}")
    test_idx, val_idx = _balanced_parts(codes, len(values), label_bands(y, bands), test_fraction,
                                        val_fraction, np.random.default_rng(seed))
    if test_fraction > 0 and test_idx.size == 0:
        raise ValueError(
            "the test split is empty: no label band holds rows of every group; use fewer bands "
            "or more data"
        )
    taken = np.zeros(len(y), dtype=bool)
    taken[test_idx] = True
    taken[val_idx] = True
    return {"train": np.flatnonzero(~taken).astype(np.int64), "val": val_idx, "test": test_idx}


def _balanced_parts(codes: np.ndarray, n_groups: int, band: np.ndarray, test_fraction: float,
                    val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted int64 test and validation row indices: in each band of m rows, the same number of
    rows of every group (round(fraction * m / n_groups), capped by the smallest group)."""
    test: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for b in np.unique(band):
        in_band = band == b
        members = [rng.permutation(np.flatnonzero(in_band & (codes == c))) for c in range(n_groups)]
        m = int(in_band.sum())
        smallest = min(len(x) for x in members)
        k_test = min(smallest, int(math.floor(test_fraction * m / n_groups + 0.5)))
        k_val = min(smallest - k_test, int(math.floor(val_fraction * m / n_groups + 0.5)))
        for x in members:
            test.append(x[:k_test])
            val.append(x[k_test : k_test + k_val])
    return np.sort(np.concatenate(test)).astype(np.int64), np.sort(np.concatenate(val)).astype(np.int64)
