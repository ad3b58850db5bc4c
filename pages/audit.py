"""Audit: how fair is a score at every threshold — for the current run or any uploaded scores."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import streamlit as st

from fairviz import app_support, figures, theme
from fairviz import score_range as scale
from fairviz.metrics import FOUR_FIFTHS
from fairviz.safety import csv_text
from fairviz.tabular import parse_missing_values
from pages import _common as ui

NONE = "(none)"

ui.page_header(
    "Audit",
    "Threshold-free fairness of a score: DP(τ) at every threshold, its area SPDD, the four-fifths "
    "rule and the NYC Local Law 144 table.",
)

# ---------------------------------------------------------------------------------------------
# 1. what to audit

ui.widget_defaults({"fv_audit_source": "run", "fv_audit_tau": 0.5, "fv_audit_theta": 1.0, "fv_audit_rescale": False,
                   "fv_audit_range_low": 0.0, "fv_audit_range_high": 100.0},
                   options={"fv_audit_source": ["run", "upload"]})
source = st.radio("Scores to audit", ["run", "upload"], horizontal=True, key="fv_audit_source",
                  format_func={"run": "the current run (test split)",
                               "upload": "upload any model's scores (CSV / Parquet)"}.get)

labels = None
score_range = None
if source == "run":
    info = ui.current_run_info()
    if info is None:
        ui.no_runs_message()
        st.stop()
    with ui.user_errors(f"Cannot read run {info.name!r}"):
        preds = ui.test_predictions(info.name)
    scores = preds["score"].to_numpy(dtype=np.float64)
    labels = preds["label"].to_numpy(dtype=np.float64)
    attributes = {"group": preds["group"].to_numpy()}
    data_key = f"run:{info.name}:{(ui.models_root() / info.name).stat().st_mtime_ns}"
    source_text = f"run `{info.name}` ({info.method}, α = {info.alpha:g}, λ_W = {info.lambda_w:g}), test split"
    file_name = info.name
else:
    up = st.file_uploader(
        "A table with one row per candidate: a score in [0, 1], one or more group columns, and "
        "optionally the true label in [0, 1].",
        type=["csv", "parquet"], key="fv_audit_upload",
        help=f"Up to {st.get_option('server.maxUploadSize')} MB (set `server.maxUploadSize` in "
             "`.streamlit/config.toml`). Scores and labels must be numbers in [0, 1].",
    )
    if up is None:
        st.info("Upload a CSV or Parquet file to audit it. Example:", icon=":material/upload_file:")
        example = pd.DataFrame({"score": [0.81, 0.42, 0.66, 0.35], "group": ["F", "M", "M", "F"],
                                "label": [0.9, 0.5, 0.6, 0.4]})
        st.dataframe(example, hide_index=True)
        st.stop()
    data = up.getvalue()
    digest = st.session_state.get(f"fv_hash_{up.file_id}")
    if digest is None:
        digest = hashlib.sha256(data).hexdigest()
        st.session_state[f"fv_hash_{up.file_id}"] = digest
    with ui.user_errors(f"Cannot read {up.name}"):
        table = ui.read_table(digest, up.name, data)
    cols = list(table.columns)
    guess = lambda names, fallback: next((c for c in cols if str(c).lower() in names), fallback)  # noqa: E731
    c1, c2, c3 = st.columns([1, 2, 1])
    score_col = c1.selectbox("Score column", cols, index=cols.index(guess({"score", "scores", "prediction", "pred", "y_pred"}, cols[0])),
                             key="fv_audit_score")
    rest = [c for c in cols if c != score_col]
    default_group = guess({"group", "groups", "sex", "gender", "race", "s", "sensitive"}, rest[0] if rest else None)
    group_cols = c2.multiselect("Group column(s) — several give each attribute and their intersection",
                                rest, default=[default_group] if default_group in rest else [], key="fv_audit_groups")
    label_opts = [NONE] + [c for c in rest if c not in group_cols]
    label_guess = guess({"label", "labels", "y", "y_true", "target", "truth"}, NONE)
    label_col = c3.selectbox("Label column (optional)", label_opts,
                             index=label_opts.index(label_guess) if label_guess in label_opts else 0, key="fv_audit_label")
    missing = parse_missing_values(st.text_input(
        "Group values that mean 'missing' (comma-separated; an empty cell always does)", key="fv_audit_missing",
        placeholder="e.g. NA, unknown", help="By default 'NA', 'None' or 'unknown' are groups like any other."))
    if not group_cols:
        st.error("Choose at least one group column (the sensitive attribute, e.g. sex or race).", icon=":material/error:")
        st.stop()
    rng_cols = st.columns([2, 1, 1])
    rescale = rng_cols[0].toggle(
        "Scores are on another scale: rescale them into [0, 1]", key="fv_audit_rescale",
        help="For scores such as 0–100: each score becomes (score − low) / (high − low). Every output of this "
             "page says so.")
    score_range = None
    if rescale:
        score_range = (float(rng_cols[1].number_input("lowest possible score", key="fv_audit_range_low")),
                       float(rng_cols[2].number_input("highest possible score", key="fv_audit_range_high")))
    with ui.user_errors("These columns cannot be audited"):
        scores, attributes, labels = ui.table_columns(digest, table, score_col, tuple(group_cols),
                                                      None if label_col == NONE else label_col, score_range, missing)
    data_key = (f"upload:{digest}:{score_col}:{'|'.join(group_cols)}:{label_col}:{score_range}"
                f":{'|'.join(missing)}")
    source_text = f"{ui.code(up.name)} — score {ui.code(score_col)}, groups {', '.join(ui.code(g) for g in group_cols)}" + (
        f", label {ui.code(label_col)}" if label_col != NONE else ", no label")
    if score_range:
        source_text += ". " + scale.note(*score_range)
        st.info(scale.note(*score_range), icon=":material/straighten:")
    file_name = up.name.rsplit(".", 1)[0]

with ui.user_errors("These scores cannot be audited"):
    # exact numbers for every attribute and intersection; resampling (intervals, permutation
    # test) is done further down, for the attribute on screen only, once the charts are drawn
    multi = ui.audit_attributes(data_key, scores, attributes, labels, 0)
views = list(multi.results)
for name, why in multi.skipped.items():
    st.warning(f"{ui.code(name)} is not audited: {ui.md(why)}.", icon=":material/warning:")
view_name = views[0]
if len(views) > 1:
    view_name = st.radio("Attribute", views, horizontal=True, key="fv_audit_view",
                         help="Each attribute on its own, and their intersection (groups such as 'F × Black').")
view = multi[view_name]
has_labels = labels is not None
stored = source == "run" and bool(info.metrics) and view_name == "group"
metrics_dict = info.metrics if stored else view.audit.to_dict()
st.caption(f"Auditing {source_text}: {len(scores):,} rows"
           + (f", {view.n:,} with a known {ui.code(view_name)}" if view.n != len(scores) else "") + ".")

# ---------------------------------------------------------------------------------------------
# 2. metric cards (the interval under each is filled in at the end of the page)

cards = st.columns(5)
helps = {
    "spdd": "Area under DP(τ) over τ ∈ [0, 1] (for two groups: the Wasserstein-1 distance between the group "
            "score distributions). 0 = the same selection rate at every threshold.",
    "speo": "The same gap among candidates whose true label is above τ (equal opportunity at every threshold).",
    "pcc": "Pearson correlation of score and true label.",
    "srcc": "Spearman rank correlation of score and true label.",
}
ci_slots = {}
for col, (label, key) in zip(cards, [("SPDD ↓", "spdd"), ("SPEO ↓", "speo"), ("PCC ↑", "pcc"), ("SRCC ↑", "srcc")]):
    with col:
        ui.metric_card(label, metrics_dict, key, help=helps[key], n=view.n, with_interval=False)
        ci_slots[key] = st.empty()
with cards[4]:
    st.metric("Groups", f"{len(view.groups)}", border=True,
              help="Rows per group; groups under 2 % of the rows are flagged (LL144 small groups).")
    st.caption(" · ".join(f"{ui.md(theme.group_label(g))}: {c:,}" + (" ⚠ small" if g in view.small_groups else "")
                          for g, c in view.group_counts.items())
               + f" · {view.n_missing:,} rows with unknown group excluded")
ci_note = st.empty()
if len(view.groups) > 2:
    st.caption(f"{len(view.groups)} groups: SPDD is the area under max − min of the selection rates "
               f"({view.spdd_max_min:.3f}); the largest pairwise W1 is {view.spdd:.3f} "
               f"({ui.md(view.spdd_pair[0])} vs {ui.md(view.spdd_pair[1])}).")
if view.small_groups:
    st.caption("⚠ Small groups have wide intervals; read their numbers with their n.")

# ---------------------------------------------------------------------------------------------
# 3. DP(τ) with the τ slider (a fragment: moving τ reruns only this part, and reads the cached curve)

curve = ui.dp_curve_for(data_key, view_name, scores, attributes)
# the τ on screen, shared with the report download (drawn outside the τ fragment)
tau_box = st.session_state.setdefault("fv_audit_tau_box", {})
tau_box["tau"] = float(st.session_state.get("fv_audit_tau", 0.5))


@st.fragment
def threshold_view() -> None:
    st.subheader("DP(τ): the gap in selection rate at every threshold")
    tau = st.slider("Threshold τ (selected when score > τ)", 0.0, 1.0, step=0.01, key="fv_audit_tau")
    tau_box["tau"] = float(tau)
    fig = ui.dp_base_figure(data_key, view_name, curve)
    figures.add_tau_marker(fig, curve, tau)
    ui.show_figure(fig, key="fv_audit_dp")
    info_tau = figures.tau_summary(curve, tau)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown(f"**At τ = {tau:.2f}** the gap in selection rate is **{info_tau['dp']:.3f}**.")
        table = ui.rate_table_at(view.group_counts, info_tau["rates"])
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("share", "selection rate", "impact ratio")})
    with right:
        fails = table[table["impact ratio"] < FOUR_FIFTHS]
        if max(info_tau["rates"].values()) == 0:
            st.info("Nobody scores above this τ, so there is no selection rate to compare.")
        elif len(fails):
            st.error("Four-fifths rule fails at this τ for " + ", ".join(f"**{ui.md(g)}** ({r:.2f})" for g, r in
                     zip(fails["group"], fails["impact ratio"])) + ".", icon=":material/gavel:")
        else:
            st.success(f"Four-fifths rule holds for the selection rates at τ = {tau:.2f} (the table on the left: "
                       "every impact ratio ≥ 0.8). The LL144 scoring-rate table below is a separate check.",
                       icon=":material/check_circle:")
        st.caption("Impact ratio = the group's selection rate ÷ the highest group's. p-value: two-proportion "
                   "z-test (Fisher's exact for small counts) against the highest group. Shaded on the "
                   "curve: every τ where some group's ratio is under 0.8. Moving τ only reads the "
                   "precomputed curve.")


threshold_view()

# ---------------------------------------------------------------------------------------------
# 4. distributions and the LL144 table

st.subheader("Score distributions")
ui.show_figure(ui.distribution_figure(data_key, view_name, scores, attributes), key="fv_audit_dist")

st.subheader("NYC Local Law 144 scoring rates")
ll144 = ui.rate_tests_display(view.scoring_rates, "scoring rate")
st.dataframe(ll144, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("share", "scoring rate", "impact ratio")})
ll144_fails = ll144[ll144["under four-fifths (< 0.8)"]]
if len(ll144_fails):
    st.error("Four-fifths rule fails for the LL144 scoring rates of " + ", ".join(
        f"**{ui.md(g)}** ({r:.2f})" for g, r in zip(ll144_fails["group"], ll144_fails["impact ratio"])) + ".",
        icon=":material/gavel:")
st.caption("Scoring rate: share of the group scoring above the median score of all rows; impact ratio "
           "against the group with the highest scoring rate.")

# ---------------------------------------------------------------------------------------------
# 5. repair (issue 6): map each group's scores onto the barycenter, with strength θ


@st.fragment
def repair_view() -> None:
    st.subheader("Repair: what if the scores were made fair?")
    st.caption("Post-hoc Wasserstein-barycenter repair (no retraining): each group's scores are mapped onto "
               "the common barycenter distribution; θ = 0 keeps the scores, θ = 1 removes the gap.")
    theta = st.select_slider("Repair strength θ", [round(x, 1) for x in np.linspace(0, 1, 11)],
                             key="fv_audit_theta")
    with ui.user_errors("Cannot repair these scores"):
        rep = ui.repair_for(data_key, view_name, scores, attributes, labels, float(theta), view.audit.to_dict())
    c = st.columns(3)
    c[0].metric("SPDD after repair", f"{rep['spdd']:.3f}", f"{rep['spdd'] - rep['spdd0']:+.3f}", delta_color="inverse",
                border=True)
    if rep.get("pcc") is not None:
        c[1].metric("PCC after repair", f"{rep['pcc']:.3f}", f"{rep['pcc'] - rep['pcc0']:+.3f}", border=True)
        c[2].metric("SRCC after repair", f"{rep['srcc']:.3f}", f"{rep['srcc'] - rep['srcc0']:+.3f}", border=True)
    ui.show_figure(rep["figure"], key="fv_audit_repair")
    ui.show_figure(rep["dp_figure"], key="fv_audit_repair_dp")
    st.download_button("Download the repair map (JSON)", data=rep["map_json"], file_name=f"{file_name}-repair-map.json",
                       mime="application/json", key="fv_audit_dl_map", icon=":material/download:")
    st.caption("Apply it to new candidates with `RepairMap.from_json(...).transform(scores, groups, strength=θ)`.")


repair_view()

# ---------------------------------------------------------------------------------------------
# 6. intervals and the permutation test for the attribute on screen (budgeted; the charts are
#    already drawn while this runs)

x_view, g_view = ui.view_rows(data_key, view_name, scores, attributes)
n_boot = 0
if stored:
    n_boot = int(metrics_dict.get("n_boot") or 0)
    ci_note.caption(f"{int(multi.level * 100)} % bootstrap intervals stored with the run ({n_boot} resamples).")
else:
    n_boot = app_support.auto_n_boot(view.n, has_labels)
    request_key = f"fv_ci_{data_key}_{view_name}"
    if n_boot == 0 and st.session_state.get(request_key):
        n_boot = 200
    if n_boot:
        with ci_slots["spdd"], st.spinner(f"Bootstrap intervals ({n_boot} resamples)…"):
            metrics_dict = ui.view_audit(data_key, view_name, scores, attributes, labels, n_boot).to_dict()
        ci_note.caption(f"{int(multi.level * 100)} % bootstrap intervals: {n_boot} resamples within groups.")
    else:
        secs = app_support.boot_seconds(view.n, has_labels, 200)
        with ci_note.container():
            st.caption(f"Intervals are not computed automatically for {view.n:,} rows.")
            if st.button(f"Compute 95 % intervals (200 resamples, about {secs:.0f} s)", key=f"fv_ci_btn_{view_name}"):
                st.session_state[request_key] = True
                st.rerun()
for key, slot in ci_slots.items():
    text = ui.interval_text(metrics_dict, key, view.n) if (n_boot or stored) else f"n = {view.n:,}"
    if key == "spdd" and not math.isfinite(app_support.metric_value(metrics_dict, "spdd", "p_value")):
        # the caption's sentence has no test yet (no intervals computed): the budgeted one
        bar = st.empty()
        perm = ui.permutation_for(data_key, view_name, x_view, g_view, progress=lambda done, total, bar=bar: bar.progress(
            done / total, text=f"Permutation test: {done:,} of {total:,} shuffles"))
        bar.empty()
        floor_p = 1.0 / (perm.n_perm + 1)
        p_text = f"p ≤ {floor_p:.2g}" if perm.p_value <= floor_p + 1e-12 else f"p = {perm.p_value:.2g}"
        text += (f" · by chance alone ≤ {perm.chance_level:.3f} (95 % of {perm.n_perm} group-label "
                 f"shuffles), {p_text}")
    slot.caption(text)

# ---------------------------------------------------------------------------------------------
# 7. downloads

st.subheader("Downloads")
d1, d2, d3 = st.columns(3)
frame = ui.metrics_frame(metrics_dict, attribute=view_name, note=scale.note(*score_range) if score_range else None)
d1.download_button(f"Metrics by {ui.md(view_name)} (CSV)", csv_text(frame),
                   file_name=f"{file_name}-{app_support.file_slug(view_name)}-metrics.csv", mime="text/csv",
                   key="fv_audit_dl_csv", icon=":material/table:")
full = {**multi.to_dict(), "intervals": {"attribute": view_name, "n_boot": n_boot, "metrics": metrics_dict},
        "score_range": scale.to_dict(*score_range) if score_range else None}
d2.download_button("Full audit (JSON)", json.dumps(full, indent=2, default=str),
                   file_name=f"{file_name}-audit.json", mime="application/json", key="fv_audit_dl_json",
                   icon=":material/data_object:")
report = ui.report_builder(
    data_key, scores, attributes, labels, source_text=source_text.replace("`", ""), file_name=file_name,
    source_name=None if source == "run" else up.name, source_bytes=None if source == "run" else data,
    tau=lambda: tau_box["tau"],
    n_boot=app_support.auto_n_boot(len(scores), has_labels, budget_s=15.0, high=200),
)
if report is None:
    d3.caption("HTML report: not available in this version.")
else:
    d3.download_button("Audit report (HTML)", report, file_name=f"{file_name}-audit.html", mime="text/html",
                       key="fv_audit_dl_html", icon=":material/description:",
                       help="One self-contained file (works offline): data description, every attribute and "
                            "intersection, DP(τ) with bootstrap bands, LL144 tables, four-fifths tests at the "
                            "chosen τ, permutation chance levels, and the effect of a repair. Takes a few seconds.")
