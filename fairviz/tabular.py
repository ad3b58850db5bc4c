"""Reading a table of scores (CSV or Parquet) and picking its audit columns, with errors a
person can act on. Shared by the `audit` and `report` commands and the app.

- `read_table(path, max_rows=MAX_ROWS)` -> pandas DataFrame (``.csv``, ``.csv.gz``, ``.tsv``,
  ``.parquet``, ``.pq``). Only an empty cell is missing (pandas' own list, which also takes
  "NA", "None", "null", "N/A", ... for missing, is off: those can be real group names).
- `read_frame(source, suffix, name, max_rows)`: the reader behind it and behind the app's uploads.
  The size is checked before the table is built: a Parquet file's row count comes from its
  footer, a CSV's (also a compressed one, decompressed as a stream) from counting its lines up to
  the cap, so a small file that expands to 10⁸ rows is refused in moments without using memory.
  Duplicate column names (which pandas would rename to ``score.1`` silently) are refused.
- `check_audit_size(n_rows, n_groups, ...)`: refuse an audit beyond `MAX_GROUPS` groups or
  `MAX_CELLS` rows × groups (the DP(τ) curves hold one rate per group per distinct score).
- `drop_missing_groups(df, group, tokens)`: leave out rows whose group is empty or one of the
  user's missing-value tokens, and say how many.
- `select_columns(df, score, group, label=None)` -> ``(scores, groups, labels)``: scores float64
  (n,) in [0, 1], groups (n,) numpy array of the group values, labels float64 (n,) in [0, 1]
  or None.

Every problem is a ``ValueError`` (``FileNotFoundError`` for a missing file) with a one-line
message: which file or column, how many bad values, and the first offending row (0-based).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "MAX_ROWS", "MAX_GROUPS", "MAX_CELLS", "TooLargeError",
           "DuplicateColumnsError", "read_table", "read_frame", "check_audit_size", "drop_missing_groups",
           "parse_missing_values", "select_columns", "numeric_values"]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")

#: Rows the CLI reads by default (``--max-rows``): about 1-2 GB of memory for an audit.
MAX_ROWS = 10_000_000
#: Groups in one grouping (an attribute or an intersection); more is usually an ID column.
MAX_GROUPS = 200
#: Rows × groups of one audit: the DP(τ) curves hold a rate per group per distinct score (8 bytes).
MAX_CELLS = 50_000_000
#: What to tell someone whose data is over a limit.
BIGGER_DATA_HINT = ("audit bigger data with the command line on a machine with enough memory: "
                    "`python -m fairviz audit FILE --score COL --group COL --max-rows N`")
_CHUNK = 1 << 24  # bytes read at a time when counting lines


class TooLargeError(ValueError):
    """The data is over a size limit (a ValueError: bad input, with what to do instead)."""


class DuplicateColumnsError(ValueError):
    """Two columns share a name (pandas would rename one to ``name.1`` silently)."""


def _too_many_rows(name: str, what: str, max_rows: int) -> TooLargeError:
    return TooLargeError(f"{name} has more than {max_rows:,} rows ({what}); the limit keeps an audit "
                         f"within memory. Sample or split the file, or {BIGGER_DATA_HINT}")


def _count_lines(open_stream, limit: int) -> int:
    """Line breaks in the stream from ``open_stream()``, counted up to ``limit`` + 1 (then it stops)."""
    n = 0
    with open_stream() as fh:
        while n <= limit:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            n += chunk.count(b"\n")
    return n


class _gunzip(gzip.GzipFile):
    """A decompressing stream that also closes the file under it."""

    def __init__(self, raw):
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self):
        try:
            super().close()
        finally:
            self._raw.close()


def _unique_names(names, name: str) -> None:
    seen, dup = set(), []
    for c in names:
        key = str(c)
        if key in seen and key not in dup:
            dup.append(key)
        seen.add(key)
    if dup:
        shown = ", ".join(map(_shown_name, dup[:5]))
        raise DuplicateColumnsError(f"{name} has duplicate column name(s) {shown}; rename them so that each column "
                         "has its own name")


def read_frame(source, suffix: str, name: str, max_rows: int = MAX_ROWS,
               missing_values=()) -> pd.DataFrame:
    """`source` (a path, or the bytes of an upload) as a DataFrame, size and header checked first.

    suffix: one of `CSV_SUFFIXES` / `PARQUET_SUFFIXES` (how to read it); name: the file name for
    messages. Raises `TooLargeError` beyond ``max_rows`` rows (a CSV's lines are counted, header
    included, so a cell holding line breaks counts each line), ValueError for duplicate column
    names; the reader's own errors pass through (the callers word them). Only an empty cell (and
    the strings in ``missing_values``) is read as missing.
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        opener = lambda: io.BytesIO(data)  # noqa: E731
    else:
        opener = lambda: open(source, "rb")  # noqa: E731
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq  # noqa: PLC0415 - heavy; only Parquet files need it

        with opener() as fh:
            pf = pq.ParquetFile(fh)
            n = pf.metadata.num_rows
            names = pf.schema_arrow.names
        if n > max_rows:
            raise _too_many_rows(name, f"{n:,} by its footer", max_rows)
        _unique_names(names, name)
        with opener() as fh:
            return pd.read_parquet(fh)
    sep = "\t" if suffix == ".tsv" else ","
    stream = (lambda: _gunzip(opener())) if suffix == ".csv.gz" else opener  # noqa: E731
    if _count_lines(stream, max_rows + 1) > max_rows + 1:  # + 1: the header line
        raise _too_many_rows(name, "counting its lines", max_rows)
    with stream() as fh:
        header = pd.read_csv(fh, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    _unique_names(header.iloc[0].tolist() if len(header) else [], name)
    with stream() as fh:
        return pd.read_csv(fh, sep=sep, keep_default_na=False, na_values=[""] + [str(v) for v in missing_values])


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_table(path, *, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (at least one row, at least one column; at
    most ``max_rows`` rows, else a `TooLargeError` that says what to do)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a CSV or Parquet file")
    suf = _suffix(path)
    if suf in CSV_SUFFIXES:
        try:
            df = read_frame(path, suf, path.name, max_rows)
        except (TooLargeError, DuplicateColumnsError):
            raise
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path.name} is empty: expected a header line and one row per candidate") from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, zlib.error) as err:  # zlib: bad .gz
            raise ValueError(f"cannot read {path.name} as CSV: {_one_line(err)}") from None
    elif suf in PARQUET_SUFFIXES:
        try:
            df = read_frame(path, suf, path.name, max_rows)
        except ImportError as err:  # pragma: no cover - pyarrow is a requirement
            raise ValueError(f"cannot read Parquet files here ({_one_line(err)}); install pyarrow") from None
        except (TooLargeError, DuplicateColumnsError, MemoryError):
            raise
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


def check_audit_size(n_rows: int, n_groups: int, what: str = "the group column", *,
                     max_groups: int = MAX_GROUPS, max_cells: int = MAX_CELLS) -> None:
    """Refuse (`TooLargeError`) a grouping of more than ``max_groups`` groups, or one whose rows ×
    groups exceed ``max_cells``."""
    if n_groups > max_groups:
        raise TooLargeError(
            f"{what} has {n_groups:,} distinct groups (more than {max_groups}); a group column should "
            "hold a few categories such as sex or race, not an ID or a score")
    if n_rows * n_groups > max_cells:
        raise TooLargeError(
            f"{n_rows:,} rows × {n_groups:,} groups in {what} is more than this audit may hold "
            f"({max_cells:,} rows × groups); sample the rows or merge small groups, or {BIGGER_DATA_HINT}")


def parse_missing_values(text) -> tuple[str, ...]:
    """Comma-separated tokens a user says mean "missing" (e.g. ``"NA, unknown"``), stripped;
    the empty cell is always missing and need not be listed."""
    if text is None:
        return ()
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    return tuple(dict.fromkeys(t.strip() for t in map(str, items) if t.strip()))


def drop_missing_groups(df: pd.DataFrame, group: str, tokens=()) -> tuple[pd.DataFrame, int]:
    """``(df without the rows whose group is empty or one of tokens, rows left out)``.

    Tokens match the cell's text with surrounding spaces and case ignored, as in
    `fairviz.groups.prepare_groups`.
    """
    col = _column(df, group, "group")
    text = col.astype(str).str.strip().str.lower()
    drop = col.isna().to_numpy() | text.isin({str(t).strip().lower() for t in tokens} | {""}).to_numpy()
    if not drop.any():
        return df, 0
    return df.loc[~drop].reset_index(drop=True), int(drop.sum())


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


def numeric_values(col: pd.Series, what: str, hint: str = "") -> np.ndarray:
    """``col`` as float64 (n,), missing cells NaN; a ValueError naming ``what`` (e.g. "column 'score'"),
    how many cells are not numbers and the first one (0-based row), then ``hint``, if any cell is text."""
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{what} has {int(bad.sum()):,} value(s) that are not numbers "
                         f"(first at row {first}: {col.iloc[first]!r}){hint}")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


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
