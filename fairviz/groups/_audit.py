"""`audit_attributes`: every attribute and intersection audited on its known rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairviz import metrics
from fairviz.groups._columns import INTERSECTION_SEPARATOR, MISSING_VALUES, GroupColumn, prepare_groups
from fairviz.groups._distances import _split_sorted, pairwise_w1, w1_to_pooled
from fairviz.groups._result import AttributeAudit, MultiAuditResult
from fairviz.significance import impact_ratio_tests, permutation_test, scoring_rate_tests


def _relabel_audit(res: Any, labels: tuple) -> Any:
    """An AuditResult computed on integer codes, keyed by the group labels instead."""
    names = {f.name for f in dataclasses.fields(res)}
    changes = {
        "group_counts": {labels[int(k)]: v for k, v in res.group_counts.items()},
        "spdd_parts": {labels[int(k)]: v for k, v in res.spdd_parts.items()},
    }
    if "groups" in names:
        changes["groups"] = tuple(labels[int(k)] for k in res.groups) if res.groups else tuple(labels)
    return dataclasses.replace(res, **{k: v for k, v in changes.items() if k in names})


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
    columns: Mapping[str, GroupColumn] | None = None,
    keep_sorts: bool = True,
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
    ``columns``: the groupings already built from these attributes with the same options
    (`prepare_groups`), so they are not built again. ``keep_sorts=False``: each grouping's
    prepared input forgets its sort by score and DP(τ) curve once audited
    (`fairviz.metrics.PreparedAudit.drop_sorts`), so at most one grouping's are held at a time.

    Speed: one global sort of the scores serves every attribute's W1 computations; the
    bootstrap in `metrics.audit` dominates (use a smaller `n_boot` for a quick look).
    """
    settings = _Settings(n_boot=n_boot, level=level, random_state=random_state, tau=tau, alpha=alpha,
                         small_share=small_share, exclude_small=exclude_small, n_perm=n_perm)
    x, y = _scores_and_labels(scores, labels)
    n = len(x)
    if columns is None:
        columns = prepare_groups(attributes, n, intersections=intersections,
                                 missing_values=missing_values, separator=separator)
    if n >= 2:  # validate the scores once on all rows (same messages as everywhere else)
        metrics.validate_inputs(x, np.arange(n) % 2, y)
    order = np.argsort(x, kind="stable")  # one global sort serves every grouping's W1
    results: dict[str, AttributeAudit] = {}
    skipped: dict[str, str] = {}
    row_cache: dict = {}  # a prepared grouping per set of known rows: others share its ranks, PCC, SRCC
    for name, col in columns.items():
        reason = skip_reason(col, n, max_groups, max_cells)
        if reason:
            skipped[name] = reason
        else:
            results[name] = _audit_column(col, x, y, order, settings, row_cache)
            if not keep_sorts:
                results[name].prepared.drop_sorts()
    if not results:
        raise ValueError("no attribute has two known groups to compare: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return MultiAuditResult(n=n, attributes=tuple(a for a in columns if len(columns[a].attributes) == 1),
                            results=results, skipped=skipped, level=float(level), n_boot=int(n_boot),
                            small_share=float(small_share), exclude_small=bool(exclude_small))


@dataclass(frozen=True)
class _Settings:
    """The per-grouping options of `audit_attributes` (see its docstring)."""

    n_boot: int
    level: float
    random_state: int
    tau: float | None
    alpha: float
    small_share: float
    exclude_small: bool
    n_perm: int


def _scores_and_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    x = _as_float(scores, "scores")
    if len(x) == 0:
        raise ValueError("no rows to audit")
    y = None if labels is None else _as_float(labels, "labels")
    if y is not None and len(y) != len(x):
        raise ValueError(f"scores and labels differ in length: {len(x)} scores, {len(y)} labels")
    return x, y


def skip_reason(col: GroupColumn, n: int, max_groups: int | None = None, max_cells: int | None = None) -> str | None:
    """Why a grouping is not audited (fewer than two known groups, too many groups or cells), or None."""
    known = col.known
    present = np.flatnonzero(np.bincount(col.codes[known], minlength=len(col.labels)))
    if len(present) < 2:
        return (f"only {len(present)} known group(s) "
                f"({col.n_missing} of {n} rows missing/unknown); need two to compare")
    if max_groups is not None and len(present) > max_groups:
        return f"{len(present):,} groups, more than {max_groups} (too many to compare)"
    if max_cells is not None and int(known.sum()) * len(present) > max_cells:
        return (f"{int(known.sum()):,} rows × {len(present):,} groups is more than an audit here "
                f"may hold ({max_cells:,})")
    return None


def _prepared(col: GroupColumn, xk: np.ndarray, yk: np.ndarray | None, row_cache: dict) -> metrics.PreparedAudit:
    """The grouping's known rows prepared once (scores already checked): every metric, curve and
    interval of this grouping derives from it. Groupings over the same rows share their rank
    orders, PCC and SRCC (``row_cache``, by the set of known rows)."""
    codes_k = col.codes[col.known]
    counts = np.bincount(codes_k, minlength=len(col.labels))
    if counts.all():  # the usual case: the column's codes and labels are the metrics' own
        p = metrics.PreparedAudit.from_codes(xk, codes_k, col.labels, yk, counts)
    else:  # a label without rows: let the one encoder renumber, then name the groups again
        p = metrics.prepare(xk, codes_k, yk)
    key = (len(xk), col.n_missing == 0 or col.known.tobytes())
    if key in row_cache:
        p.share_rows(row_cache[key])
    else:
        row_cache[key] = p
    return p


def _metrics_audit(col: GroupColumn, p: metrics.PreparedAudit, s: _Settings):
    """`metrics.audit_prepared` of the grouping, keyed by the group labels."""
    if s.n_boot == 0 and p.has_labels:
        # No intervals: SPEO, PCC and SRCC as plain values (PCC / SRCC shared by the groupings)
        res = metrics.audit_prepared(p.without_labels(), n_boot=0, level=s.level, random_state=s.random_state)
        nan = float("nan")
        res = dataclasses.replace(res, speo=metrics.MetricValue(p.speo(), nan, nan),
                                  pcc=metrics.MetricValue(p.pcc(), nan, nan),
                                  srcc=metrics.MetricValue(p.srcc(), nan, nan),
                                  speo_grid50=p.speo(grid=50))
    else:
        res = metrics.audit_prepared(p, n_boot=s.n_boot, level=s.level, random_state=s.random_state)
    return res if p.groups == col.labels else _relabel_audit(res, col.labels)


def audit_intervals(view: AttributeAudit, n_boot: int, *, level: float = 0.95, random_state: int = 0,
                    n_perm: int | Mapping[str, int] | None = None):
    """`fairviz.metrics.AuditResult` of one audited grouping with ``n_boot`` bootstrap resamples
    (and the permutation test), from the rows `audit_attributes` prepared: no new check, encoding
    or sort — the same numbers as `metrics.audit` on the grouping's known rows."""
    p = view.prepared
    if p is None:
        raise ValueError(f"{view.name!r} holds no prepared rows; audit it with fairviz.groups.audit_attributes")
    res = metrics.audit_prepared(p, n_boot=n_boot, level=level, random_state=random_state, n_perm=n_perm)
    return res if p.groups == view.groups else _relabel_audit(res, view.groups)


def _rate_tables(col: GroupColumn, xk: np.ndarray, s: _Settings):
    """(LL144 scoring-rate table, four-fifths table at tau or None), with a test per group."""
    codes_k = col.codes[col.known]
    scoring = _relabel_table(scoring_rate_tests(xk, codes_k, alpha=s.alpha, small_share=s.small_share,
                                                exclude_small=s.exclude_small), col.labels)
    impact = None
    if s.tau is not None:
        impact = _relabel_table(impact_ratio_tests(xk, codes_k, s.tau, alpha=s.alpha, small_share=s.small_share,
                                                   exclude_small=s.exclude_small), col.labels)
    return scoring, impact


def _audit_column(col: GroupColumn, x: np.ndarray, y: np.ndarray | None, order: np.ndarray, s: _Settings,
                  row_cache: dict) -> AttributeAudit:
    known = col.known
    xk = x[known]
    p = _prepared(col, xk, None if y is None else y[known], row_cache)
    res = _metrics_audit(col, p, s)
    cs = col.codes[order]  # exact W1 summaries from the one global sort
    keep = cs >= 0
    n_groups = len(col.labels)
    pw = pairwise_w1(_split_sorted(x[order][keep], cs[keep], n_groups), presorted=True)
    i, j = np.unravel_index(np.argmax(pw), pw.shape)
    to_pool = w1_to_pooled(x[order][keep], cs[keep], n_groups)
    counts_all = np.bincount(col.codes[known], minlength=n_groups)
    share = counts_all / counts_all.sum()
    scoring, impact = _rate_tables(col, xk, s)
    perm = None
    if s.n_perm:
        perm = permutation_test(xk, col.codes[known], metric="spdd", n_perm=s.n_perm, random_state=s.random_state)
    return AttributeAudit(
        name=col.name,
        attributes=col.attributes,
        n=int(known.sum()),
        n_missing=col.n_missing,
        groups=col.labels,
        group_counts={g: int(c) for g, c in zip(col.labels, counts_all)},
        small_groups=tuple(g for g, sh in zip(col.labels, share) if sh < s.small_share),
        audit=res,
        max_pairwise_w1=float(pw[i, j]),
        spdd_pair=(col.labels[min(i, j)], col.labels[max(i, j)]),
        spdd_max_min=float(res.spdd.value),
        spdd_mean_to_pooled=float(np.mean(to_pool)),
        w1_to_pooled={g: float(v) for g, v in zip(col.labels, to_pool)},
        pairwise_w1=pd.DataFrame(pw, index=list(col.labels), columns=list(col.labels)),
        scoring_rates=scoring,
        impact_ratios=impact,
        tau=None if s.tau is None else float(s.tau),
        permutation=perm,
        prepared=p,
    )
