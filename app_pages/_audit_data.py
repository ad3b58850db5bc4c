"""The Audit page's computations, cached (Streamlit glue around `fairviz` calls).

Each is cached by a key naming the data (run folder + mtime, or upload hash + columns):
arguments starting with "_" are not hashed by Streamlit (the key stands for them).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.io as pio
import streamlit as st

from app_pages._common import UPLOAD_TTL_S
from fairviz import figures
from fairviz.app_services.audit_view import RepairPreview, repair_preview, view_curve, view_intervals, view_permutation
from fairviz.app_services.budget import permutation_count
from fairviz.app_services.upload import APP_MAX_CELLS, audit_columns
from fairviz.groups import audit_attributes, prepare_groups
from fairviz.metrics import dp_curve
from fairviz.repair import RepairMap
from fairviz.report import build_report
from fairviz.score_range import rescale_column
from fairviz.significance import shared_nulls
from fairviz.tabular import MAX_GROUPS


@st.cache_resource(show_spinner=False, max_entries=4, ttl=UPLOAD_TTL_S)
def table_columns(digest: str, _table, score_col: str, group_cols: tuple, label_col: str | None,
                  score_range: tuple | None = None, missing_values: tuple = ()):
    """(scores, {attribute: values}, labels or None) from the chosen columns, checked; with
    ``score_range`` (low, high) the scores are first rescaled from that range into [0, 1]."""
    if score_range is not None:
        _table = rescale_column(_table, score_col, *score_range)
    return audit_columns(_table, score_col, list(group_cols), label_col, missing_values)


@st.cache_resource(show_spinner="Auditing…", max_entries=8, ttl=UPLOAD_TTL_S)
def audit_views(data_key: str, _scores, _attributes, _labels, n_boot: int):
    """`fairviz.groups.audit_attributes`: every attribute and their intersections, within the
    server's limits on groups and rows × groups."""
    return audit_attributes(_scores, _attributes, _labels, n_boot=n_boot, random_state=0,
                            max_groups=MAX_GROUPS, max_cells=APP_MAX_CELLS)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def null_store(data_key: str) -> dict:
    """The permutation nulls drawn for this data (`fairviz.significance.shared_nulls`): a later
    test of the same data and seed with no more shuffles than already drawn (the intervals, the
    report) reads them instead of drawing again."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def view_audit(data_key: str, view: str, _view, n_boot: int):
    """The view's metrics with ``n_boot`` bootstrap resamples, from the rows `audit_views` already
    prepared (`fairviz.app_services.audit_view.view_intervals`)."""
    with shared_nulls(null_store(data_key)):
        return view_intervals(_view, n_boot)


@st.cache_resource(show_spinner=False)
def _permutation_store() -> dict:
    """Permutation tests already run on this server, by data key and view (a few seconds each)."""
    return {}


def permutation_for(data_key: str, view_name: str, view, progress=None):
    """Permutation test of the view's SPDD on its prepared rows, within the page's work budget
    (`fairviz.app_services.budget.permutation_count`). Run once per data and view;
    ``progress(done, total)`` is called from this thread (not from a cached function, so a
    progress bar can follow it)."""
    store = _permutation_store()
    key = (data_key, view_name)
    if key not in store:
        n_perm = permutation_count(view.n, len(view.groups))
        with shared_nulls(null_store(data_key)):
            result = view_permutation(view, n_perm, progress=progress)
        while len(store) >= 8:  # the last few only
            store.pop(next(iter(store)))
        store[key] = result
    return store[key]


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _prepared_groups(data_key: str, _n: int, _attributes):
    return prepare_groups(_attributes, _n, intersections=True)


def view_rows(data_key: str, view: str, scores, attributes):
    """(scores, group values) of the rows whose group is known in ``view``."""
    col = _prepared_groups(data_key, len(scores), attributes)[view]
    return np.asarray(scores)[col.known], col.values(known_only=True)


@st.cache_resource(show_spinner="Computing DP(τ)…", max_entries=8, ttl=UPLOAD_TTL_S)
def dp_curve_for(data_key: str, view: str, _scores, _attributes, _view=None):
    """The view's DP(τ): from its prepared rows when given (`fairviz.app_services.audit_view.view_curve`)."""
    curve = None if _view is None else view_curve(_view)
    if curve is None:
        curve = dp_curve(*view_rows(data_key, view, _scores, _attributes))
    return curve


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _dp_base_figure_json(data_key: str, view: str, _curve) -> str:
    return figures.dp_curve_figure(_curve, title=None).to_json()


def dp_base_figure(data_key: str, view: str, curve):
    """A fresh copy of the (cached) DP(τ) figure without a τ marker: cheap to mark per slider move."""
    return pio.from_json(_dp_base_figure_json(data_key, view, curve), skip_invalid=True)


@st.cache_data(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def distribution_figure(data_key: str, view: str, _scores, _attributes):
    x, g = view_rows(data_key, view, _scores, _attributes)
    return figures.score_distribution_figure(x, g, title=None)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _repair_map(data_key: str, view: str, _scores, _attributes):
    x, g = view_rows(data_key, view, _scores, _attributes)
    return RepairMap().fit(x, g)


@st.cache_data(show_spinner="Repairing…", max_entries=32, ttl=UPLOAD_TTL_S)
def repair_for(data_key: str, view: str, _scores, _attributes, _labels, theta: float, _before: dict) -> RepairPreview:
    """`fairviz.app_services.audit_view.repair_preview` of ``view`` at strength ``theta``
    (``_before``: the view's audit dict)."""
    col = _prepared_groups(data_key, len(_scores), _attributes)[view]
    x, g = np.asarray(_scores)[col.known], col.values(known_only=True)
    y = None if _labels is None else np.asarray(_labels)[col.known]
    return repair_preview(x, g, y, theta, _repair_map(data_key, view, _scores, _attributes), _before,
                          dp_curve_for(data_key, view, _scores, _attributes))


@st.cache_resource(show_spinner=False, max_entries=4, ttl=UPLOAD_TTL_S)
def _report_reuse(data_key: str) -> dict:
    """What a report of this data computed that another τ does not change (tests, intervals, repair)."""
    return {}


@st.cache_resource(show_spinner=False)
def _report_store() -> dict:
    """Reports already built on this server, by data key (a report takes seconds to build)."""
    return {}


def report_builder(data_key, scores, attributes, labels, *, source_text: str, file_name: str,
                   source_name: str | None = None, source_bytes: bytes | None = None,
                   tau: float | Callable[[], float] = 0.5, n_boot: int = 200):
    """A callable that builds the self-contained HTML audit report when the download button is
    clicked (`fairviz.report.build_report`, the same as `python -m fairviz report`). Built once
    per data and τ, then served from memory; a report at another τ reuses the first one's tests,
    intervals and repair (only the τ-dependent tables and the audit's exact numbers are redone).

    ``tau`` may be a callable, read at the click: the τ slider lives in a fragment whose reruns
    do not redraw this button, so a τ captured when the button was drawn could be stale."""
    store = _report_store()

    def _html() -> bytes:
        t = float(tau() if callable(tau) else tau)
        key = (data_key, round(t, 4), int(n_boot))
        if key not in store:
            with shared_nulls(null_store(data_key)):  # the page's tests and earlier reports' are not redrawn
                html = build_report(scores, attributes, labels, source_name=source_name, source_bytes=source_bytes,
                                    source=source_text, title=f"fairviz audit: {file_name}", tau=t,
                                    n_boot=int(n_boot), reuse=_report_reuse(data_key))
            while len(store) >= 4:  # keep the last few reports only (a few MB each)
                store.pop(next(iter(store)))
            store[key] = html.encode("utf-8")
        return store[key]

    return _html
