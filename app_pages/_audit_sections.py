"""The Audit page's sections after the input: metric cards, DP(τ) with the τ slider, the LL144
table, the repair, intervals and downloads (Streamlit glue: each draws what a `fairviz` call
returns)."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from app_pages import _audit_data as data
from app_pages import _common as ui
from app_pages._audit_source import AuditSource
from fairviz import app_support, figures, theme
from fairviz import score_range as scale
from fairviz.app_services import audit_view
from fairviz.app_services.budget import IntervalPlan, report_n_boot
from fairviz.metrics import FOUR_FIFTHS
from fairviz.safety import csv_text

CARDS = [("SPDD ↓", "spdd"), ("SPEO ↓", "speo"), ("PCC ↑", "pcc"), ("SRCC ↑", "srcc")]
HELPS = {
    "spdd": "Area under DP(τ) over τ ∈ [0, 1] (for two groups: the Wasserstein-1 distance between the group "
            "score distributions). 0 = the same selection rate at every threshold.",
    "speo": "The same gap among candidates whose true label is above τ (equal opportunity at every threshold).",
    "pcc": "Pearson correlation of score and true label.",
    "srcc": "Spearman rank correlation of score and true label.",
}


def _rate_format(rate_name: str) -> dict:
    return {c: st.column_config.NumberColumn(format="%.3f") for c in ("share", rate_name, "impact ratio")}


def _failures(pairs) -> str:
    return ", ".join(f"**{ui.md(g)}** ({r:.2f})" for g, r in pairs)


def metric_cards(view, metrics_dict: dict) -> tuple[dict, object]:
    """The four metric cards and the groups card; returns the empty slots under each card and
    the note slot, filled in once the intervals are known."""
    cards = st.columns(5)
    slots = {}
    for col, (label, key) in zip(cards, CARDS):
        with col:
            ui.metric_card(label, metrics_dict, key, help=HELPS[key], n=view.n, with_interval=False)
            slots[key] = st.empty()
    with cards[4]:
        st.metric("Groups", f"{len(view.groups)}", border=True,
                  help="Rows per group; groups under 2 % of the rows are flagged (LL144 small groups).")
        st.caption(" · ".join(f"{ui.md(theme.group_label(g))}: {c:,}" + (" ⚠ small" if g in view.small_groups else "")
                              for g, c in view.group_counts.items())
                   + f" · {view.n_missing:,} rows with unknown group excluded")
    note = st.empty()
    if len(view.groups) > 2:
        st.caption(f"{len(view.groups)} groups: SPDD is the area under max − min of the selection rates "
                   f"({view.spdd_max_min:.3f}); the largest pairwise W1 is {view.max_pairwise_w1:.3f} "
                   f"({ui.md(view.spdd_pair[0])} vs {ui.md(view.spdd_pair[1])}).")
    if view.small_groups:
        st.caption("⚠ Small groups have wide intervals; read their numbers with their n.")
    return slots, note


@st.fragment
def threshold_view(src: AuditSource, view_name: str, view, curve, tau_box: dict) -> None:
    """DP(τ) (``curve``, the view's) with the τ slider: moving τ reruns only this fragment."""
    st.subheader("DP(τ): the gap in selection rate at every threshold")
    tau = st.slider("Threshold τ (selected when score > τ)", 0.0, 1.0, step=0.01, key="fv_audit_tau")
    tau_box["tau"] = float(tau)
    fig = data.dp_base_figure(src.data_key, view_name, curve)
    figures.add_tau_marker(fig, curve, tau)
    ui.show_figure(fig, key="fv_audit_dp")
    info_tau = figures.tau_summary(curve, tau)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown(f"**At τ = {tau:.2f}** the gap in selection rate is **{info_tau['dp']:.3f}**.")
        table = audit_view.rate_table_at(view.group_counts, info_tau["rates"])
        st.dataframe(table, hide_index=True, width="stretch", column_config=_rate_format("selection rate"))
    with right:
        fails = audit_view.below_four_fifths(table)
        if max(info_tau["rates"].values()) == 0:
            st.info("Nobody scores above this τ, so there is no selection rate to compare.")
        elif fails:
            st.error(f"Four-fifths rule fails at this τ for {_failures(fails)}.", icon=":material/gavel:")
        else:
            st.success(f"Four-fifths rule holds for the selection rates at τ = {tau:.2f} (the table on the left: "
                       f"every impact ratio ≥ {FOUR_FIFTHS:g}). The LL144 scoring-rate table below is a separate check.",
                       icon=":material/check_circle:")
        st.caption("Impact ratio = the group's selection rate ÷ the highest group's. p-value: two-proportion "
                   "z-test (Fisher's exact for small counts) against the highest group. Shaded on the "
                   f"curve: every τ where some group's ratio is under {FOUR_FIFTHS:g}. Moving τ only reads the "
                   "precomputed curve.")


def ll144_table(view) -> None:
    """The NYC Local Law 144 scoring-rate table of the view."""
    st.subheader("NYC Local Law 144 scoring rates")
    ll144 = audit_view.rate_tests_display(view.scoring_rates, "scoring rate")
    st.dataframe(ll144, hide_index=True, width="stretch", column_config=_rate_format("scoring rate"))
    fails = ll144[ll144[audit_view.UNDER_FOUR_FIFTHS]]
    if len(fails):
        st.error("Four-fifths rule fails for the LL144 scoring rates of "
                 + _failures(zip(fails["group"], fails["impact ratio"])) + ".", icon=":material/gavel:")
    st.caption("Scoring rate: share of the group scoring above the median score of all rows; impact ratio "
               "against the group with the highest scoring rate.")


@st.fragment
def repair_view(src: AuditSource, view_name: str, view) -> None:
    """Map each group's scores onto the barycenter with strength θ, and show what it changes."""
    st.subheader("Repair: what if the scores were made fair?")
    st.caption("Post-hoc Wasserstein-barycenter repair (no retraining): each group's scores are mapped onto "
               "the common barycenter distribution; θ = 0 keeps the scores, θ = 1 removes the gap.")
    theta = st.select_slider("Repair strength θ", [round(x, 1) for x in np.linspace(0, 1, 11)],
                             key="fv_audit_theta")
    with ui.user_errors("Cannot repair these scores"):
        rep = data.repair_for(src.data_key, view_name, src.scores, src.attributes, src.labels, float(theta),
                              view.audit.to_dict())
    c = st.columns(3)
    c[0].metric("SPDD after repair", f"{rep.spdd:.3f}", f"{rep.spdd - rep.spdd0:+.3f}", delta_color="inverse",
                border=True)
    if rep.pcc is not None:
        c[1].metric("PCC after repair", f"{rep.pcc:.3f}", f"{rep.pcc - rep.pcc0:+.3f}", border=True)
        c[2].metric("SRCC after repair", f"{rep.srcc:.3f}", f"{rep.srcc - rep.srcc0:+.3f}", border=True)
    ui.show_figure(rep.figure, key="fv_audit_repair")
    ui.show_figure(rep.dp_figure, key="fv_audit_repair_dp")
    st.download_button("Download the repair map (JSON)", data=rep.map_json,
                       file_name=f"{src.file_name}-repair-map.json", mime="application/json",
                       key="fv_audit_dl_map", icon=":material/download:")
    st.caption("Apply it to new candidates with `RepairMap.from_json(...).transform(scores, groups, strength=θ)`.")


def intervals(src: AuditSource, view_name: str, view, plan: IntervalPlan, metrics_dict: dict,
              slots: dict, note, level: float) -> dict:
    """Fill the card slots: bootstrap intervals as ``plan`` says (or a button offering them), and
    the permutation test of SPDD when no p-value is known. Returns the metrics shown."""
    if plan.stored:
        note.caption(f"{int(level * 100)} % bootstrap intervals stored with the run ({plan.n_boot} resamples).")
    elif plan.n_boot:
        with slots["spdd"], st.spinner(f"Bootstrap intervals ({plan.n_boot} resamples)…"):
            metrics_dict = data.view_audit(src.data_key, view_name, view, plan.n_boot).to_dict()
        how = metrics_dict.get("bootstrap") or "resampling within groups"
        note.caption(f"{int(level * 100)} % bootstrap intervals: {plan.n_boot} resamples; {how}.")
    else:
        with note.container():
            st.caption(f"Intervals are not computed automatically for {view.n:,} rows.")
            if st.button(f"Compute 95 % intervals ({plan.offer} resamples, about {plan.offer_seconds:.0f} s)",
                         key=f"fv_ci_btn_{view_name}"):
                st.session_state[f"fv_ci_{src.data_key}_{view_name}"] = True
                st.rerun()
    for key, slot in slots.items():
        text = ui.interval_text(metrics_dict, key, view.n) if (plan.n_boot or plan.stored) else f"n = {view.n:,}"
        if key == "spdd" and audit_view.needs_permutation(metrics_dict):
            text += " · " + _permutation_text(src, view_name, view)
        slot.caption(text)
    return metrics_dict


def _permutation_text(src: AuditSource, view_name: str, view) -> str:
    """The permutation test of the view's SPDD (cached per data and view), with a progress bar."""
    bar = st.empty()
    perm = data.permutation_for(src.data_key, view_name, view, progress=lambda done, total: bar.progress(
        done / total, text=f"Permutation test: {done:,} of {total:,} shuffles"))
    bar.empty()
    return audit_view.permutation_caption(perm)


def downloads(src: AuditSource, multi, view_name: str, n_boot: int, metrics_dict: dict, tau_box: dict) -> None:
    """The metrics CSV, the full audit as JSON and the HTML report."""
    st.subheader("Downloads")
    d1, d2, d3 = st.columns(3)
    rng = src.score_range
    frame = audit_view.metrics_frame(metrics_dict, attribute=view_name, note=scale.note(*rng) if rng else None)
    d1.download_button(f"Metrics by {ui.md(view_name)} (CSV)", csv_text(frame),
                       file_name=f"{src.file_name}-{app_support.file_slug(view_name)}-metrics.csv", mime="text/csv",
                       key="fv_audit_dl_csv", icon=":material/table:")
    full = {**multi.to_dict(), "intervals": {"attribute": view_name, "n_boot": n_boot, "metrics": metrics_dict},
            "score_range": scale.to_dict(*rng) if rng else None}
    d2.download_button("Full audit (JSON)", json.dumps(full, indent=2, default=str),
                       file_name=f"{src.file_name}-audit.json", mime="application/json", key="fv_audit_dl_json",
                       icon=":material/data_object:")
    name, content = src.upload if src.upload else (None, None)
    report = data.report_builder(
        src.data_key, src.scores, src.attributes, src.labels, source_text=src.source_text.replace("`", ""),
        file_name=src.file_name, source_name=name, source_bytes=content, tau=lambda: tau_box["tau"],
        n_boot=report_n_boot(len(src.scores), src.labels is not None),
    )
    d3.download_button("Audit report (HTML)", report, file_name=f"{src.file_name}-audit.html", mime="text/html",
                       key="fv_audit_dl_html", icon=":material/description:",
                       help="One self-contained file (works offline): data description, every attribute and "
                            "intersection, DP(τ) with bootstrap bands, LL144 tables, four-fifths tests at the "
                            "chosen τ, permutation chance levels, and the effect of a repair. Takes a few seconds.")
