"""Home: what fairviz measures, the current run, and what the model sees."""

from pathlib import Path

import streamlit as st

from app_pages import _common as ui
from fairviz import app_support

ui.page_header("fairviz", "Fair scores for video interviews — and how fair any score is at every threshold.")

st.markdown(
    """
A hiring model scores each candidate in [0, 1]; people are then selected when their score is above
a threshold τ that nobody fixes in advance. **DP(τ)** is the gap between groups in the share
selected at τ, and **SPDD** — the area under DP(τ) over all thresholds — measures unfairness at
*every* threshold at once (for two groups it is the Wasserstein-1 distance between their score
distributions). fairviz trains multimodal scoring models that keep SPDD low without losing
accuracy (PCC with the true labels), and audits any model's scores the same way.
"""
)

left, right = st.columns([3, 2], gap="large")

with left:
    st.subheader("Current run")
    info = ui.current_run_info()
    if info is None:
        ui.no_runs_message()
    else:
        m = info.metrics
        st.markdown(
            f"**`{info.name}`** — method **{info.method}**, bias strength α = {info.alpha:g} "
            f"({getattr(info, 'bias_mode', '')} bias), λ_W = {info.lambda_w:g}, seed {info.seed}."
        )
        c = st.columns(4)
        with c[0]:
            ui.metric_card("PCC ↑", m, "pcc", help="Pearson correlation of the score with the true label (test split).")
        with c[1]:
            ui.metric_card("SRCC ↑", m, "srcc", help="Spearman rank correlation with the true label.")
        with c[2]:
            ui.metric_card("SPDD ↓", m, "spdd", help="Area under DP(τ): the group gap in selection rate over all thresholds.")
        with c[3]:
            ui.metric_card("SPEO ↓", m, "speo", help="The same for equal opportunity: gap among candidates whose true label is above τ.")
        st.page_link("app_pages/audit.py", label="Audit this run: DP(τ), impact ratios, report", icon=":material/fact_check:")
        st.page_link("app_pages/compare.py", label="Compare the six methods", icon=":material/compare_arrows:")
        st.page_link("app_pages/train.py", label="Train a new run", icon=":material/model_training:")
        if ui.skipped_runs():
            with st.expander(f"{len(ui.skipped_runs())} folder(s) in the runs folder could not be read"):
                for path, reason in ui.skipped_runs():
                    st.markdown(f"{ui.code(Path(path).name)}: {ui.md(reason)}")

with right:
    st.subheader("What the model sees")
    st.caption("One synthetic candidate: video frames, voice and the transcript of the answer. "
               "Each modality carries signal about competence, and a proxy of the group.")


    @st.cache_resource(show_spinner="Making a sample interview…")
    def _sample():
        return app_support.sample_interview()

    try:
        sample = _sample()
    except (ValueError, FileNotFoundError, OSError) as err:
        st.warning(f"The sample interview could not be made here: {err}")
    else:
        st.video(str(sample["video"]))
        st.audio(str(sample["wav"]))
        st.markdown(f"> {sample['transcript']}")
        st.caption(f"True label (mean of three raters) {sample['label']:.2f} · group {sample['group']}")
