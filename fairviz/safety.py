"""Handling text and files that come from users, so that none of it can act as code or markup.

- `load_plain_pickle(fh)`: unpickle data made only of plain values (dict, list, tuple, set,
  str, bytes, int, float, bool, None). Every global (class, function) is refused, so nothing in
  the file can run: the pickle opcodes that build such values need no global at all.
- `csv_safe_frame(df)` / `csv_text(df)`: a table for a CSV download whose text cells cannot
  be read as formulas by a spreadsheet (a leading ``=``, ``+``, ``-``, ``@``, tab or carriage
  return gets a ``'`` in front, as OWASP advises).
- `isolate_bidi(text)`: text that holds right-to-left characters or bidi controls wrapped in
  FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE (U+2068 … U+2069), so that it cannot reorder
  the caption or label around it; other text is returned unchanged.
"""

from __future__ import annotations

import csv
import io
import pickle
import unicodedata

import pandas as pd

__all__ = ["load_plain_pickle", "csv_safe_frame", "csv_text", "isolate_bidi", "FORMULA_PREFIXES"]


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every global: only the built-in containers and scalars can be built."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only plain values (dict, list, str, numbers) are allowed"
        )


def load_plain_pickle(fh, *, encoding: str = "ASCII"):
    """Unpickle the open binary file (or bytes) `fh`, refusing every global.

    `encoding` is passed on (``"latin1"`` reads Python-2 pickles). Raises
    `pickle.UnpicklingError` for a global (a class or function the file asks for) and the usual
    errors (EOFError, ...) for a damaged file.
    """
    if isinstance(fh, (bytes, bytearray)):
        fh = io.BytesIO(fh)
    return _PlainUnpickler(fh, encoding=encoding).load()


# ---------------------------------------------------------------------------------------------
# CSV downloads

#: First characters that make a spreadsheet read a cell as a formula (or smuggle one in).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _neutral(v):
    if isinstance(v, str) and v.startswith(FORMULA_PREFIXES):
        return "'" + v
    return v


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells (and column names) cannot start a spreadsheet formula.

    Only text is changed (numbers such as -0.5 stay numbers): a cell starting with one of
    `FORMULA_PREFIXES` gets a leading ``'``.
    """
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(_neutral)
    out.columns = [_neutral(c) for c in out.columns]
    return out


def csv_text(df: pd.DataFrame, **kwargs) -> str:
    """`csv_safe_frame(df)` as CSV text: what fairviz offers as a CSV download. Text cells are
    quoted (pandas leaves a bare carriage return unquoted, which would split the row)."""
    kwargs.setdefault("quoting", csv.QUOTE_NONNUMERIC)
    return csv_safe_frame(df).to_csv(index=False, **kwargs)


# ---------------------------------------------------------------------------------------------
# bidirectional text

_FSI, _PDI = "\u2068", "\u2069"
_ISOLATE_OPENERS = {"\u2066", "\u2067", "\u2068"}  # LRI, RLI, FSI
#: bidi classes that can change the order of text around them
_RTL_OR_CONTROL = {"R", "AL", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"}


def isolate_bidi(text) -> str:
    """``str(text)`` wrapped in FSI … PDI when it holds right-to-left letters or bidi controls.

    Inside the isolate the text keeps its own direction, but it cannot reorder anything after
    it (an unclosed RIGHT-TO-LEFT OVERRIDE ends at the closing PDI). A PDI in the text with no
    opener of its own would close the wrapper early, so such stray PDIs are dropped; nothing
    else is changed. Text without such characters (the common case) is returned as is.
    """
    s = str(text)
    if not any(unicodedata.bidirectional(ch) in _RTL_OR_CONTROL for ch in s):
        return s
    out, depth = [], 0
    for ch in s:
        if ch in _ISOLATE_OPENERS:
            depth += 1
        elif ch == _PDI:
            if depth == 0:
                continue  # would close our isolate
            depth -= 1
        out.append(ch)
    return _FSI + "".join(out) + _PDI * (depth + 1)
