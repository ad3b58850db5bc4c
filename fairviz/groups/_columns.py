"""Attribute columns -> `GroupColumn`s (the one group encoder), and their intersections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairviz.metrics._validate import factorize_groups

#: Attribute values (after str().strip().lower()) that mean "missing" unless the caller says
#: otherwise: only the empty cell. NaN/None/pd.NA always do.
MISSING_VALUES = ("",)
#: Joins attribute values into an intersectional group label, e.g. "F × Black".
INTERSECTION_SEPARATOR = " × "


# ---------------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class GroupColumn:
    """One grouping of the rows: an attribute, or an intersection of attributes.

    codes: int64 (n,), index into `labels`, -1 where the attribute is missing/unknown;
    labels: tuple of group values (original values for one attribute, "a × b" strings for an
    intersection), sorted.
    """

    name: str
    attributes: tuple
    codes: np.ndarray = field(repr=False, compare=False)
    labels: tuple

    @property
    def known(self) -> np.ndarray:
        """bool (n,): rows whose group is known."""
        return self.codes >= 0

    @property
    def n_missing(self) -> int:
        return int(np.count_nonzero(self.codes < 0))

    @property
    def counts(self) -> dict:
        """group -> rows (known rows only), in label order."""
        c = np.bincount(self.codes[self.codes >= 0], minlength=len(self.labels))
        return {g: int(k) for g, k in zip(self.labels, c)}

    def values(self, known_only: bool = True) -> np.ndarray:
        """Group value per row (object array); known rows only by default, else None for missing."""
        lab = np.empty(len(self.labels) + 1, dtype=object)
        lab[: len(self.labels)] = self.labels
        lab[-1] = None
        codes = self.codes[self.codes >= 0] if known_only else self.codes
        return lab[codes]


def _attribute_column(name: str, values: Any, n: int, missing: set[str]) -> GroupColumn:
    if len(values) != n:
        raise ValueError(f"attribute {name!r} has {len(values)} values but there are {n} scores")
    codes, labels, _ = factorize_groups(values, n, what=f"attribute {name!r}", missing=missing, need_two=False,
                                        unused_categories="drop")
    return GroupColumn(name=name, attributes=(name,), codes=codes.astype(np.int64, copy=False), labels=labels)


def _intersect(columns: Sequence[GroupColumn], separator: str) -> GroupColumn:
    n = len(columns[0].codes)
    combined = np.zeros(n, dtype=np.int64)
    missing = np.zeros(n, dtype=bool)
    for col in columns:  # mixed radix; lexicographic in the attributes' label order
        combined = combined * max(len(col.labels), 1) + np.maximum(col.codes, 0)
        missing |= col.codes < 0
    present, inverse = np.unique(combined[~missing], return_inverse=True)
    labels = []
    for code in present:
        parts, rest = [], int(code)
        for col in reversed(columns):
            base = max(len(col.labels), 1)
            parts.append(col.labels[rest % base])
            rest //= base
        labels.append(separator.join(str(p) for p in reversed(parts)))
    codes = np.full(n, -1, dtype=np.int64)
    codes[~missing] = inverse
    name = separator.join(c.name for c in columns)
    return GroupColumn(name=name, attributes=tuple(c.name for c in columns), codes=codes, labels=tuple(labels))


def _attribute_columns(attributes: Any) -> dict[str, Any]:
    if isinstance(attributes, pd.DataFrame):
        if attributes.shape[1] == 0:
            raise ValueError("no attribute columns given")
        return {str(c): attributes[c] for c in attributes.columns}
    if isinstance(attributes, Mapping):
        if not attributes:
            raise ValueError("no attribute columns given")
        return {str(k): v for k, v in attributes.items()}
    if isinstance(attributes, pd.Series):
        return {str(attributes.name) if attributes.name is not None else "group": attributes}
    return {"group": attributes}


def prepare_groups(
    attributes: Any,
    n: int | None = None,
    *,
    intersections: bool | Iterable[Sequence[str]] = True,
    missing_values: Iterable[str] = MISSING_VALUES,
    separator: str = INTERSECTION_SEPARATOR,
) -> dict[str, GroupColumn]:
    """Encode attribute columns (and intersections) as `GroupColumn`s, in report order.

    attributes: DataFrame (one column per attribute), dict name -> array-like, or one array-like.
    intersections: True = the intersection of all attributes (when there are 2+), False = none,
    or a list of attribute-name tuples, e.g. [("sex", "race"), ("sex", "age")].
    Returns {name: GroupColumn}: the attributes first, then the intersections ("sex × race").
    """
    cols = _attribute_columns(attributes)
    if n is None:
        n = len(next(iter(cols.values())))
    missing = {str(m).strip().lower() for m in missing_values} | {""}  # an empty cell is always missing
    out: dict[str, GroupColumn] = {}
    for name, values in cols.items():
        out[name] = _attribute_column(name, values, n, missing)
    if intersections is True:
        combos = [tuple(cols)] if len(cols) >= 2 else []
    elif intersections is False or intersections is None:
        combos = []
    else:
        combos = [tuple(c) for c in intersections]
    for combo in combos:
        unknown = [a for a in combo if a not in out or a not in cols]
        if unknown or len(combo) < 2:
            raise ValueError(
                f"intersection {combo!r} must name 2+ of the attributes {list(cols)}"
                + (f"; unknown: {unknown}" if unknown else ""))
        col = _intersect([out[a] for a in combo], separator)
        out[col.name] = col
    return out

