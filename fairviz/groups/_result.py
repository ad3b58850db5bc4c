"""What `audit_attributes` returns: one `AttributeAudit` per grouping, in a `MultiAuditResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairviz.metrics._validate import python_scalar


@dataclass(frozen=True)
class AttributeAudit:
    """The audit of one attribute (or one intersection of attributes). See the module docstring.

    n: rows with a known group; n_missing: rows excluded as missing/unknown; groups: labels;
    group_counts: group -> n; small_groups: groups under `small_share` of the known rows;
    audit: `fairviz.metrics.AuditResult` (its SPDD is ``spdd_max_min``, with bootstrap CI);
    max_pairwise_w1: largest pairwise W1 (not `metrics.spdd`, which is ∫(max−min)); spdd_pair: the two groups of that pair; spdd_max_min: ∫(max−min);
    spdd_mean_to_pooled: mean W1 of a group to the pooled sample; w1_to_pooled: group -> W1;
    pairwise_w1: DataFrame (G × G); scoring_rates: LL144 table with tests
    (`significance.scoring_rate_tests` columns); impact_ratios: four-fifths table at `tau` with
    tests, or None; permutation: `significance.PermutationResult` for SPDD (∫(max−min)), or None;
    prepared: the grouping's known rows as a `fairviz.metrics.PreparedAudit` (group codes in the
    order of ``groups`` when every group has rows): its DP(τ) curve and rate tables cost no new sort.
    """

    name: str
    attributes: tuple
    n: int
    n_missing: int
    groups: tuple
    group_counts: dict
    small_groups: tuple
    audit: Any
    max_pairwise_w1: float
    spdd_pair: tuple
    spdd_max_min: float
    spdd_mean_to_pooled: float
    w1_to_pooled: dict
    pairwise_w1: pd.DataFrame = field(repr=False, compare=False)
    scoring_rates: pd.DataFrame = field(repr=False, compare=False)
    impact_ratios: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    tau: float | None = None
    permutation: Any = None
    prepared: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (group labels as strings)."""
        out = {
            "name": self.name,
            "attributes": list(self.attributes),
            "n": self.n,
            "n_missing": self.n_missing,
            "groups": {str(g): c for g, c in self.group_counts.items()},
            "small_groups": [str(g) for g in self.small_groups],
            "spdd_max_pairwise": self.max_pairwise_w1,
            "spdd_pair": [str(g) for g in self.spdd_pair],
            "spdd_max_min": self.spdd_max_min,
            "spdd_mean_to_pooled": self.spdd_mean_to_pooled,
            "w1_to_pooled": {str(g): v for g, v in self.w1_to_pooled.items()},
            "pairwise_w1": {str(a): {str(b): float(self.pairwise_w1.loc[a, b]) for b in self.groups}
                            for a in self.groups},
            "audit": self.audit.to_dict(),
            "scoring_rates": _records(self.scoring_rates),
        }
        if self.impact_ratios is not None:
            out["tau"] = self.tau
            out["impact_ratios"] = _records(self.impact_ratios)
        if self.permutation is not None:
            out["permutation"] = self.permutation.to_dict()
        return out


def _records(df: pd.DataFrame) -> list[dict]:
    rows = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            v = python_scalar(v)
            if k == "group":
                v = str(v)
            elif isinstance(v, float) and not np.isfinite(v):
                v = None
            clean[k] = v
        rows.append(clean)
    return rows


@dataclass(frozen=True)
class MultiAuditResult:
    """Audits of several attributes and their intersections, in order (attributes first).

    results: name -> AttributeAudit; skipped: name -> reason (e.g. only one known group);
    n: rows in the input. Index by name: ``result["sex × race"]``.
    """

    n: int
    attributes: tuple
    results: dict
    skipped: dict
    level: float
    n_boot: int
    small_share: float
    exclude_small: bool

    def __getitem__(self, name: str) -> AttributeAudit:
        return self.results[name]

    def __iter__(self):
        return iter(self.results.values())

    def __len__(self) -> int:
        return len(self.results)

    def summary(self) -> pd.DataFrame:
        """One row per attribute / intersection: n, missing, groups, SPDD variants, worst ratio."""
        rows = []
        for r in self.results.values():
            sr = r.scoring_rates
            ratios = sr.loc[~sr["excluded"], "impact_ratio"]
            rows.append({
                "attribute": r.name,
                "n": r.n,
                "n_missing": r.n_missing,
                "n_groups": len(r.groups),
                "small_groups": len(r.small_groups),
                "spdd_max_pairwise": r.max_pairwise_w1,
                "spdd_max_min": r.spdd_max_min,
                "spdd_ci_low": r.audit.spdd.ci_low,
                "spdd_ci_high": r.audit.spdd.ci_high,
                "spdd_mean_to_pooled": r.spdd_mean_to_pooled,
                "min_scoring_impact_ratio": float(ratios.min()) if ratios.notna().any() else np.nan,
                "permutation_p": r.permutation.p_value if r.permutation is not None else np.nan,
            })
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "attributes": list(self.attributes),
            "level": self.level,
            "n_boot": self.n_boot,
            "small_share": self.small_share,
            "exclude_small": self.exclude_small,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "skipped": dict(self.skipped),
        }

