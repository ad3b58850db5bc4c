"""Uploaded score tables: reading a CSV / Parquet upload, guessing its columns, and checking the
chosen columns before an audit (no Streamlit here, so it is tested directly)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairviz import metrics
from fairviz.tabular import (
    MAX_GROUPS,
    DuplicateColumnsError,
    TooLargeError,
    check_audit_size,
    numeric_values,
    read_frame,
)

#: Lower-case column names tried first for each role when a table is uploaded.
SCORE_NAMES = frozenset({"score", "scores", "prediction", "pred", "y_pred"})
GROUP_NAMES = frozenset({"group", "groups", "sex", "gender", "race", "s", "sensitive"})
LABEL_NAMES = frozenset({"label", "labels", "y", "y_true", "target", "truth"})


def guess_column(columns: Sequence, names: frozenset | set, fallback=None):
    """The first of ``columns`` whose lower-cased text is in ``names``, else ``fallback``."""
    return next((c for c in columns if str(c).lower() in names), fallback)


UPLOAD_SUFFIXES = (".csv", ".parquet")
#: Rows one uploaded table may hold, and rows × groups of one grouping, on the shared server.
APP_MAX_ROWS = 2_000_000
APP_MAX_CELLS = 20_000_000


def read_uploaded_table(data: bytes, filename: str, *, max_rows: int = APP_MAX_ROWS) -> pd.DataFrame:
    """An uploaded CSV / Parquet file (its bytes) as a DataFrame; ValueError saying what is wrong
    (empty file, unknown type, unreadable content, no rows, duplicate column names, more than
    ``max_rows`` rows: the count is read before the table is built, `fairviz.tabular.read_frame`).
    Only an empty cell is missing."""
    name = str(filename or "")
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{name or 'the file'}: upload a .csv or .parquet file")
    if not data:
        raise ValueError(f"{name} is empty (0 bytes)")
    try:
        df = read_frame(data, suffix, name, max_rows)
    except (TooLargeError, DuplicateColumnsError):
        raise
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name} has no columns: is it empty?") from None
    except (ValueError, OSError, EOFError) as err:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise ValueError(f"{name} is not a readable {kind} file: {err}") from None
    if len(df.columns) < 2:
        raise ValueError(f"{name} has {len(df.columns)} column(s); it needs a score column and a group column "
                         "(is the separator a comma?)")
    if len(df) == 0:
        raise ValueError(f"{name} has a header but no rows")
    df.columns = [str(c) for c in df.columns]
    return df


def file_slug(text: str, limit: int = 60) -> str:
    """``text`` as part of a download's file name: letters, digits, ``.`` and ``-`` kept, any
    other run of characters becomes ``_`` (e.g. ``sex × race`` → ``sex_race``)."""
    slug = re.sub(r"[^\w.-]+", "_", str(text), flags=re.ASCII).strip("._")
    return slug[:limit] or "attribute"


def _numeric_column(df: pd.DataFrame, col: str, what: str) -> np.ndarray:
    if col not in df.columns:
        raise ValueError(f"no column {col!r}; the columns are {list(df.columns)}")
    return numeric_values(df[col], f"{what} column {col!r}", f"; choose the column that holds the {what}s")


def audit_columns(df: pd.DataFrame, score_col: str, group_cols: Sequence[str], label_col: str | None = None,
                  missing_values: Sequence[str] = ()):
    """``(scores, {group column: values}, labels or None)`` from a table, checked.

    Scores and labels must be numbers in [0, 1] without NaN (errors name the column, the count
    and the first offending row); group values are passed on as they are, except that those in
    ``missing_values`` (the user's own list; case and surrounding spaces ignored) become None.
    Missing values are counted and excluded by `fairviz.groups.audit_attributes`. A group column
    with more than `fairviz.tabular.MAX_GROUPS` groups, or more than `APP_MAX_CELLS` rows × groups,
    is refused.
    """
    group_cols = list(group_cols)
    if not group_cols:
        raise ValueError("choose at least one group column")
    missing = [c for c in [score_col, *group_cols] + ([label_col] if label_col else []) if c not in df.columns]
    if missing:
        raise ValueError(f"no column(s) {missing}; the columns are {list(df.columns)}")
    if score_col in group_cols or (label_col and (label_col == score_col or label_col in group_cols)):
        raise ValueError("the score, group and label columns must be different columns")
    scores = _numeric_column(df, score_col, "score")
    labels = _numeric_column(df, label_col, "label") if label_col else None
    for arr, col, what in ((scores, score_col, "score"), (labels, label_col, "label")):
        if arr is None:
            continue
        nan = np.isnan(arr)
        if nan.any():
            raise ValueError(f"{what} column {col!r} has {int(nan.sum()):,} empty value(s) (first at row "
                             f"{int(np.flatnonzero(nan)[0])}); fill or drop those rows")
        out = (arr < 0) | (arr > 1) | ~np.isfinite(arr)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise ValueError(f"{what} column {col!r} has {int(out.sum()):,} value(s) outside [0, 1] (first at row "
                             f"{i}: {float(arr[i]):g}); rescale the {what}s to [0, 1]")
    # the same checks as every other entry point (e.g. fewer than two groups)
    first = df[group_cols[0]]
    known = first.notna().to_numpy()
    try:
        metrics.validate_inputs(scores[known], first[known].astype(str).to_numpy(),
                                None if labels is None else labels[known])
    except ValueError as err:
        raise ValueError(f"group column {group_cols[0]!r}: {err}") from None
    tokens = {str(t).strip().lower() for t in missing_values} - {""}
    attributes = {}
    for c in group_cols:
        values = df[c]
        if tokens:
            values = values.astype(object).where(~values.astype(str).str.strip().str.lower().isin(tokens), None)
        try:
            n_groups = values.nunique()
        except TypeError:  # lists from a Parquet file: audit_attributes says what is wrong
            n_groups = 0
        check_audit_size(len(df), n_groups, f"group column {c!r}", max_groups=MAX_GROUPS, max_cells=APP_MAX_CELLS)
        attributes[c] = values.to_numpy()
    return scores, attributes, labels

