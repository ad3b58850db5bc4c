"""Typed run metrics: the content of a run's ``metrics.json``, read one way by every caller.

A run stores `fairviz.metrics.audit(...).to_dict()` of its test split (schema_version 2 adds the
distances' test-inversion entries; files written before it carry no ``schema_version``) plus the
training extras ``n_boot``, ``random_state``, ``val_pcc``, ``val_spdd``, ``best_epoch``,
``score_std`` and ``spdd_floor``. `RunMetrics.from_dict` checks and types such a dict (any key
may be absent; unknown keys are kept) and `RunMetrics.to_dict` gives it back unchanged, so the
file format on disk is the same as before the type existed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from fairviz.jsonsafe import jsonable

#: Parts of a metric object that are words, not numbers (`fairviz.uncertainty`).
WORD_PARTS = ("ci_method", "summary")
_NAN = float("nan")


def is_number(v: Any, *, integer: bool = False) -> bool:
    """True for an int (or, unless `integer`, a finite float), not a bool."""
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    return ok and not isinstance(v, bool) and (integer or math.isfinite(v))


def _number_or_none(v: Any) -> bool:
    return v is None or is_number(v)


@dataclass(frozen=True)
class Estimate:
    """One stored metric: a bare number, or an object of parts in stored order.

    Parts: ``value``, ``ci_low``, ``ci_high`` (PCC, SRCC); the distances SPDD / SPEO add
    ``upper``, ``p_value``, ``chance_mean``, ``chance_p95``, ``debiased``, ``n_perm`` and the
    words ``ci_method`` / ``summary``; the permutation floor holds ``mean``, ``p95``, ``n_perm``.
    A missing part reads as NaN.
    """

    parts: Mapping[str, Any]
    bare: bool = False  # stored as a bare number (its ``value``)

    @classmethod
    def parse(cls, raw: Any, where: str = "metric") -> Estimate | None:
        """The Estimate of a stored value (None for None); ValueError for anything but a finite
        number or an object of finite numbers / nulls (and the words of `WORD_PARTS`)."""
        if raw is None:
            return None
        if isinstance(raw, Mapping):
            parts = {}
            for k, v in raw.items():
                if not (isinstance(v, str) if k in WORD_PARTS else _number_or_none(v)):
                    raise ValueError(f"{where} must be a number or an object of numbers")
                parts[str(k)] = v
            return cls(parts)
        if not is_number(raw):
            raise ValueError(f"{where} must be a number or an object of numbers")
        return cls({"value": raw}, bare=True)

    def get(self, part: str = "value") -> float:
        """The numeric part `part` as a float; NaN when absent, null or a word."""
        v = self.parts.get(part)
        return _NAN if v is None or isinstance(v, str) else float(v)

    def word(self, part: str) -> str | None:
        v = self.parts.get(part)
        return v if isinstance(v, str) else None

    value = property(lambda self: self.get("value"), doc="The point estimate (NaN when absent).")
    ci_low = property(lambda self: self.get("ci_low"), doc="Lower end of the interval (NaN when absent).")
    ci_high = property(lambda self: self.get("ci_high"), doc="Upper end of the interval (NaN when absent).")
    mean = property(lambda self: self.get("mean"), doc="The permutation floor's mean SPDD.")
    p95 = property(lambda self: self.get("p95"), doc="The permutation floor's 95th percentile.")

    def to_dict(self) -> Any:
        """The stored form: the bare number, or the object of parts."""
        return self.parts.get("value") if self.bare else dict(self.parts)


#: The keys of metrics.json that hold an Estimate, an integer count, or a float, in stored order.
_ESTIMATES = ("spdd", "speo", "pcc", "srcc", "spdd_grid50", "speo_grid50", "val_pcc", "val_spdd",
              "score_std", "spdd_floor")
_COUNTS = ("schema_version", "n", "n_boot", "random_state", "best_epoch")


@dataclass(frozen=True)
class RunMetrics:
    """The test-split metrics of a run (all on true labels), typed. Every field may be absent (None).

    ``n``: test rows; ``spdd``/``speo``/``pcc``/``srcc``: Estimates with CI; ``spdd_grid50`` /
    ``speo_grid50``: the paper's 50-threshold variants; ``spdd_parts``: SPDD split by favoured
    group; ``groups``: test rows per group; ``level``: CI level; ``n_boot`` / ``random_state``:
    the audit's arguments; ``val_pcc`` / ``val_spdd`` / ``best_epoch``: the selected epoch's
    validation numbers; ``score_std``: spread of the test scores (collapse check);
    ``spdd_floor``: SPDD with permuted groups (``mean``, ``p95``, ``n_perm``).
    """

    schema_version: int | None = None
    n: int | None = None
    spdd: Estimate | None = None
    speo: Estimate | None = None
    pcc: Estimate | None = None
    srcc: Estimate | None = None
    spdd_grid50: Estimate | None = None
    speo_grid50: Estimate | None = None
    spdd_parts: dict[str, float | None] | None = None
    groups: dict[str, int] | None = None
    level: float | None = None
    n_boot: int | None = None
    random_state: int | None = None
    val_pcc: Estimate | None = None
    val_spdd: Estimate | None = None
    best_epoch: int | None = None
    score_std: Estimate | None = None
    spdd_floor: Estimate | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept
    #: The keys of the dict it was read from, in order (a key stored as null included), so
    #: `to_dict` gives that dict back; empty for one built in code (then: the fields set).
    keys: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Any, where: str = "metrics.json", *, strict: bool = False) -> RunMetrics:
        """Check and type a metrics dict; ValueError naming the bad key otherwise.

        In memory (``strict=False``, e.g. a run just trained) the dict is first made JSON-safe as
        saving does (`fairviz.jsonsafe`: numpy scalars to Python, NaN / inf to absent); a file
        being loaded passes ``strict=True``, so a NaN or 1e400 in it is refused.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"{where} must be a JSON object")
        if not strict:
            d = jsonable(d)
        kw: dict[str, Any] = {}
        for key in _ESTIMATES:
            kw[key] = Estimate.parse(d.get(key), f"{where}: {key}")
        for key in _COUNTS:
            v = d.get(key)
            if v is not None and not is_number(v, integer=True):
                raise ValueError(f"{where}: {key} must be an integer")
            kw[key] = v
        kw["level"] = _level(d.get("level"), where)
        kw["spdd_parts"] = _number_map(d.get("spdd_parts"), f"{where}: spdd_parts")
        kw["groups"] = _number_map(d.get("groups"), f"{where}: groups", integer=True)
        kw["extra"] = {k: v for k, v in d.items() if k not in _STORED}
        kw["keys"] = tuple(d)
        return cls(**kw)

    def get(self, name: str, part: str = "value") -> float:
        """The numeric part `part` of metric `name` as a float (NaN when absent): what a table or
        a card shows, e.g. ``get("spdd", "ci_high")``, ``get("spdd_floor", "p95")``."""
        est = getattr(self, name, None) if name in _ESTIMATES else None
        return est.get(part) if est is not None else _NAN

    def to_dict(self) -> dict:
        """The stored dict: the one it was read from, or (built in code) the fields set, in the
        order `fairviz.train` writes them."""
        keys = self.keys or [k for k in _STORED if getattr(self, k) is not None] + list(self.extra)
        out: dict[str, Any] = {}
        for k in keys:
            v = getattr(self, k) if k in _STORED else self.extra[k]
            out[k] = v.to_dict() if isinstance(v, Estimate) else (dict(v) if isinstance(v, dict) else v)
        return out


def _level(v: Any, where: str) -> float | None:
    if v is not None and not (is_number(v) and 0 < v < 1):
        raise ValueError(f"{where}: level must be a number in (0, 1)")
    return v


def _number_map(v: Any, where: str, *, integer: bool = False) -> dict | None:
    """A ``{group: number}`` object (None when absent); ValueError otherwise."""
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ValueError(f"{where} must be an object of numbers")
    out = {}
    for k, x in v.items():
        if not (is_number(x, integer=True) if integer else _number_or_none(x)):
            raise ValueError(f"{where} must be an object of {'integers' if integer else 'numbers'}")
        out[str(k)] = x
    return out


def check_metrics(metrics: Any, where: str = "metrics.json") -> dict:
    """`metrics` if it is a stored metrics dict (`RunMetrics.from_dict` of a file: NaN refused);
    ValueError otherwise."""
    RunMetrics.from_dict(metrics, where, strict=True)
    return metrics


#: The fields stored as keys of metrics.json, in the order `fairviz.train` writes them.
_STORED = tuple(f.name for f in fields(RunMetrics) if f.name not in ("extra", "keys"))
