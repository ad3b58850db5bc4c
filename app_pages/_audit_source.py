"""The Audit page's first section: what to audit — the current run's test split, or an uploaded
table with its columns chosen (Streamlit glue; reading and checking are `fairviz` calls)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _audit_data as data
from app_pages import _common as ui
from fairviz import score_range as scale
from fairviz.app_services.upload import GROUP_NAMES, LABEL_NAMES, SCORE_NAMES, guess_column
from fairviz.tabular import parse_missing_values

NONE = "(none)"


@dataclass
class AuditSource:
    """The scores to audit and how to name them. ``run``: the RunInfo (None for an upload);
    ``upload``: (file name, bytes) of an upload; ``score_range``: (low, high) when rescaled."""

    scores: np.ndarray
    attributes: dict
    labels: np.ndarray | None
    data_key: str
    source_text: str
    file_name: str
    run: Any = None
    upload: tuple[str, bytes] | None = None
    score_range: tuple[float, float] | None = None


def _run_source() -> AuditSource:
    info = ui.current_run_info()
    if info is None:
        ui.no_runs_message()
        st.stop()
    with ui.user_errors(f"Cannot read run {info.name!r}"):
        preds = ui.test_predictions(info.name)
    return AuditSource(
        scores=preds["score"].to_numpy(dtype=np.float64), attributes={"group": preds["group"].to_numpy()},
        labels=preds["label"].to_numpy(dtype=np.float64), data_key=f"run:{info.name}:{ui.run_mtime(info.name)}",
        source_text=f"run `{info.name}` ({info.method}, α = {info.alpha:g}, λ_W = {info.lambda_w:g}), test split",
        file_name=info.name, run=info)


def _uploaded_file():
    up = st.file_uploader(
        "A table with one row per candidate: a score in [0, 1], one or more group columns, and "
        "optionally the true label in [0, 1].",
        type=["csv", "parquet"], key="fv_audit_upload",
        help=f"Up to {st.get_option('server.maxUploadSize')} MB (set `server.maxUploadSize` in "
             "`.streamlit/config.toml`). Scores and labels must be numbers in [0, 1].",
    )
    if up is None:
        st.info("Upload a CSV or Parquet file to audit it. Example:", icon=":material/upload_file:")
        st.dataframe(pd.DataFrame({"score": [0.81, 0.42, 0.66, 0.35], "group": ["F", "M", "M", "F"],
                                   "label": [0.9, 0.5, 0.6, 0.4]}), hide_index=True)
        st.stop()
    content = up.getvalue()
    digest = st.session_state.get(f"fv_hash_{up.file_id}")
    if digest is None:
        digest = hashlib.sha256(content).hexdigest()
        st.session_state[f"fv_hash_{up.file_id}"] = digest
    return up, content, digest


def _choose_columns(cols: list):
    c1, c2, c3 = st.columns([1, 2, 1])
    score_col = c1.selectbox("Score column", cols, index=cols.index(guess_column(cols, SCORE_NAMES, cols[0])),
                             key="fv_audit_score")
    rest = [c for c in cols if c != score_col]
    default_group = guess_column(cols, GROUP_NAMES, rest[0] if rest else None)
    group_cols = c2.multiselect("Group column(s) — several give each attribute and their intersection",
                                rest, default=[default_group] if default_group in rest else [], key="fv_audit_groups")
    label_opts = [NONE] + [c for c in rest if c not in group_cols]
    label_guess = guess_column(cols, LABEL_NAMES, NONE)
    label_col = c3.selectbox("Label column (optional)", label_opts,
                             index=label_opts.index(label_guess) if label_guess in label_opts else 0, key="fv_audit_label")
    missing = parse_missing_values(st.text_input(
        "Group values that mean 'missing' (comma-separated; an empty cell always does)", key="fv_audit_missing",
        placeholder="e.g. NA, unknown", help="By default 'NA', 'None' or 'unknown' are groups like any other."))
    if not group_cols:
        st.error("Choose at least one group column (the sensitive attribute, e.g. sex or race).", icon=":material/error:")
        st.stop()
    return score_col, group_cols, label_col, missing


def _score_range():
    rng_cols = st.columns([2, 1, 1])
    rescale = rng_cols[0].toggle(
        "Scores are on another scale: rescale them into [0, 1]", key="fv_audit_rescale",
        help="For scores such as 0–100: each score becomes (score − low) / (high − low). Every output of this "
             "page says so.")
    if not rescale:
        return None
    return (float(rng_cols[1].number_input("lowest possible score", key="fv_audit_range_low")),
            float(rng_cols[2].number_input("highest possible score", key="fv_audit_range_high")))


def _upload_source() -> AuditSource:
    up, content, digest = _uploaded_file()
    with ui.user_errors(f"Cannot read {up.name}"):
        table = ui.read_table(digest, up.name, content)
    score_col, group_cols, label_col, missing = _choose_columns(list(table.columns))
    score_range = _score_range()
    with ui.user_errors("These columns cannot be audited"):
        scores, attributes, labels = data.table_columns(digest, table, score_col, tuple(group_cols),
                                                        None if label_col == NONE else label_col, score_range, missing)
    source_text = f"{ui.code(up.name)} — score {ui.code(score_col)}, groups {', '.join(ui.code(g) for g in group_cols)}" + (
        f", label {ui.code(label_col)}" if label_col != NONE else ", no label")
    if score_range:
        source_text += ". " + scale.note(*score_range)
        st.info(scale.note(*score_range), icon=":material/straighten:")
    return AuditSource(
        scores=scores, attributes=attributes, labels=labels, source_text=source_text,
        data_key=(f"upload:{digest}:{score_col}:{'|'.join(group_cols)}:{label_col}:{score_range}"
                  f":{'|'.join(missing)}"),
        file_name=up.name.rsplit(".", 1)[0], upload=(up.name, content), score_range=score_range)


def choose_source() -> AuditSource:
    """Draw section 1 of the Audit page and return what to audit (stops the page until it is known)."""
    ui.widget_defaults({"fv_audit_source": "run", "fv_audit_tau": 0.5, "fv_audit_theta": 1.0,
                        "fv_audit_rescale": False, "fv_audit_range_low": 0.0, "fv_audit_range_high": 100.0},
                       options={"fv_audit_source": ["run", "upload"]})
    source = st.radio("Scores to audit", ["run", "upload"], horizontal=True, key="fv_audit_source",
                      format_func={"run": "the current run (test split)",
                                   "upload": "upload any model's scores (CSV / Parquet)"}.get)
    return _run_source() if source == "run" else _upload_source()
