"""Trade-off: every method, weight and repair strength on one SPDD–PCC plane, the Pareto front over
all of them, and the best pipeline for the SPDD the user accepts; run a sweep."""

import pandas as pd
import streamlit as st

from app_pages import _common as ui
from app_pages import _jobs
from fairviz import app_support, figures, jobs, pipelines
from fairviz.app_services import tradeoff
from fairviz.methods import DEFAULT_EPOCHS, WEIGHT_FIELDS
from fairviz.pipeline_figure import pipeline_figure

SWEEP_KEY = "fv_sweep_job"
PICK_KEY = "fv_tradeoff_pick"

ui.page_header("Trade-off", "How much accuracy does fairness cost? Every method, weight and repair strength "
               "on one chart: left is fairer, up is more accurate, up-left is best.")

infos = ui.runs()
alphas = sorted({float(i.alpha) for i in infos}) or [4.0]
ui.widget_defaults({"fv_to_alpha": 4.0 if 4.0 in alphas else alphas[0], "fv_to_bias": "label", "fv_to_eps": 0.02},
                   options={"fv_to_alpha": alphas})
c1, c2, c3 = st.columns(3)
alpha = c1.selectbox("α", alphas, key="fv_to_alpha", format_func=lambda a: f"{a:g}")
bias_mode = c2.radio("Bias", ["label", "sample"], horizontal=True, key="fv_to_bias",
                     format_func={"label": "rater bias", "sample": "sampling bias"}.get)
eps = c3.number_input("SPDD you accept (at most)", min_value=0.0, max_value=1.0, step=0.005, format="%.4f",
                      key="fv_to_eps", help="The page names the most accurate pipeline whose test SPDD is at most this.")


@st.cache_data(show_spinner="Repairing each method's scores…", max_entries=16)
def _points(names: tuple, repaired: tuple, signature: tuple) -> pd.DataFrame:
    by_name = ui.run_infos_by_name()
    return tradeoff.tradeoff_points([by_name[n] for n in names], {n: ui.predictions(n) for n in names}, repaired)


scope = [i for i in infos if abs(float(i.alpha) - alpha) < 1e-9 and getattr(i, "bias_mode", "label") == bias_mode]
if not scope:
    if not infos:
        ui.no_runs_message()
    else:
        st.info(f"No runs at α = {alpha:g} ({bias_mode} bias) yet. Run a sweep below.")
else:
    names = tuple(sorted(i.name for i in scope))
    repaired = tuple(app_support.default_compare_names(scope, alpha=alpha, bias_mode=bias_mode))
    signature = tuple((n, ui.run_mtime(n)) for n in names)
    with ui.user_errors("Cannot compute the pipelines"):
        pts = _points(names, repaired, signature)
        no_val = [n for n in repaired if not tradeoff.has_validation(ui.predictions(n))]
    if no_val:
        st.info("No repair curve for " + ", ".join(f"`{n}`" for n in no_val) + ": these runs store no "
                "validation split to fit the repair on (the test rows must not be used); retrain them "
                "with this fairviz to add one.")
    best = pipelines.best_pipeline(pts, eps)
    raw = pipelines.best_pipeline(pts, eps, keep_spread=False)
    current = ui.current_run_name()
    fallback = current if current in names else (best["name"] if best is not None else names[0])
    selected = st.session_state.get(PICK_KEY) if st.session_state.get(PICK_KEY) in names else fallback
    if best is not None:
        st.success(tradeoff.best_text(best, eps, ui.md))
    else:
        st.warning(f"No pipeline that keeps at least half of vanilla's score spread reaches SPDD ≤ {eps:g}; "
                   "accept a larger SPDD, or train or repair more runs.")
    for text in [tradeoff.spread_warning(raw, best, ui.md), *tradeoff.jump_warnings(pts),
                 tradeoff.collapsed_front_warning(pts)]:
        if text:
            st.warning(text)
    event = ui.show_figure(
        pipeline_figure(pts, best_key=None if best is None else best["key"], selected=selected, max_spdd=eps,
                        title=f"Every pipeline at α = {alpha:g} ({bias_mode} bias): left is fairer, up-left is best"),
        key="fv_to_chart", on_select="rerun", selection_mode="points",
    )
    clicked = [p.get("customdata") for p in (event.selection.points if event else []) if p.get("customdata")]
    click = clicked[0] if clicked else None
    # act on a new click only: the chart keeps its selection, the selectbox may have moved since
    if click in names and click != st.session_state.get("fv_to_last_click"):
        st.session_state["fv_to_last_click"] = click
        st.session_state[PICK_KEY] = click
        st.rerun()
    st.caption(
        "Filled points: runs as trained, joined by a line along each method's weight. Open points on a "
        "dotted line: the same run post-processed by the barycenter repair fitted on its validation "
        "split, at strength θ = 0.1 … 1. Black dashed: the Pareto front over all of them — no other "
        "pipeline is both fairer and more accurate. Every point's hover shows its score spread: a tiny "
        "SPDD with a tiny spread means collapsed scores, not fair ones."
    )
    st.dataframe(tradeoff.front_table(pts), hide_index=True, width="stretch")
    st.caption("The Pareto front, fairest first. SPDD floor p95: the 95th percentile of the SPDD of the "
               "same scores with the group labels shuffled — below it, the test split cannot tell the "
               "groups apart.")

    st.session_state[PICK_KEY] = selected
    pick = st.selectbox("Run", list(names), key=PICK_KEY)
    info = ui.run_infos_by_name()[pick]
    st.subheader(f"`{pick}`")
    cols = st.columns(4)
    for col, (label, key) in zip(cols, [("PCC ↑", "pcc"), ("SRCC ↑", "srcc"), ("SPDD ↓", "spdd"), ("SPEO ↓", "speo")]):
        with col:
            ui.metric_card(label, info.metrics, key)
    with ui.user_errors(f"Cannot read run {pick!r}"):
        ui.show_figure(figures.dp_curve_figure(ui.run_curve(pick), title=f"DP(τ) of {pick}"), key="fv_to_dp")
    if st.button("Make it the current run", key="fv_to_current", icon=":material/check:"):
        ui.set_current_run(pick)
        st.rerun()

with st.expander("Run a sweep", expanded=not scope):
    sweepable = tradeoff.sweepable_methods()
    ui.widget_defaults(
        {"fv_sw_method": "ours" if "ours" in sweepable else sweepable[0], "fv_sw_alpha": float(alpha),
         "fv_sw_epochs": DEFAULT_EPOCHS, "fv_sw_values": "0 0.01 0.03 0.1 0.3 0.5 1 3", "fv_sw_seed": 0,
         "fv_sw_adaptive": 3},
        options={"fv_sw_method": sweepable},
    )
    s1, s2, s3 = st.columns(3)
    s_method = s1.selectbox("Method", sweepable, key="fv_sw_method",
                            help="The values go to the method's own weight: λ_W for ours, λ for l2 and mmd.")
    s_alpha = s2.slider("α", 1.0, 6.0, step=0.5, key="fv_sw_alpha")
    s_epochs = s3.number_input("Epochs per run", 1, 500, key="fv_sw_epochs")
    s4, s5, s6 = st.columns(3)
    values_text = s4.text_input(f"{WEIGHT_FIELDS[s_method]} values (any numbers ≥ 0)", key="fv_sw_values")
    s_adaptive = s5.number_input("Extra runs where the curve jumps", 0, 20, key="fv_sw_adaptive",
                                 help="After the listed values, up to this many runs are added between neighbours "
                                      "whose PCC, SPDD or score spread differ a lot, so no cliff goes unseen.")
    s_seed = s6.number_input("Seed", 0, 1_000_000, key="fv_sw_seed")
    mine = _jobs.job_status(st.session_state.get(SWEEP_KEY))
    busy = mine is not None and not mine.done
    if st.button("Start sweep", type="primary", disabled=busy, key="fv_sw_go", icon=":material/play_arrow:"):
        from fairviz.train import TrainConfig  # noqa: PLC0415 - imports torch: only when a sweep starts

        with ui.user_errors("Cannot start the sweep"):
            values = app_support.parse_weights(values_text)
            cfg = TrainConfig(method=s_method, alpha=float(s_alpha), bias_mode=bias_mode,
                              epochs=int(s_epochs), seed=int(s_seed))
            if not busy:
                st.session_state[SWEEP_KEY] = _jobs.job_registry().start_sweep(cfg, values, adaptive=int(s_adaptive))
        st.rerun()
    _jobs.show_job(SWEEP_KEY, on_done=lambda snap: st.rerun() if snap.state == jobs.DONE else None)
