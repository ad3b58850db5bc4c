"""Summaries the comparison and representation figures need: the Pareto front, a 2-D PCA,
group centroids and their distance, the best row per column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


def pareto_front(points, *, minimize: tuple[bool, bool] = (True, False)) -> np.ndarray:
    """Indices of the non-dominated points, ordered by the first coordinate.

    ``points`` is (n, 2), by default (SPDD, PCC): lower SPDD is better, higher PCC is better
    (change with ``minimize``). A point is dominated when another is at least as good on both
    coordinates and strictly better on one. Rows with NaN are ignored; duplicates keep the first.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {p.shape}")
    sign = np.array([1.0 if m else -1.0 for m in minimize])
    q = p * sign  # now both coordinates are "lower is better"
    ok = np.flatnonzero(np.isfinite(q).all(axis=1))
    if ok.size == 0:
        return np.array([], dtype=np.int64)
    order = ok[np.lexsort((q[ok, 1], q[ok, 0]))]  # by x, then y
    front: list[int] = []
    best_y = np.inf
    for i in order:
        if q[i, 1] < best_y:
            front.append(int(i))
            best_y = q[i, 1]
    return np.array(front, dtype=np.int64)


class PCA2D(NamedTuple):
    """A 2-D PCA projection: ``coords`` (n, 2) and ``explained`` (2,) variance ratios."""

    coords: np.ndarray
    explained: np.ndarray


def pca_2d(z, *, random_state: int = 0) -> PCA2D:
    """Project ``z`` (n, d) onto its first two principal components (scikit-learn PCA).

    The sign of each component is fixed so that the coordinate with the largest absolute
    loading is positive (PCA's sign is otherwise arbitrary, and pictures would flip between
    runs). With d == 1 the second coordinate is 0.
    """
    from sklearn.decomposition import PCA  # noqa: PLC0415 - sklearn (and scipy under it) is slow to import; only PCA needs it

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z must be a 2-D array (n samples, d features), got shape {z.shape}")
    if z.shape[0] < 3:
        raise ValueError(f"PCA needs at least 3 rows of z, got {z.shape[0]}")
    if not np.isfinite(z).all():
        raise ValueError("z contains NaN or infinite values")
    if z.shape[1] == 1:
        coords = np.column_stack([z[:, 0] - z[:, 0].mean(), np.zeros(len(z))])
        return PCA2D(coords, np.array([1.0, 0.0]))
    pca = PCA(n_components=2, random_state=random_state).fit(z)
    comps = pca.components_
    flip = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    flip[flip == 0] = 1.0
    coords = pca.transform(z) * flip
    return PCA2D(coords, np.asarray(pca.explained_variance_ratio_, dtype=np.float64))


def group_centroids(z, groups) -> dict:
    """Mean of ``z`` (n, d) per group: ``{group: ndarray (d,)}``, groups in sorted order."""
    z = np.asarray(z, dtype=np.float64)
    g = np.asarray(groups)
    if z.ndim != 2 or len(g) != len(z):
        raise ValueError(f"z must be (n, d) and groups (n,), got {z.shape} and {g.shape}")
    labels = np.unique(g)
    return {lab.item() if hasattr(lab, "item") else lab: z[g == lab].mean(axis=0) for lab in labels}


def centroid_distance(z, groups, *, standardize: bool = False) -> float:
    """Euclidean distance between the group centroids of ``z`` (n, d); largest pair if > 2 groups.

    With ``standardize=True`` the distance is divided by the root-mean-square distance of all
    points to the overall mean, so representations of different scale compare (0 = same centre,
    ~2 = groups fully apart).
    """
    z = np.asarray(z, dtype=np.float64)
    cents = group_centroids(z, groups)
    if len(cents) < 2:
        raise ValueError("centroid distance needs at least two groups")
    c = np.stack(list(cents.values()))
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)).max()
    if standardize:
        spread = np.sqrt(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())
        d = d / spread if spread > 0 else 0.0
    return float(d)


def best_per_column(df: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, Any]:
    """Index label of the best row for each listed column (NaN ignored; ties: first row).

    ``higher_is_better`` maps a column to True (e.g. PCC) or False (e.g. SPDD).
    """
    out = {}
    for col, higher in higher_is_better.items():
        if col not in df.columns:
            raise ValueError(f"no column {col!r}; columns are {list(df.columns)}")
        s = pd.to_numeric(df[col], errors="coerce")
        if s.notna().any():
            out[col] = s.idxmax() if higher else s.idxmin()
    return out
