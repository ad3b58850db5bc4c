"""Several sensitive attributes: each on its own and their intersection, as hiring law asks.

`audit_attributes(scores, attributes, labels=None, ...)` audits every attribute column (e.g.
``sex``, ``race``) and, by default, their intersection (``sex × race`` with groups such as
``F × Black``). For each it reports:

- `fairviz.metrics.audit` on the rows where the attribute is known (SPDD, SPEO, PCC, SRCC with
  bootstrap intervals, group counts, who the gap favours);
- three multi-group summaries of the gap between the group score distributions, all exact:

  * ``spdd``              the largest pairwise W1 between two groups (the issue's "SPDD for
    several groups": the worst pair);
  * ``spdd_max_min``      ∫ (max_g − min_g) P(Ŷ > τ | g) dτ = `metrics.spdd` (the DP(τ) curve's
    area). Pointwise, max − min ≥ |F_a − F_b| for every pair, so this is ≥ the largest pairwise
    W1, with equality for two groups or when one pair is the extreme pair at every τ. It is
    larger when the most- and least-favoured groups change along τ (A above B at low thresholds,
    C above A at high ones): it charges the worst gap at each threshold, wherever it is;
  * ``spdd_mean_to_pooled`` the unweighted mean of each group's W1 to the pooled distribution: a
    "typical" deviation, ≤ the largest pairwise W1 (for two groups it is a fraction of it that
    depends on the group shares), useful when there are many small intersectional groups.

- the pairwise W1 matrix between groups (exact, from sorted data: one global sort, reused);
- NYC Local Law 144's scoring-rate table (median split, impact ratios) with a two-proportion /
  Fisher test per group against the highest group (`fairviz.significance`), and optionally the
  four-fifths check at a threshold τ and a permutation test of SPDD.

Rows whose attribute is missing (NaN, None, an empty or blank cell) are excluded; text such as
"NA", "None" or "unknown" is a group like any other (North America, a category code) unless the
caller lists it in ``missing_values`` (case and surrounding spaces ignored). They are excluded from that attribute's numbers and counted (``n_missing``); never dropped
silently. Groups under 2 % of the known rows are flagged (``small_groups``) and, with
``exclude_small=True``, left out of the impact ratios while their counts stay in the tables (LL144).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from fairviz.metrics._steps import _integrate_gap, _pooled_gap_fn
from fairviz.metrics._validate import factorize_groups, python_scalar
from fairviz.metrics._w1 import _w1

__all__ = [
    "MISSING_VALUES",
    "INTERSECTION_SEPARATOR",
    "GroupColumn",
    "prepare_groups",
    "w1_sorted",
    "pairwise_w1",
    "w1_to_pooled",
    "AttributeAudit",
    "MultiAuditResult",
    "audit_attributes",
]

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


# -------------------------------------------------------------------------------- exact W1
def w1_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two samples given **sorted** (ascending).

    W1 = ∫₀¹ |Q_a(u) − Q_b(u)| du by quantile matching (`fairviz.metrics`' two-group SPDD
    kernel): O(n_a + n_b), no merge. Equal to `scipy.stats.wasserstein_distance(a, b)`.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("W1 needs two non-empty samples")
    return float(_w1(a, np.negative(b)))


def _split_sorted(xs: np.ndarray, codes_sorted: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Per-group sorted samples from score-sorted rows (stable counting sort on the codes)."""
    idx = np.argsort(codes_sorted.astype(np.int16 if n_groups < 2**15 else np.int64), kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes_sorted, minlength=n_groups))]
    by_group = xs[idx]
    return [by_group[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


def pairwise_w1(samples: Sequence[np.ndarray], *, presorted: bool = False) -> np.ndarray:
    """(G, G) symmetric matrix of exact W1 between samples (zero diagonal).

    Cost O((G − 1) · n) after sorting (each sample is merged with every other once).
    """
    groups = [np.asarray(s, dtype=np.float64) if presorted else np.sort(np.asarray(s, dtype=np.float64))
              for s in samples]
    k = len(groups)
    out = np.zeros((k, k), dtype=np.float64)
    for i, j in combinations(range(k), 2):
        out[i, j] = out[j, i] = w1_sorted(groups[i], groups[j])
    return out


def w1_to_pooled(xs: np.ndarray, codes_sorted: np.ndarray, n_groups: int) -> np.ndarray:
    """(G,) exact W1 of each group to the pooled sample, from score-sorted rows and their codes.

    ∫ |F_g − F_pooled| over the pooled sorted values (the step integral of `fairviz.metrics`),
    O(G · n); NaN for a group without rows.
    """
    counts = np.bincount(codes_sorted, minlength=n_groups)
    out = np.full(n_groups, np.nan)
    present = np.flatnonzero(counts)
    if len(xs) < 2:
        out[present] = 0.0
        return out
    lut = np.full(n_groups, -1, dtype=np.intp)
    lut[present] = np.arange(len(present))
    out[present] = _integrate_gap(xs, lut[codes_sorted], len(present), _pooled_gap_fn(counts[present]))
    return out


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AttributeAudit:
    """The audit of one attribute (or one intersection of attributes). See the module docstring.

    n: rows with a known group; n_missing: rows excluded as missing/unknown; groups: labels;
    group_counts: group -> n; small_groups: groups under `small_share` of the known rows;
    audit: `fairviz.metrics.AuditResult` (its SPDD is ``spdd_max_min``, with bootstrap CI);
    spdd: largest pairwise W1; spdd_pair: the two groups of that pair; spdd_max_min: ∫(max−min);
    spdd_mean_to_pooled: mean W1 of a group to the pooled sample; w1_to_pooled: group -> W1;
    pairwise_w1: DataFrame (G × G); scoring_rates: LL144 table with tests
    (`significance.scoring_rate_tests` columns); impact_ratios: four-fifths table at `tau` with
    tests, or None; permutation: `significance.PermutationResult` for SPDD (∫(max−min)), or None.
    """

    name: str
    attributes: tuple
    n: int
    n_missing: int
    groups: tuple
    group_counts: dict
    small_groups: tuple
    audit: Any
    spdd: float
    spdd_pair: tuple
    spdd_max_min: float
    spdd_mean_to_pooled: float
    w1_to_pooled: dict
    pairwise_w1: pd.DataFrame = field(repr=False, compare=False)
    scoring_rates: pd.DataFrame = field(repr=False, compare=False)
    impact_ratios: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    tau: float | None = None
    permutation: Any = None

    def to_dict(self) -> dict:
        """JSON-serialisable summary (group labels as strings)."""
        out = {
            "name": self.name,
            "attributes": list(self.attributes),
            "n": self.n,
            "n_missing": self.n_missing,
            "groups": {str(g): c for g, c in self.group_counts.items()},
            "small_groups": [str(g) for g in self.small_groups],
            "spdd_max_pairwise": self.spdd,
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
                "spdd_max_pairwise": r.spdd,
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


# ------------------------------------------------------------------------------------ audit
def _relabel_audit(res: Any, labels: tuple) -> Any:
    """An AuditResult computed on integer codes, keyed by the group labels instead."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(res)}
    changes = {
        "group_counts": {labels[int(k)]: v for k, v in res.group_counts.items()},
        "spdd_parts": {labels[int(k)]: v for k, v in res.spdd_parts.items()},
    }
    if "groups" in names:
        changes["groups"] = tuple(labels[int(k)] for k in res.groups) if res.groups else tuple(labels)
    return dataclasses.replace(res, **{k: v for k, v in changes.items() if k in names})


def _replace_metrics(res: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(res, **changes)


def _relabel_table(df: pd.DataFrame, labels: tuple) -> pd.DataFrame:
    out = df.copy()
    out["group"] = pd.Series([labels[int(k)] for k in df["group"]], index=df.index, dtype=object)
    return out


def _as_float(values: Any, what: str) -> np.ndarray:
    try:
        arr = (values.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(values, (pd.Series, pd.Index))
               else np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be numbers: {err}") from None
    return arr.reshape(-1)


def audit_attributes(
    scores: Any,
    attributes: Any,
    labels: Any = None,
    *,
    intersections: bool | Iterable[Sequence[str]] = True,
    n_boot: int = 200,
    level: float = 0.95,
    random_state: int = 0,
    tau: float | None = None,
    alpha: float = 0.05,
    small_share: float = 0.02,
    exclude_small: bool = False,
    n_perm: int = 0,
    missing_values: Iterable[str] = MISSING_VALUES,
    separator: str = INTERSECTION_SEPARATOR,
    max_groups: int | None = None,
    max_cells: int | None = None,
) -> MultiAuditResult:
    """Audit scores by each attribute and by their intersection(s).

    scores: (n,) in [0, 1]; attributes: DataFrame / dict name -> (n,) array-like / one array-like;
    labels: optional (n,) in [0, 1] (for SPEO, PCC, SRCC). `n_boot`, `level`, `random_state` go
    to `fairviz.metrics.audit` (bootstrap percentile CIs within groups). `tau`: also run the
    four-fifths check at this threshold. `n_perm` > 0: also a permutation test of SPDD (the
    chance level for these group sizes). An attribute with fewer than two known groups is
    skipped (listed in ``skipped`` with the reason); if every one is, ValueError. So is a
    grouping (e.g. an intersection) with more than ``max_groups`` groups or more than
    ``max_cells`` known rows × groups (None: no limit), before anything is computed for it.

    Speed: one global sort of the scores serves every attribute's W1 computations; the
    bootstrap in `metrics.audit` dominates (use a smaller `n_boot` for a quick look).
    """
    from fairviz import metrics
    from fairviz.significance import impact_ratio_tests, permutation_test, scoring_rate_tests

    x = _as_float(scores, "scores")
    n = len(x)
    if n == 0:
        raise ValueError("no rows to audit")
    y = None if labels is None else _as_float(labels, "labels")
    if y is not None and len(y) != n:
        raise ValueError(f"scores and labels differ in length: {n} scores, {len(y)} labels")
    columns = prepare_groups(attributes, n, intersections=intersections,
                             missing_values=missing_values, separator=separator)
    # Validate the scores once on all rows (same messages as everywhere else).
    if n >= 2:
        metrics.validate_inputs(x, np.arange(n) % 2, y)

    order = np.argsort(x, kind="stable")
    xs = x[order]
    results: dict[str, AttributeAudit] = {}
    skipped: dict[str, str] = {}
    corr_cache: dict = {}
    for name, col in columns.items():
        known = col.known
        counts_all = np.bincount(col.codes[known], minlength=len(col.labels))
        present = np.flatnonzero(counts_all)
        if len(present) < 2:
            skipped[name] = (f"only {len(present)} known group(s) "
                             f"({col.n_missing} of {n} rows missing/unknown); need two to compare")
            continue
        if max_groups is not None and len(present) > max_groups:
            skipped[name] = f"{len(present):,} groups, more than {max_groups} (too many to compare)"
            continue
        if max_cells is not None and int(known.sum()) * len(present) > max_cells:
            skipped[name] = (f"{int(known.sum()):,} rows × {len(present):,} groups is more than an audit here "
                             f"may hold ({max_cells:,})")
            continue
        # Integer codes go to metrics (its fast path; no hashing of label objects), and the
        # results are keyed by the labels again: code k <-> col.labels[k], same sorted order.
        codes_k = col.codes[known]
        xk = x[known]
        yk = None if y is None else y[known]
        if n_boot == 0 and yk is not None:
            # No intervals: PCC/SRCC do not depend on the grouping, so compute them once per set
            # of rows (every grouping shares them when nothing is missing); SPEO per grouping.
            res = metrics.audit(xk, codes_k, None, n_boot=0, level=level, random_state=random_state)
            key = (int(known.sum()), col.n_missing == 0 or known.tobytes())
            if key not in corr_cache:
                corr_cache[key] = (metrics.pcc(xk, yk), metrics.srcc(xk, yk))
            pcc_v, srcc_v = corr_cache[key]
            nan = float("nan")
            res = _replace_metrics(res, speo=metrics.MetricValue(metrics.speo(xk, yk, codes_k), nan, nan),
                                   pcc=metrics.MetricValue(pcc_v, nan, nan),
                                   srcc=metrics.MetricValue(srcc_v, nan, nan),
                                   speo_grid50=metrics.speo(xk, yk, codes_k, grid=50))
        else:
            res = metrics.audit(xk, codes_k, yk, n_boot=n_boot, level=level, random_state=random_state)
        res = _relabel_audit(res, col.labels)

        # Exact W1 summaries from the one global sort.
        cs = col.codes[order]
        keep = cs >= 0
        xs_k, cs_k = xs[keep], cs[keep]
        n_groups = len(col.labels)
        samples = _split_sorted(xs_k, cs_k, n_groups)
        pw = pairwise_w1(samples, presorted=True)
        i, j = np.unravel_index(np.argmax(pw), pw.shape)
        to_pool = w1_to_pooled(xs_k, cs_k, n_groups)
        share = counts_all / counts_all.sum()
        small = tuple(g for g, s in zip(col.labels, share) if s < small_share)

        scoring = _relabel_table(scoring_rate_tests(xk, codes_k, alpha=alpha, small_share=small_share,
                                                    exclude_small=exclude_small), col.labels)
        impact = None
        if tau is not None:
            impact = _relabel_table(impact_ratio_tests(xk, codes_k, tau, alpha=alpha, small_share=small_share,
                                                       exclude_small=exclude_small), col.labels)
        perm = None
        if n_perm:
            perm = permutation_test(xk, col.codes[known], metric="spdd", n_perm=n_perm,
                                    random_state=random_state)
        results[name] = AttributeAudit(
            name=name,
            attributes=col.attributes,
            n=int(known.sum()),
            n_missing=col.n_missing,
            groups=col.labels,
            group_counts={g: int(c) for g, c in zip(col.labels, counts_all)},
            small_groups=small,
            audit=res,
            spdd=float(pw[i, j]),
            spdd_pair=(col.labels[min(i, j)], col.labels[max(i, j)]),
            spdd_max_min=float(res.spdd.value),
            spdd_mean_to_pooled=float(np.mean(to_pool)),
            w1_to_pooled={g: float(v) for g, v in zip(col.labels, to_pool)},
            pairwise_w1=pd.DataFrame(pw, index=list(col.labels), columns=list(col.labels)),
            scoring_rates=scoring,
            impact_ratios=impact,
            tau=None if tau is None else float(tau),
            permutation=perm,
        )
    if not results:
        raise ValueError("no attribute has two known groups to compare: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return MultiAuditResult(
        n=n,
        attributes=tuple(a for a in columns if len(columns[a].attributes) == 1),
        results=results,
        skipped=skipped,
        level=float(level),
        n_boot=int(n_boot),
        small_share=float(small_share),
        exclude_small=bool(exclude_small),
    )
