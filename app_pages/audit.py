"""Audit: how fair is a score at every threshold — for the current run or any uploaded scores."""

from __future__ import annotations

import streamlit as st

from app_pages import _audit_data as data
from app_pages import _audit_sections as sections
from app_pages import _common as ui
from app_pages._audit_source import choose_source
from fairviz.app_services.budget import interval_plan

ui.page_header(
    "Audit",
    "Threshold-free fairness of a score: DP(τ) at every threshold, its area SPDD, the four-fifths "
    "rule and the NYC Local Law 144 table.",
)

# 1. what to audit
src = choose_source()
with ui.user_errors("These scores cannot be audited"):
    # exact numbers for every attribute and intersection; resampling (intervals, permutation
    # test) is done further down, for the attribute on screen only, once the charts are drawn
    multi = data.audit_views(src.data_key, src.scores, src.attributes, src.labels, 0)
views = list(multi.results)
for name, why in multi.skipped.items():
    st.warning(f"{ui.code(name)} is not audited: {ui.md(why)}.", icon=":material/warning:")
view_name = views[0]
if len(views) > 1:
    view_name = st.radio("Attribute", views, horizontal=True, key="fv_audit_view",
                         help="Each attribute on its own, and their intersection (groups such as 'F × Black').")
view = multi[view_name]
stored = src.run is not None and bool(src.run.metrics) and view_name == "group"
metrics_dict = src.run.metrics if stored else view.audit.to_dict()
st.caption(f"Auditing {src.source_text}: {len(src.scores):,} rows"
           + (f", {view.n:,} with a known {ui.code(view_name)}" if view.n != len(src.scores) else "") + ".")

# 2. metric cards (the interval under each is filled in at the end of the page)
ci_slots, ci_note = sections.metric_cards(view, metrics_dict)

# 3. DP(τ) with the τ slider; the τ on screen is shared with the report download (outside the fragment)
curve = data.dp_curve_for(src.data_key, view_name, src.scores, src.attributes, view)
tau_box = st.session_state.setdefault("fv_audit_tau_box", {})
tau_box["tau"] = float(st.session_state.get("fv_audit_tau", 0.5))
sections.threshold_view(src, view_name, view, curve, tau_box)

# 4. distributions and the LL144 table
st.subheader("Score distributions")
ui.show_figure(data.distribution_figure(src.data_key, view_name, src.scores, src.attributes), key="fv_audit_dist")
sections.ll144_table(view)

# 5. repair: map each group's scores onto the barycenter, with strength θ
sections.repair_view(src, view_name, view)

# 6. intervals and the permutation test for the attribute on screen (budgeted; the charts are
#    already drawn while this runs)
plan = interval_plan(view.n, src.labels is not None,
                     stored_n_boot=int(metrics_dict.get("n_boot") or 0) if stored else None,
                     requested=bool(st.session_state.get(f"fv_ci_{src.data_key}_{view_name}")))
metrics_dict = sections.intervals(src, view_name, view, plan, metrics_dict, ci_slots, ci_note, multi.level)

# 7. downloads
sections.downloads(src, multi, view_name, plan.n_boot, metrics_dict, tau_box)
