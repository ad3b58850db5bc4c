"""The report's inputs: a table and column names, or arrays, turned into one checked form."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairviz.tabular import numeric_values


@dataclass(frozen=True)
class ReportInputs:
    """scores: float64 (n,); attributes: {name: values (n,)}; labels: float64 (n,) or None;
    score_name / label_name: the column names shown in the report (label_name None for arrays)."""

    scores: np.ndarray
    attributes: dict
    labels: np.ndarray | None
    score_name: str = "score"
    label_name: str | None = None


def resolve_inputs(data, attributes, labels, score, groups, label) -> ReportInputs:
    """`build_report`'s two calling conventions (a table with column names, or arrays) -> inputs."""
    if isinstance(data, pd.DataFrame) or (isinstance(data, Mapping) and isinstance(score, str)):
        return _from_table(data, score, groups, label)
    scores = data if data is not None else score
    if scores is None:
        raise ValueError("pass a table with score=/groups= column names, or scores and attributes")
    attrs = attributes if attributes is not None else groups
    if attrs is None:
        raise ValueError("pass the group attribute(s): a dict {name: values}, a DataFrame or one array")
    y = labels if labels is not None else (label if label is not None and not isinstance(label, str) else None)
    scores = _numeric(pd.Series(np.asarray(scores).reshape(-1)), "score")
    if y is not None:
        y = _numeric(pd.Series(np.asarray(y).reshape(-1)), "label")
    if isinstance(attrs, pd.DataFrame):
        attrs = {str(c): attrs[c].to_numpy() for c in attrs.columns}
    elif isinstance(attrs, Mapping):
        attrs = {str(k): np.asarray(v, dtype=object) if not isinstance(v, (pd.Series, np.ndarray)) else v
                 for k, v in attrs.items()}
    else:
        name = getattr(attrs, "name", None) or "group"
        attrs = {str(name): attrs}
    return ReportInputs(scores, attrs, y)


def _from_table(data, score, groups, label) -> ReportInputs:
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    if not isinstance(score, str):
        raise ValueError("with a table, `score` must be the name of the score column")
    group_cols = [groups] if isinstance(groups, str) else list(groups or [])
    if not group_cols:
        raise ValueError("name at least one group column (groups=...)")
    wanted = [score, *group_cols] + ([label] if label else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the table; its columns are {list(map(str, frame.columns))}")
    if len(set(wanted)) != len(wanted):
        raise ValueError("the score, group and label columns must all be different")
    scores = _numeric(frame[score], score)
    y = _numeric(frame[label], label) if label else None
    # the column's own array, without its index: a text column read by pandas stays compact (one
    # Python string per row, as `to_numpy` would make, is ~60 MB per 10⁶ rows held all along)
    attrs = {str(c): frame[c].array for c in group_cols}
    return ReportInputs(scores, attrs, y, str(score), None if label is None else str(label))


def _numeric(col: pd.Series, name: str) -> np.ndarray:
    return numeric_values(col, f"column {name!r}")


def data_fingerprint(scores: np.ndarray, attributes: Mapping[str, Any], labels: np.ndarray | None) -> str:
    """SHA-256 of the audited columns in a canonical form (float64 bytes, attribute values as text)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(scores, dtype=np.float64).tobytes())
    if labels is not None:
        h.update(b"labels")
        h.update(np.ascontiguousarray(labels, dtype=np.float64).tobytes())
    for name, values in attributes.items():
        h.update(b"\x00attr\x00" + str(name).encode("utf-8"))
        h.update("\x1f".join(map(str, np.asarray(values, dtype=object).tolist())).encode("utf-8"))
    return h.hexdigest()


def source_digest(inputs: ReportInputs, source_bytes: bytes | None) -> tuple[str, str]:
    """(SHA-256 hex, what it is a digest of): of the file bytes when given, else of the columns."""
    if source_bytes is not None:
        return hashlib.sha256(source_bytes).hexdigest(), "SHA-256 of the source file"
    return (data_fingerprint(inputs.scores, inputs.attributes, inputs.labels),
            "SHA-256 of the audited columns (canonical form; no file bytes were given)")
