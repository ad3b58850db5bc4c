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


_PLOTLY_ENTITIES = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "×", "plusmn": "±",
                    "deg": "°"}


def plotly_shown(text: str) -> str:
    """What plotly.js shows for a name or title: the entities it converts (its ``convertEntities``:
    numeric ones and a few named ones) turned into characters; tags are assumed absent."""
    import re

    def one(m):
        r = m.group(1)
        if r.startswith("#"):
            return chr(int(r[2:], 16) if r[1] == "x" else int(r[1:]))
        return _PLOTLY_ENTITIES.get(r, m.group(0))

    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, text)
