"""Scores on another scale (e.g. 0–100) rescaled into [0, 1], explicitly and said on every output.

Every audit needs scores in [0, 1] (thresholds τ ∈ [0, 1], SPDD = ∫₀¹ DP(τ) dτ) and refuses others
rather than guess. A user who knows the scale names it (``--score-range 0 100`` in the CLI, the
same choice on the Audit page); the scores become ``(score − LOW) / (HIGH − LOW)``, and `note`
is the sentence each output carries so the rescaling is never silent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def check_range(low, high) -> tuple[float, float]:
    """(low, high) as floats; ValueError unless both are finite and low < high."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"the score range must be two numbers LOW HIGH; got {low!r} {high!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"the score range must be finite; got {lo:g} {hi:g}")
    if lo >= hi:
        raise ValueError(f"the score range needs LOW < HIGH; got LOW = {lo:g}, HIGH = {hi:g}")
    return lo, hi


def rescale_column(df: pd.DataFrame, column: str, low, high) -> pd.DataFrame:
    """``df`` with ``column`` rescaled from [low, high] into [0, 1] (a new frame; ``df`` is not
    changed). A column that is missing or holds text is passed on as it is, so the usual checks
    report it with their own messages; out-of-range numbers are a ValueError here."""
    lo, hi = check_range(low, high)
    if column not in df.columns:
        return df
    col = df[column]
    if col.dtype == bool:
        return df
    values = pd.to_numeric(col, errors="coerce")
    if (values.isna() & col.notna()).any():
        return df
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    out = ~np.isnan(x) & ((x < lo) | (x > hi))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"score column {column!r} has {int(out.sum()):,} value(s) outside the given score range "
                         f"[{lo:g}, {hi:g}] (first at row {i}: {x[i]:g}); give the range the scores are on")
    frame = df.copy(deep=False)
    frame[column] = (x - lo) / (hi - lo)
    return frame


def note(low, high) -> str:
    """The sentence every output carries when scores were rescaled."""
    lo, hi = check_range(low, high)
    return (f"Scores rescaled from [{lo:g}, {hi:g}] to [0, 1] as (score − {lo:g}) / {hi - lo:g}; "
            "every threshold τ and metric refers to the rescaled scores.")


def to_dict(low, high) -> dict:
    """JSON form: ``{"low", "high", "note"}``."""
    lo, hi = check_range(low, high)
    return {"low": lo, "high": hi, "note": note(lo, hi)}
