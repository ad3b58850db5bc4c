"""Reading a table of scores (CSV or Parquet) and picking its audit columns, with errors a
person can act on. Shared by the `audit` and `report` commands and the app.

- `read_table(path)` -> pandas DataFrame (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``, ``.pq``).
- `select_columns(df, score, group, label=None)` -> ``(scores, groups, labels)``: scores float64
  (n,) in [0, 1], groups (n,) numpy array of the group values, labels float64 (n,) in [0, 1]
  or None.

Every problem is a ``ValueError`` (``FileNotFoundError`` for a missing file) with a one-line
message: which file or column, how many bad values, and the first offending row (0-based).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "read_table", "select_columns"]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_table(path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (at least one row, at least one column)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a CSV or Parquet file")
    suf = _suffix(path)
    if suf in CSV_SUFFIXES:
        try:
            df = pd.read_csv(path, sep="\t" if suf == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path.name} is empty: expected a header line and one row per candidate") from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, zlib.error) as err:  # zlib: bad .gz
            raise ValueError(f"cannot read {path.name} as CSV: {_one_line(err)}") from None
    elif suf in PARQUET_SUFFIXES:
        try:
            df = pd.read_parquet(path)
        except ImportError as err:  # pragma: no cover - pyarrow is a requirement
            raise ValueError(f"cannot read Parquet files here ({_one_line(err)}); install pyarrow") from None
        except Exception as err:  # pyarrow raises its own types (ArrowInvalid, ...)
            raise ValueError(f"cannot read {path.name} as Parquet: {_one_line(err)}") from None
    else:
        raise ValueError(
            f"unknown file type {suf or '(no extension)'!r} for {path.name}: use .csv, .tsv or .parquet"
        )
    if df.shape[1] == 0:
        raise ValueError(f"{path.name} has no columns")
    if len(df) == 0:
        raise ValueError(f"{path.name} has a header but no rows")
    return df


def _shown_name(name) -> str:
    """A column name for a one-line message: quoted when it holds line breaks or other
    unprintable characters, commas, or leading/trailing spaces."""
    s = str(name)
    return repr(s) if not s.isprintable() or "," in s or s != s.strip() or not s else s


def _column(df: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in df.columns:
        shown = ", ".join(map(_shown_name, list(df.columns)[:30]))
        more = f" (+{len(df.columns) - 30} more)" if len(df.columns) > 30 else ""
        raise ValueError(f"{role} column {name!r} not found; available columns: {shown}{more}")
    col = df[name]
    if isinstance(col, pd.DataFrame):
        raise ValueError(f"{role} column {name!r} appears more than once; rename the duplicates")
    return col


def _unit_column(df: pd.DataFrame, name: str, role: str, *, allow_missing: bool = False) -> np.ndarray:
    col = _column(df, name, role)
    if col.dtype == bool:
        return col.to_numpy(dtype=np.float64)
    values = pd.to_numeric(col, errors="coerce")
    missing = col.isna().to_numpy()
    bad_text = values.isna().to_numpy() & ~missing
    if bad_text.any():
        i = int(np.flatnonzero(bad_text)[0])
        raise ValueError(
            f"{role} column {name!r} has {int(bad_text.sum())} non-numeric value(s) "
            f"(first at row {i}: {col.iloc[i]!r}); {role}s must be numbers in [0, 1]"
        )
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if allow_missing:  # missing stays NaN (e.g. a label not known yet)
        missing = np.zeros_like(missing)
        x_check = np.where(np.isnan(x), 0.5, x)
    else:
        x_check = x
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{role} column {name!r} has {int(missing.sum())} missing value(s) (first at row {i}); "
            "drop or fill those rows"
        )
    inf = ~np.isfinite(x_check)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise ValueError(f"{role} column {name!r} has {int(inf.sum())} infinite value(s) (first at row {i})")
    out = (x_check < 0.0) | (x_check > 1.0)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"{role} column {name!r} has {int(out.sum())} value(s) outside [0, 1] (first at row {i}: "
            f"{x[i]:g}); rescale to [0, 1] (values are never clipped)"
        )
    return x


def select_columns(df: pd.DataFrame, score: str, group: str, label: str | None = None, *, min_groups: int = 2,
                   labels_may_be_missing: bool = False):
    """The audit inputs from a table: ``(scores, groups, labels)`` (see the module docstring).

    ``min_groups=1`` accepts a table holding one group only, and ``labels_may_be_missing=True``
    empty label cells (NaN in ``labels``): a batch of a monitored stream.

    Raises ValueError for a missing column (listing the available ones), non-numeric, missing,
    infinite or out-of-range scores/labels, missing group values, or fewer than two groups.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError("expected a pandas DataFrame")
    scores = _unit_column(df, score, "score")
    gcol = _column(df, group, "group")
    missing = gcol.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"group column {group!r} has {int(missing.sum())} missing value(s) (first at row {i}); "
            "drop those rows or give them an explicit group such as 'unknown'"
        )
    groups = gcol.to_numpy()
    try:
        n_groups = gcol.nunique()
    except TypeError:  # lists / dicts from a Parquet file are unhashable
        raise ValueError(
            f"group column {group!r} holds lists or other nested values; give one group label per row"
        ) from None
    if n_groups < min_groups:
        raise ValueError(
            f"group column {group!r} has only one group ({gcol.iloc[0]!r}); need two or more to compare"
        )
    labels = _unit_column(df, label, "label", allow_missing=labels_may_be_missing) if label is not None else None
    return scores, groups, labels
