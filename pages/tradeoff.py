"""Trade-off: the λ_W sweep as SPDD against PCC / SRCC, with the Pareto front; run a sweep."""

import streamlit as st

from fairviz import app_support, figures, jobs
from pages import _common as ui

SWEEP_KEY = "fv_sweep_job"
PICK_KEY = "fv_tradeoff_pick"
LAMBDAS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]

ui.page_header("Trade-off", "How much accuracy does fairness cost? One point per λ_W; lower-left is fairer, higher is more accurate.")

infos = ui.runs()
methods = sorted({i.method for i in infos}, key=lambda m: app_support.METHOD_ORDER.index(m)
                 if m in app_support.METHOD_ORDER else 99)
methods = methods or ["ours"]
ui.widget_defaults({"fv_to_method": "ours" if "ours" in methods else methods[0], "fv_to_bias": "label"},
                   options={"fv_to_method": methods})
c1, c2, c3 = st.columns(3)
method = c1.selectbox("Method swept", methods, key="fv_to_method")
alphas = sorted({float(i.alpha) for i in infos if i.method == method}) or [4.0]
ui.widget_defaults({"fv_to_alpha": 4.0 if 4.0 in alphas else alphas[0]}, options={"fv_to_alpha": alphas})
alpha = c2.selectbox("α", alphas, key="fv_to_alpha", format_func=lambda a: f"{a:g}")
bias_mode = c3.radio("Bias", ["label", "sample"], horizontal=True, key="fv_to_bias",
                     format_func={"label": "rater bias", "sample": "sampling bias"}.get)

pts = app_support.tradeoff_points(infos, method=method, alpha=alpha, bias_mode=bias_mode)
swept = pts[pts["lambda_w"].notna()]
if len(swept) == 0:
    if not infos:
        ui.no_runs_message()
    else:
        st.info(f"No {method} runs at α = {alpha:g} ({bias_mode} bias) yet. Run a sweep below.")
else:
    if len(swept) < 2:
        st.info("Only one λ_W value so far: run a sweep below to see the trade-off.")
    names = pts["name"].tolist()
    current = ui.current_run_name()
    ones = swept[swept["lambda_w"] == 1.0]["name"].tolist()
    fallback = current if current in names else (ones[0] if ones else swept["name"].iloc[0])
    selected = st.session_state.get(PICK_KEY) if st.session_state.get(PICK_KEY) in names else fallback
    event = ui.show_figure(
        figures.tradeoff_figure(pts, selected=selected,
                                title=f"{method}: λ_W sweep at α = {alpha:g} ({bias_mode} bias)"),
        key="fv_to_chart", on_select="rerun", selection_mode="points",
    )
    clicked = [p.get("customdata") for p in (event.selection.points if event else []) if p.get("customdata")]
    click = clicked[0] if clicked else None
    # act on a new click only: the chart keeps its selection, the selectbox may have moved since
    if click in names and click != st.session_state.get("fv_to_last_click"):
        st.session_state["fv_to_last_click"] = click
        st.session_state[PICK_KEY] = click
        st.rerun()
    st.caption("Click a point (or choose below) to see that run. Dashed: the Pareto front — no other "
               "run is both fairer and more accurate. Grey diamonds: the other methods at the same α.")

    st.session_state[PICK_KEY] = selected
    pick = st.selectbox("Run", names, key=PICK_KEY)
    info = ui.run_infos_by_name()[pick]
    st.subheader(f"`{pick}`")
    cols = st.columns(4)
    for col, (label, key) in zip(cols, [("PCC ↑", "pcc"), ("SRCC ↑", "srcc"), ("SPDD ↓", "spdd"), ("SPEO ↓", "speo")]):
        with col:
            ui.metric_card(label, info.metrics, key)
    with ui.user_errors(f"Cannot read run {pick!r}"):
        ui.show_figure(figures.dp_curve_figure(ui.run_curve(pick), title=f"DP(τ) of {pick}"), key="fv_to_dp")
    print("BUTTON RENDER", pick)
    if st.button("Make it the current run", key="fv_to_current", icon=":material/check:"):
        print("CLICKED")
        ui.set_current_run(pick)
        st.rerun()

with st.expander("Run a λ_W sweep", expanded=len(swept) == 0):
    from fairviz.train import METHODS, TrainConfig

    sweepable = [m for m in METHODS if METHODS[m].uses_lambda_w]
    ui.widget_defaults(
        {"fv_sw_method": "ours" if "ours" in sweepable else sweepable[0], "fv_sw_alpha": float(alpha),
         "fv_sw_epochs": int(TrainConfig().epochs), "fv_sw_values": [0.0, 0.1, 0.3, 1.0, 3.0, 10.0], "fv_sw_seed": 0},
        options={"fv_sw_method": sweepable, "fv_sw_values": LAMBDAS},
    )
    s1, s2, s3 = st.columns(3)
    s_method = s1.selectbox("Method", sweepable, key="fv_sw_method")
    s_alpha = s2.slider("α", 1.0, 6.0, step=0.5, key="fv_sw_alpha")
    s_epochs = s3.number_input("Epochs per run", 1, 500, key="fv_sw_epochs")
    values = st.multiselect("λ_W values", LAMBDAS, format_func=lambda v: f"{v:g}", key="fv_sw_values")
    s_seed = st.number_input("Seed", 0, 1_000_000, key="fv_sw_seed")
    mine = ui.job_status(st.session_state.get(SWEEP_KEY))
    busy = mine is not None and not mine.done
    if st.button("Start sweep", type="primary", disabled=busy, key="fv_sw_go", icon=":material/play_arrow:"):
        with ui.user_errors("Cannot start the sweep"):
            cfg = TrainConfig(method=s_method, alpha=float(s_alpha), bias_mode=bias_mode,
                              epochs=int(s_epochs), seed=int(s_seed))
            if not busy:
                st.session_state[SWEEP_KEY] = ui.job_registry().start_sweep(cfg, sorted(values))
        st.rerun()
    ui.show_job(SWEEP_KEY, on_done=lambda snap: st.rerun() if snap.state == jobs.DONE else None)
