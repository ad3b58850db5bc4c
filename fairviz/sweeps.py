"""One definition of a weight sweep, shared by `fairviz.experiments.sweep` (the CLI), the app's
background jobs (`fairviz.jobs.JobRegistry.start_sweep`) and the shipped runs.

A sweep trains one config several times, changing only the weight of the method's own fairness
term (λ_W for ``ours``, ``lambda_l2`` for ``l2``, ``lambda_mmd`` for ``mmd``, ``lambda_sw`` for
``fairoffset``: `fairviz.methods.WEIGHT_FIELDS`), then optionally adds runs where the
results still jump between neighbouring weights (`fairviz.pipelines.refine_points`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from fairviz.methods import ALL_METHODS, WEIGHT_FIELDS
from fairviz.pipelines import refine_points

#: The columns `SweepPlan.refine` reads: one row per finished run.
REFINE_COLUMNS = ("weight", "pcc", "spdd", "score_std")


def weight_field(method: str) -> str:
    """The TrainConfig field holding `method`'s own weight; ValueError for an unknown method or
    one without a weight (vanilla, balancing, adversarial, ...)."""
    if method not in ALL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(ALL_METHODS)}")
    if method not in WEIGHT_FIELDS:
        raise ValueError(f"method {method!r} has no weight to sweep; choose one of {list(WEIGHT_FIELDS)}")
    return WEIGHT_FIELDS[method]


def sweep_run_name(base: str, value: float) -> str:
    """The run name of weight `value` in a sweep named `base`: ``<base>-lw<value>``."""
    return f"{base}-lw{value:g}"


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """Which config field a sweep sets, to which values, and how many adaptive runs may follow.

    ``values``: the first round, sorted and distinct, each finite and ≥ 0; ``adaptive``: up to
    this many more runs chosen by `refine`.
    """

    method: str
    field: str
    values: tuple[float, ...]
    adaptive: int = 0

    @classmethod
    def of(cls, method: str, values: Iterable[float], adaptive: int = 0) -> SweepPlan:
        """The checked plan of sweeping `method`'s own weight over `values`."""
        field = weight_field(method)
        vals = sorted({float(v) for v in values})
        if not vals:
            raise ValueError("a sweep needs at least one weight value")
        bad = [v for v in vals if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"weight values must be finite and ≥ 0, got {bad}")
        if int(adaptive) < 0:
            raise ValueError(f"adaptive must be ≥ 0 (extra runs), got {adaptive}")
        return cls(method, field, tuple(vals), int(adaptive))

    @property
    def total(self) -> int:
        """The most runs the sweep may train (first round + adaptive)."""
        return len(self.values) + self.adaptive

    def config(self, base: Any, value: float, name: str | None = None) -> Any:
        """`base` (a dataclass config of this plan's method) with the swept weight set to `value`
        and run name `name` (None: the config's default name)."""
        if getattr(base, "method", self.method) != self.method:
            raise ValueError(f"the sweep is over {self.method!r}; the config trains {base.method!r}")
        overrides = {"name": name} if any(f.name == "name" for f in dataclasses.fields(base)) else {}
        return dataclasses.replace(base, **{self.field: float(value)}, **overrides)

    def refine(self, results: pd.DataFrame, left: int) -> list[float]:
        """Up to `left` new weights where PCC, SPDD or the score spread still jump between
        neighbouring finished runs (`results`: columns `REFINE_COLUMNS`, one row per run)."""
        if left <= 0:
            return []
        return list(refine_points(results.loc[:, list(REFINE_COLUMNS)]))[:left]
