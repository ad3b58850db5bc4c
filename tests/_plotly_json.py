"""Plotly figure JSON as plain Python: typed arrays (``{"dtype": "f8", "bdata": "..."}``, what
plotly ≥ 6 writes for numpy arrays) decoded into lists of numbers."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            if shape:
                dims = shape if isinstance(shape, list) else str(shape).split(",")
                arr = arr.reshape([int(d) for d in dims])
            return arr.tolist()
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def figure_json(fig_or_spec) -> dict:
    """A figure (go.Figure) or its JSON text, decoded."""
    text = fig_or_spec if isinstance(fig_or_spec, str) else fig_or_spec.to_json()
    return decode(json.loads(text))
