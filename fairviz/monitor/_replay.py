"""Replaying a time-stamped history into a monitor state, and a small example stream."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from fairviz.monitor._state import MonitorConfig, MonitorState
from fairviz.tabular import select_columns

__all__ = ["MAX_LOOKS", "time_values", "look_slices", "replay", "example_stream"]

MAX_LOOKS = 200  # looks of a replay; the confidence sequence holds at every look, so fewer is fine


def time_values(df: pd.DataFrame, column: str) -> pd.Series:
    """The time column as numbers or datetimes (ValueError naming the first bad row)."""
    if column not in df.columns:
        raise ValueError(f"time column {column!r} not found; available columns: "
                         + ", ".join(map(str, list(df.columns)[:30])))
    col = df[column]
    if isinstance(col, pd.DataFrame):
        raise ValueError(f"time column {column!r} appears more than once; rename the duplicates")
    missing = col.isna().to_numpy()
    if missing.any():
        raise ValueError(f"time column {column!r} has {int(missing.sum())} missing value(s) "
                         f"(first at row {int(np.flatnonzero(missing)[0])}); every decision needs a time")
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        return col.reset_index(drop=True)
    parsed = pd.to_datetime(col, errors="coerce", format="mixed", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"time column {column!r} has {int(bad.sum())} value(s) that are neither numbers nor "
                         f"dates (first at row {i}: {col.iloc[i]!r})")
    return parsed.reset_index(drop=True)


def look_slices(times_sorted: np.ndarray, max_looks: int = MAX_LOOKS) -> list[slice]:
    """Consecutive slices of time-sorted rows: one per distinct time, or, with more distinct times
    than `max_looks`, about equal chunks that never split rows sharing a time."""
    n = len(times_sorted)
    if n == 0:
        return []
    change = np.flatnonzero(times_sorted[1:] != times_sorted[:-1]) + 1
    if len(change) + 1 > max_looks:
        targets = (np.arange(1, max_looks) * n) // max_looks
        # move each cut to the first row whose time differs from the row before the target
        change = np.unique(np.searchsorted(times_sorted, times_sorted[targets - 1], side="right"))
        change = change[(change > 0) & (change < n)]
    edges = np.concatenate([[0], change, [n]])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def replay(df: pd.DataFrame, score: str, group: str, time_column: str, *, label: str | None = None,
           state: MonitorState | None = None, epsilon: float = 0.05, alpha: float = 0.05, taus=(), eo_taus=(),
           bits: int = 16, max_looks: int = MAX_LOOKS,
           progress: Callable[[int, int], None] | None = None) -> MonitorState:
    """Feed a table's rows to a state in time order, one update per look (see `look_slices`).

    A new state (``state=None``) monitors every group in the table with the given settings; an
    existing state keeps its own. `label`: an optional label column (empty cells: not known).
    Returns the state (updated in place when given)."""
    scores, groups, labels = select_columns(df, score, group, label, min_groups=1, labels_may_be_missing=True)
    times = time_values(df, time_column)
    order = np.argsort(times.to_numpy(), kind="stable")
    if state is None:
        names = list(dict.fromkeys(str(g) for g in pd.unique(groups[order])))  # order of appearance
        state = MonitorState(MonitorConfig(tuple(names), epsilon, alpha, tuple(taus), bits, tuple(eo_taus)))
    t_sorted = times.to_numpy()[order]
    looks = look_slices(t_sorted, max_looks)
    for i, sl in enumerate(looks):
        rows = order[sl]
        state.update(scores[rows], groups[rows], None if labels is None else labels[rows], time=t_sorted[sl.stop - 1])
        if progress is not None:
            progress(i + 1, len(looks))
    return state


def example_stream(n_days: int = 60, per_day: int = 1500, drift_day: int = 36, seed: int = 15) -> pd.DataFrame:
    """A made-up stream for the Monitor page: columns ``day``, ``score``, ``group`` ("A", 40 %;
    "B", 60 %). Until `drift_day` group A's scores are group B's shifted up by 0.05 (SPDD = 0.05
    exactly, the edge of H0 at ε = 0.05); from then on by 0.15 (SPDD = 0.15 on those days).

    The default seed is one where a fixed-sample test repeated every day "rejects" long before the
    drift (from day 6), to show what peeking does; over many seeds that happens in roughly a third
    of streams (docs/MONITORING.md), while the anytime test waits for the drift."""
    rng = np.random.default_rng(seed)
    n = n_days * per_day
    day = np.repeat(np.arange(1, n_days + 1), per_day)
    is_a = rng.random(n) < 0.4
    base = 0.7 * rng.beta(2.0, 2.5, n)
    shift = np.where(day < drift_day, 0.05, 0.15)
    score = np.where(is_a, base + shift, base)
    return pd.DataFrame({"day": day, "score": np.round(score, 6), "group": np.where(is_a, "A", "B")})
