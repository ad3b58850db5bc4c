"""What the Audit page shows, computed: the impact-ratio tables as displayed, the metrics CSV, the
permutation-test sentence and a repair preview (no Streamlit here, so each is tested directly)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairviz import figures, metrics, theme
from fairviz.app_services.budget import permutation_count
from fairviz.app_support import METRIC_NAMES, metric_value
from fairviz.groups import AttributeAudit, audit_intervals
from fairviz.metrics import FOUR_FIFTHS
from fairviz.repair import RepairMap
from fairviz.repair_tradeoff import repair_tradeoff
from fairviz.significance import PermutationResult, permutation_test, rate_tests

#: The column of `rate_tests_display` that flags an impact ratio under four-fifths.
UNDER_FOUR_FIFTHS = f"under four-fifths (< {FOUR_FIFTHS:g})"


def _p_text(row) -> str:
    if row["reference"]:
        return "reference"
    if row["excluded"] or pd.isna(row["p_value"]):
        return "— (excluded)" if row["excluded"] else "—"
    p = float(row["p_value"])
    text = "< 1e-300" if p == 0 else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")
    return f"{text} ({row['test']})"


def rate_tests_display(t: pd.DataFrame, rate_name: str = "selection rate") -> pd.DataFrame:
    """A `fairviz.significance.rate_tests` table as shown: readable group names, the test's
    p-value as text ("reference" for the highest group, "—" where not tested)."""
    return pd.DataFrame({
        "group": [theme.group_label(g) for g in t["group"]],
        "n": t["n"],
        "share": t["share"],
        rate_name: t["rate"],
        "impact ratio": t["impact_ratio"],
        "p-value vs highest": [_p_text(r) for _, r in t.iterrows()],
        UNDER_FOUR_FIFTHS: t["four_fifths_fail"],
        "small group (< 2 %)": t["small_group"],
    })


def rate_table_at(group_counts: Mapping[Any, int], rates: Mapping[Any, float]) -> pd.DataFrame:
    """Selection rate, impact ratio and test per group at one τ, from the curve's rates (no
    pass over the scores: counts = rate × n)."""
    totals = {g: int(n) for g, n in group_counts.items() if n > 0}
    selected = {g: int(round(float(rates[g]) * totals[g])) for g in totals}
    return rate_tests_display(rate_tests(selected, totals))


def below_four_fifths(table: pd.DataFrame) -> list[tuple[str, float]]:
    """(group, impact ratio) of the rows of a `rate_table_at` table whose ratio is under four-fifths."""
    fails = table[table["impact ratio"] < FOUR_FIFTHS]
    return list(zip(fails["group"], fails["impact ratio"]))


def metrics_frame(metrics_dict: dict, attribute: str | None = None, note: str | None = None) -> pd.DataFrame:
    """attribute, metric, value, ci_low, ci_high, upper, p_value (the last two for SPDD / SPEO)
    for the four metrics (CSV download); the attribute column names the grouping the numbers are
    for; ``note`` (e.g. that the scores were rescaled) goes in a last column."""
    parts = ("value", "ci_low", "ci_high", "upper", "p_value")
    rows = [{**({} if attribute is None else {"attribute": attribute}), "metric": k,
             **{p: metric_value(metrics_dict, k, p) for p in parts}} for k in METRIC_NAMES]
    frame = pd.DataFrame(rows).dropna(subset=["value"])
    if note:
        frame["note"] = note
    return frame


def view_intervals(view: AttributeAudit, n_boot: int, *, random_state: int = 0):
    """The view's metrics with ``n_boot`` bootstrap resamples (an `AuditResult`), from the rows the
    page's `audit_attributes` already checked, encoded and sorted (`fairviz.groups.audit_intervals`).
    SPDD's permutation test takes the page's shuffle count (`budget.permutation_count`, the
    cards' test: within the page's `shared_nulls` store its draws are read, not drawn again), so
    the p-value keeps its resolution once the intervals are in; SPEO's takes the automatic count."""
    n_perm = {"spdd": permutation_count(view.n, len(view.groups))}
    return audit_intervals(view, n_boot, random_state=random_state, n_perm=n_perm)


def view_curve(view: AttributeAudit):
    """The view's exact DP(τ) from the sort its audit already made, or None when its prepared rows
    name the groups otherwise (the caller then builds it from the rows)."""
    p = view.prepared
    return p.dp_curve() if p is not None and p.groups == tuple(view.groups) else None


def view_permutation(view: AttributeAudit, n_perm: int, *, random_state: int = 0, progress=None) -> PermutationResult:
    """Permutation test of the view's SPDD on its prepared rows (integer group codes: no second
    encoding of the group labels; the null is the same as from the labels themselves)."""
    d = view.prepared.data
    return permutation_test(d.x, d.codes, metric="spdd", n_perm=n_perm, random_state=random_state, progress=progress)


def permutation_caption(perm: PermutationResult) -> str:
    """The SPDD card's sentence about chance: its 95 % chance level and the p-value (a bound
    when no shuffle reached the observed value)."""
    floor_p = 1.0 / (perm.n_perm + 1)
    p_text = f"p ≤ {floor_p:.2g}" if perm.p_value <= floor_p + 1e-12 else f"p = {perm.p_value:.2g}"
    return (f"by chance alone ≤ {perm.chance_level:.3f} (95 % of {perm.n_perm} group-label "
            f"shuffles), {p_text}")


def needs_permutation(metrics_dict: dict) -> bool:
    """True when the SPDD numbers hold no p-value yet (no intervals computed)."""
    return not math.isfinite(metric_value(metrics_dict, "spdd", "p_value"))


@dataclass(frozen=True)
class RepairPreview:
    """One view's scores repaired at strength ``theta``: numbers before (``*0``) and after (PCC and
    SRCC None without labels), the distributions and DP(τ) figures, and the map as JSON."""

    theta: float
    spdd0: float
    spdd: float
    pcc0: float | None
    pcc: float | None
    srcc0: float | None
    srcc: float | None
    figure: Any
    dp_figure: Any
    map_json: str


def repair_preview(x, g, y, theta: float, rmap: RepairMap, before: dict, before_curve) -> RepairPreview:
    """Scores ``x`` (n,) of groups ``g`` (n,), labels ``y`` (n,) or None, repaired by the fitted
    ``rmap`` at ``theta`` in [0, 1]; ``before`` is the view's audit dict and ``before_curve`` its DP(τ)."""
    x = np.asarray(x, dtype=np.float64)
    xr = rmap.transform(x, g, strength=theta)
    after = repair_tradeoff(x, g, y, [theta], repair_map=rmap).iloc[0]
    labelled = y is not None
    after_name = f"after repair (θ = {theta:g})"
    return RepairPreview(
        theta=theta, spdd0=metric_value(before, "spdd"), spdd=float(after["spdd"]),
        pcc0=metric_value(before, "pcc") if labelled else None, pcc=float(after["pcc"]) if labelled else None,
        srcc0=metric_value(before, "srcc") if labelled else None, srcc=float(after["srcc"]) if labelled else None,
        figure=figures.score_distribution_figure(
            xr, g, reference_scores=x, reference_name="before repair",
            title=f"Scores after repair (θ = {theta:g}); dotted: before"),
        dp_figure=figures.dp_overlay_figure(
            {"before repair": before_curve, after_name: metrics.dp_curve(xr, g)},
            colors={"before repair": theme.NEUTRAL, after_name: theme.SPDD_LINE},
            title="DP(τ) before and after the repair"),
        map_json=rmap.to_json(),
    )
