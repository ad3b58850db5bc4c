"""One JSON sanitiser: numpy / torch scalars, arrays, paths and sets to plain JSON values.

`jsonable` returns a copy that `json.dumps(..., allow_nan=False)` always accepts; `dumps` writes
it. A value that is not finite (NaN, ±inf) becomes ``null``, the only JSON spelling every reader
understands.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np


def jsonable(obj: Any, *, max_array: int | None = None, strict: bool = False) -> Any:
    """A JSON-safe copy of `obj`.

    dict keys become strings; tuples, lists and sets become lists (a set sorted); numpy arrays
    become nested lists, or ``"<array (shape) dtype>"`` when they hold more than `max_array`
    elements; numpy and torch scalars become Python numbers; paths become strings; NaN and ±inf
    become None. Anything else becomes ``str(obj)``, or is a TypeError when `strict`.
    """
    def walk(o):
        return jsonable(o, max_array=max_array, strict=strict)

    if isinstance(obj, dict):
        return {str(k): walk(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [walk(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [walk(v) for v in sorted(obj)]
    if isinstance(obj, np.ndarray):
        if max_array is not None and obj.size > max_array:
            return f"<array {obj.shape} {obj.dtype}>"
        return walk(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if not isinstance(obj, (str, int, float, bool)) and obj is not None and callable(getattr(obj, "item", None)):
        try:  # numpy / torch scalars (a tensor of one element too)
            obj = obj.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if strict:
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
    return str(obj)


def json_float(v: Any) -> float | None:
    """`v` as a float, or None when it is not a finite number (None, NaN, ±inf, pandas NA, text)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def dumps(obj: Any, **kwargs) -> str:
    """``json.dumps(jsonable(obj), allow_nan=False, **kwargs)``."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)
