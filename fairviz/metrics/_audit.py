"""`audit`: every metric with its interval, and the `AuditResult` it returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fairviz.metrics._bootstrap import _check_boot_args, _percentile_ci, _replicates
from fairviz.metrics._little import EXACT_TEXT, check_bootstrap, little_replicates, plan_bootstrap
from fairviz.metrics._prepared import PreparedAudit, prepare
from fairviz.uncertainty import SCHEMA_VERSION, audit_distances, permutation_plan


def _json_float(v: float | None):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class MetricValue:
    """A point estimate with its CI (NaN when not computed): the bootstrap percentile CI for
    PCC / SRCC; for the distances SPDD / SPEO the test-inversion CI of
    `fairviz.uncertainty.DistanceUncertainty` (``detail``: upper bound, p-value, chance level)."""

    value: float
    ci_low: float
    ci_high: float
    detail: Any = None  # fairviz.uncertainty.DistanceUncertainty for SPDD / SPEO

    def to_dict(self) -> dict:
        if self.detail is not None:
            return self.detail.to_dict()
        return {"value": _json_float(self.value), "ci_low": _json_float(self.ci_low),
                "ci_high": _json_float(self.ci_high)}


@dataclass(frozen=True)
class AuditResult:
    """Everything `audit` computes. Metrics need labels for ``speo``/``pcc``/``srcc`` (else None)."""

    n: int
    group_counts: dict
    spdd: MetricValue
    speo: MetricValue | None
    pcc: MetricValue | None
    srcc: MetricValue | None
    spdd_grid50: float
    speo_grid50: float | None
    spdd_parts: dict
    level: float
    n_boot: int
    groups: tuple = field(default=())
    bootstrap: str = ""  # which bootstrap drew the replicates ("" without one)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (NaN becomes None; group keys become strings)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "n": int(self.n), "spdd": self.spdd.to_dict()}
        for name in ("speo", "pcc", "srcc"):
            mv = getattr(self, name)
            if mv is not None:
                out[name] = mv.to_dict()
        out["spdd_grid50"] = _json_float(self.spdd_grid50)
        if self.speo_grid50 is not None:
            out["speo_grid50"] = _json_float(self.speo_grid50)
        out["spdd_parts"] = {str(g): _json_float(v) for g, v in self.spdd_parts.items()}
        out["groups"] = {str(g): int(c) for g, c in self.group_counts.items()}
        out["level"] = float(self.level)
        out["n_boot"] = int(self.n_boot)
        if self.bootstrap:
            out["bootstrap"] = self.bootstrap
        return out

    def to_frame(self):
        """pandas DataFrame with columns metric, value, ci_low, ci_high."""
        rows = []
        for name in ("spdd", "speo", "pcc", "srcc"):
            mv = getattr(self, name)
            if mv is not None:
                rows.append((name, mv.value, mv.ci_low, mv.ci_high))
        rows.append(("spdd_grid50", self.spdd_grid50, math.nan, math.nan))
        if self.speo_grid50 is not None:
            rows.append(("speo_grid50", self.speo_grid50, math.nan, math.nan))
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])


def audit(scores, groups, labels=None, *, n_boot: int = 1000, level: float = 0.95, random_state=0,
          n_perm: int | Mapping[str, int] | None = None, bootstrap="auto") -> AuditResult:
    """Audit scores (and optionally labels) by group: every metric with a CI.

    scores: (n,) in [0, 1]; groups: (n,) hashable, ≥ 2 groups; labels: (n,) in [0, 1] or None.
    SPDD (exact, with CI), its grid=50 variant and its split by favoured group; with labels
    also SPEO (exact + grid=50), PCC and SRCC with CIs. ``n_boot=0`` skips the bootstrap (CIs
    are NaN). PCC / SRCC: percentile intervals at ``level`` from resampling within groups.
    SPDD / SPEO (distances, biased upward): the intervals, upper bounds and permutation test
    of `fairviz.uncertainty` (``n_perm`` group-label shuffles, or {"spdd": k, "speo": k} per
    test; None: a work budget, and none when ``n_boot=0``). ``bootstrap``: "exact" resamples all
    rows; "little" the bag of little bootstraps (`fairviz.metrics._little`; a `LittleBootstrap`
    sets its subsets); "auto" the little ones from `LITTLE_MIN_ROWS` rows on.
    ``AuditResult.bootstrap`` says which ran.
    """
    n_boot, lv = _check_boot_args(n_boot, level, allow_zero=True)
    check_bootstrap(bootstrap)
    return audit_prepared(prepare(scores, groups, labels), n_boot=n_boot, level=lv, random_state=random_state,
                          n_perm=n_perm, bootstrap=bootstrap)


def audit_prepared(p: PreparedAudit, *, n_boot: int = 1000, level: float = 0.95, random_state=0,
                   n_perm: int | Mapping[str, int] | None = None, progress=None, bootstrap="auto") -> AuditResult:
    """`audit` of inputs prepared once (`fairviz.metrics.prepare`): the same numbers, and the
    sorts ``p`` already holds are reused (its DP(τ) curve and rate tables stay available).
    ``progress(done, total)`` follows the bootstrap resamples, then the permutation tests' shuffles,
    as one count (called from worker threads)."""
    n_boot, lv = _check_boot_args(n_boot, level, allow_zero=True)
    d = p.data
    has_y = d.y is not None
    stats = ("spdd", "speo", "pcc", "srcc") if has_y else ("spdd",)
    values = {"spdd": p.spdd()}
    if has_y:
        values.update(speo=p.speo(), pcc=p.pcc(), srcc=p.srcc())
    if n_perm is None and n_boot == 0:
        n_perm = 0
    total = n_boot + sum(permutation_plan(d.n, d.n_groups, has_y, n_perm).values())
    boot_progress = perm_progress = None
    if progress is not None:
        def boot_progress(done, _n):
            progress(done, total)

        def perm_progress(done, _m):
            progress(n_boot + done, total)

    plan = plan_bootstrap(bootstrap, d.counts, n_boot)
    if plan is not None:
        reps = little_replicates(p, stats, n_boot, random_state, plan, full=values, progress=boot_progress)
    else:
        reps = _replicates(p, stats, n_boot, random_state, progress=boot_progress) if n_boot > 0 else {}
    dist = audit_distances(d.x, d.codes, d.y, values, reps, level=lv, n_perm=n_perm, random_state=random_state,
                           progress=perm_progress, noise_floor=plan is not None,
                           speo_breakpoints=p.speo_breakpoints if has_y else None)

    def mv(name: str) -> MetricValue:
        if name in dist:
            u = dist[name]
            return MetricValue(values[name], u.ci_low, u.ci_high, u)
        lo, hi = _percentile_ci(reps[name], lv) if name in reps else (math.nan, math.nan)
        return MetricValue(values[name], lo, hi)

    return AuditResult(
        n=d.n,
        group_counts={g: int(c) for g, c in zip(d.labels, d.counts)},
        spdd=mv("spdd"),
        speo=mv("speo") if has_y else None,
        pcc=mv("pcc") if has_y else None,
        srcc=mv("srcc") if has_y else None,
        spdd_grid50=p.spdd(grid=50),
        speo_grid50=p.speo(grid=50) if has_y else None,
        spdd_parts=p.spdd_parts(),
        level=lv,
        n_boot=n_boot,
        groups=d.labels,
        bootstrap="" if n_boot == 0 else (EXACT_TEXT if plan is None else plan.describe()),
    )
