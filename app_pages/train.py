"""Train: start a training job (runs in the background, survives widget changes), or load a run."""

import streamlit as st

from app_pages import _common as ui
from app_pages import _jobs
from fairviz import app_support, jobs, kgroups
from fairviz.app_services import train_form
from fairviz.app_services.train_form import (
    FAIRNESS_ROWS_TEXT,
    FRAME_ENCODER_TEXT,
    SOURCES,
    VAL_LABEL_TEXT,
    WEIGHT_LABELS,
)
from fairviz.methods import weight_warning
from fairviz.train import METHODS  # this page trains: its form reads the methods

JOB_KEY = "fv_train_job"

ui.page_header("Train", "Train a scoring model with one of the methods; training runs in the background.")
reg = _jobs.job_registry()
ui.widget_defaults(*train_form.form_defaults())

tab_new, tab_load = st.tabs(["Train a new run", "Load an existing run"])

with tab_new:
    left, right = st.columns(2, gap="large")
    with left:
        source = st.radio("Data", list(SOURCES), format_func=SOURCES.get, key="fv_train_source")
        path = frames = size = None
        if source != "synthetic":
            path = st.text_input(
                ("Path" if source == "manifest" else "Folder") + " inside the server's data folder (FAIRVIZ_DATA_ROOT)",
                key="fv_train_path",
                placeholder="interviews/manifest.csv" if source == "manifest" else "first-impressions-v2",
            )
            v1, v2 = st.columns(2)  # the paper's resolution: 30 frames of 112×112
            frames = v1.number_input("Frames per clip", 1, 1000, key="fv_train_frames",
                                     help="frames taken evenly over each clip")
            size = v2.number_input("Frame size (pixels)", 1, 1024, key="fv_train_size",
                                   help="frames are resized to size × size")
        attr = "binary"
        if source == "synthetic":
            attr = st.radio("Sensitive attribute S", list(kgroups.SYNTHETIC_ATTRIBUTES), key="fv_train_attr",
                            format_func=lambda k: kgroups.SYNTHETIC_ATTRIBUTES[k][0])
        method = st.selectbox("Method", list(METHODS), key="fv_train_method")
        st.caption(f"**{method}** adds to the MSE loss: {METHODS[method].description}.")
        needs_s = train_form.uses_s(method)
        s_fraction = st.select_slider(
            "Training rows whose group S the training may use", options=list(kgroups.S_FRACTIONS),
            key="fv_train_sfrac", format_func=lambda v: f"{v:.0%}", disabled=not needs_s,
            help="Fairness terms and the adversary see the rows with a known group only; "
                 "test metrics always use S. Methods dro and arl never read S.",
        )
        if not METHODS[method].needs_s:
            st.caption(f"**{method}** never reads S in training; the test split is still audited with S.")
        bias_mode = st.radio(
            "How the training data is biased", ["label", "sample"], horizontal=True, key="fv_train_bias",
            format_func={"label": "rater bias (biased labels, the paper's Ỹ)",
                         "sample": "sampling bias (who is in the data)"}.get,
        )
        alpha = st.slider("Bias strength α (1 = no bias)", 1.0, 6.0, step=0.5, key="fv_train_alpha")
    with right:
        # the method's own fairness weight (λ_W for ours, λ for l2 and mmd), if it has one
        weight_field = METHODS[method].weight_field
        weight = None
        if weight_field:
            weight_key = f"fv_train_w_{weight_field}"
            weight_default = train_form.weight_default(weight_field)
            ui.widget_defaults({weight_key: weight_default})
            weight = st.number_input(
                f"{WEIGHT_LABELS.get(weight_field, weight_field)} (0 = off; large values collapse the scores)",
                min_value=0.0, max_value=1000.0, step=0.05, format="%.4g", key=weight_key,
                help=f"Any number ≥ 0 (TrainConfig.{weight_field}; default {weight_default:g}). The Trade-off "
                     "page shows where the scores collapse.",
            )
            if warning := weight_warning(method, weight):
                st.warning(warning)
        else:
            st.caption(f"The **{method}** method has no fairness weight to set.")
        c1, c2 = st.columns(2)
        epochs = c1.number_input("Epochs", 1, 500, key="fv_train_epochs")
        seed = c2.number_input("Seed", 0, 1_000_000, key="fv_train_seed")
        name = st.text_input("Run name (optional)", key="fv_train_name",
                             placeholder="default: method, α, bias mode, λ_W and seed; made unique")
        with st.expander("Advanced"):
            a1, a2 = st.columns(2)
            batch_size = a1.number_input("Batch size", 2, 4096, key="fv_train_bs")
            lr = a2.number_input("Learning rate", 1e-5, 1.0, format="%.4f", key="fv_train_lr")
            n_samples = a1.number_input("Synthetic candidates (0 = default dataset)", 0, 200_000, step=100,
                                        key="fv_train_n", disabled=source != "synthetic")
            adv_weight = a2.number_input("Adversary weight", 0.0, 100.0, key="fv_train_adv")
            target = a1.number_input(
                "Target SPDD (0 = off)", 0.0, 1.0, step=0.005, format="%.3f", key="fv_train_target",
                disabled=not weight_field,
                help="Training adjusts the weight itself until the validation SPDD is at most this, and keeps "
                     "the most accurate such epoch; the weight reached is stored in the run.",
            )
            val_labels = a2.radio("Pick the best epoch with", list(VAL_LABEL_TEXT), format_func=VAL_LABEL_TEXT.get,
                                  key="fv_train_sel")
            w1_form = a2.selectbox("W1 term with k > 2 groups", list(kgroups.W1_FORMS), key="fv_train_w1form",
                                   help="spdd: ∫ max − min of the groups' selection rates; pooled: each "
                                        "group's W1 to the batch's pooled scores")
            frame_encoder = a1.selectbox("Frame encoder", list(FRAME_ENCODER_TEXT), key="fv_train_fenc",
                                         format_func=FRAME_ENCODER_TEXT.get,
                                         help="The network that reads each video frame. The pretrained one's "
                                              "weights come with a Python package, nothing is downloaded.")
            fairness_rows = a1.selectbox(
                "Fairness term reads", list(FAIRNESS_ROWS_TEXT), key="fv_train_fairrows",
                format_func=FAIRNESS_ROWS_TEXT.get, disabled=not METHODS[method].pool_capable,
                help="Under sampling bias the rows left out of the labelled set still have inputs and S; a "
                     "fairness term on them measures the population the model will score. Same rows under rater bias.",
            )

    mine = _jobs.job_status(st.session_state.get(JOB_KEY))
    busy = mine is not None and not mine.done
    if st.button("Train", type="primary", icon=":material/play_arrow:", disabled=busy, key="fv_train_go",
                 help="Your training is still running" if busy else None):
        with ui.user_errors("Cannot start training"):
            data = app_support.resolve_data_source(source, path)
            cfg = train_form.train_config(dict(
                source=source, method=method, alpha=alpha, bias_mode=bias_mode, weight=weight, adv_weight=adv_weight,
                epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, n_samples=n_samples, target=target,
                val_labels=val_labels, attr=attr, w1_form=w1_form, s_fraction=s_fraction, frames=frames, size=size,
                frame_encoder=frame_encoder, fairness_rows=fairness_rows,
            ), data)
            if not busy:  # a click that raced the button's disabling must not start a second job
                st.session_state[JOB_KEY] = reg.start(cfg, name=name.strip() or None)
        st.rerun()  # redraw with the button disabled and the progress shown
    others = reg.active_count() - (1 if busy else 0)
    if others > 0:
        st.caption(f"{others} other training job(s) on this server; jobs train one at a time.")

    def _finished(snap: jobs.JobSnapshot) -> None:
        if snap.state == jobs.DONE and snap.run_name:
            ui.set_current_run(snap.run_name)
            st.rerun()  # redraw the sidebar with the new current run

    _jobs.show_job(JOB_KEY, on_done=_finished)

with tab_load:
    infos = ui.runs()
    if not infos:
        ui.no_runs_message()
    else:
        table = app_support.runs_frame(infos)
        names = table["name"].tolist()
        ui.widget_defaults({"fv_load_pick": ui.current_run_name()}, options={"fv_load_pick": names})
        pick = st.selectbox("Run", names, key="fv_load_pick")
        if st.button("Make it the current run", key="fv_load_go", icon=":material/check:"):
            with ui.user_errors(f"Cannot load run {pick!r}"):
                ui.load_run(pick)  # refuses an unreadable folder with a clear message
                ui.set_current_run(pick)
                st.rerun()
        shown = table[["name", "method", "alpha", "bias_mode", "lambda_w", "seed", "pcc", "srcc", "spdd", "speo"]]
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("pcc", "srcc", "spdd", "speo")})
