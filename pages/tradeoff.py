"""Trade-off: every method, weight and repair strength on one SPDD–PCC plane, the Pareto front over
all of them, and the best pipeline for the SPDD the user accepts; run a sweep."""

import pandas as pd
import streamlit as st

from fairviz import app_support, figures, jobs, pipelines
from fairviz.pipeline_figure import pipeline_figure
from pages import _common as ui

SWEEP_KEY = "fv_sweep_job"
PICK_KEY = "fv_tradeoff_pick"
N_PERM = 50  # permutations for the SPDD floor of each repaired point (cached once per run)

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
    scope = [by_name[n] for n in names]
    preds = {n: ui.predictions(n) for n in names}
    # a run without a validation split (an older format) is drawn as trained, without a repair curve
    repairable = [n for n in repaired if (preds[n]["split"] == "val").any()]
    pts = pipelines.pipeline_points(scope, preds, repaired=repairable, n_perm=N_PERM)
    return pipelines.flag_spread(pipelines.mark_front(pts))


scope = [i for i in infos if abs(float(i.alpha) - alpha) < 1e-9 and getattr(i, "bias_mode", "label") == bias_mode]
if not scope:
    if not infos:
        ui.no_runs_message()
    else:
        st.info(f"No runs at α = {alpha:g} ({bias_mode} bias) yet. Run a sweep below.")
else:
    names = tuple(sorted(i.name for i in scope))
    repaired = tuple(app_support.default_compare_names(scope, alpha=alpha, bias_mode=bias_mode))
    signature = tuple((n, (ui.models_root() / n).stat().st_mtime_ns) for n in names)
    with ui.user_errors("Cannot compute the pipelines"):
        pts = _points(names, repaired, signature)
        no_val = [n for n in repaired if not (ui.predictions(n)["split"] == "val").any()]
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
        st.success(
            f"Best pipeline for SPDD ≤ {eps:g}: **{ui.md(best['pipeline'])}**"
            + (f" (θ = {best['value']:g})" if best["knob"] == "theta" else "")
            + f" on run `{best['name']}`: PCC {best['pcc']:.3f}, SPDD {best['spdd']:.4f}, "
            f"score spread {best['score_std']:.3f} ({best['spread_ratio']:.2f}× vanilla's)."
            + (" **Post-processing wins here**: a trained model followed by the barycenter repair beats "
               "every in-processing method at this SPDD." if best["family"] == "repair" else "")
        )
    else:
        st.warning(f"No pipeline that keeps at least half of vanilla's score spread reaches SPDD ≤ {eps:g}; "
                   "accept a larger SPDD, or train or repair more runs.")
    if raw is not None and (best is None or raw["key"] != best["key"]):
        st.warning(
            f"`{raw['key']}` ({ui.md(raw['pipeline'])}) has a higher PCC ({raw['pcc']:.3f}) at SPDD {raw['spdd']:.4f}, "
            f"but its score spread is {raw['score_std']:.3f} ({raw['spread_ratio']:.2f}× vanilla's): its scores "
            + ("have collapsed to a near-constant, " if raw["collapsed"] else "are squeezed together, ")
            + "so its small SPDD says little about fairness. It is not named best."
        )
    for method, values in pipelines.unresolved_jumps(pts).items():
        st.warning(f"The `{method}` curve still jumps between neighbouring weights (PCC, SPDD or the score "
                   f"spread changes a lot): sample it there, e.g. with weights {', '.join(f'{v:g}' for v in values)} "
                   "(or a sweep with extra adaptive runs, below).")
    collapsed_front = pts[pts["on_front"] & pts["collapsed"]]
    if len(collapsed_front):
        st.warning("Collapsed runs on the Pareto front (near-constant scores; drawn with a red cross): "
                   + ", ".join(f"`{k}` (spread {s:.3f})" for k, s in zip(collapsed_front["key"], collapsed_front["score_std"])))
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
    front = pts[pts["on_front"]].sort_values("spdd")
    st.dataframe(
        pd.DataFrame({
            "pipeline": front["pipeline"], "run": front["name"],
            "knob": [f"θ = {v:g}" if k == "theta" else ("—" if pd.isna(v) else f"weight {v:g}")
                     for k, v in zip(front["knob"], front["value"])],
            "PCC": front["pcc"].round(3), "SPDD": front["spdd"].round(4),
            "SPDD floor p95": front["spdd_floor_p95"].round(4), "score spread": front["score_std"].round(3),
            "spread ÷ vanilla": front["spread_ratio"].round(2),
            "note": ["collapsed" if c else ("narrowed" if n else "") for c, n in zip(front["collapsed"], front["narrow"])],
        }),
        hide_index=True, width="stretch",
    )
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
    from fairviz.train import METHODS, TrainConfig

    sweepable = [m for m in METHODS if METHODS[m].weight_field]
    ui.widget_defaults(
        {"fv_sw_method": "ours" if "ours" in sweepable else sweepable[0], "fv_sw_alpha": float(alpha),
         "fv_sw_epochs": int(TrainConfig().epochs), "fv_sw_values": "0 0.1 0.2 0.3 0.5 1 3", "fv_sw_seed": 0,
         "fv_sw_adaptive": 3},
        options={"fv_sw_method": sweepable},
    )
    s1, s2, s3 = st.columns(3)
    s_method = s1.selectbox("Method", sweepable, key="fv_sw_method",
                            help="The values go to the method's own weight: λ_W for ours, λ for l2 and mmd.")
    s_alpha = s2.slider("α", 1.0, 6.0, step=0.5, key="fv_sw_alpha")
    s_epochs = s3.number_input("Epochs per run", 1, 500, key="fv_sw_epochs")
    s4, s5, s6 = st.columns(3)
    values_text = s4.text_input(f"{METHODS[s_method].weight_field} values (any numbers ≥ 0)", key="fv_sw_values")
    s_adaptive = s5.number_input("Extra runs where the curve jumps", 0, 20, key="fv_sw_adaptive",
                                 help="After the listed values, up to this many runs are added between neighbours "
                                      "whose PCC, SPDD or score spread differ a lot, so no cliff goes unseen.")
    s_seed = s6.number_input("Seed", 0, 1_000_000, key="fv_sw_seed")
    mine = ui.job_status(st.session_state.get(SWEEP_KEY))
    busy = mine is not None and not mine.done
    if st.button("Start sweep", type="primary", disabled=busy, key="fv_sw_go", icon=":material/play_arrow:"):
        with ui.user_errors("Cannot start the sweep"):
            values = app_support.parse_weights(values_text)
            cfg = TrainConfig(method=s_method, alpha=float(s_alpha), bias_mode=bias_mode,
                              epochs=int(s_epochs), seed=int(s_seed))
            if not busy:
                st.session_state[SWEEP_KEY] = ui.job_registry().start_sweep(cfg, values, adaptive=int(s_adaptive))
        st.rerun()
    ui.show_job(SWEEP_KEY, on_done=lambda snap: st.rerun() if snap.state == jobs.DONE else None)
