"""Constants and small drawing helpers every figure module shares."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from fairviz import metrics, theme

DEFAULT_MAX_POINTS = 2000
DEFAULT_BINS = 40
FOUR_FIFTHS = 0.8
#: Above this many groups, histograms are drawn as outlines and per-group curves leave the legend
#: (their values stay in the hover text and in the tables next to the chart).
MANY_GROUPS = 3


def new_figure(**layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=theme.TEMPLATE_NAME, **layout)
    return fig


def split_by_group(scores, groups) -> list[tuple]:
    """``[(group label, its scores as float64 (n_g,))]``, groups in the order of `metrics.validate_inputs`."""
    s, codes, labels, _ = metrics.validate_inputs(scores, groups)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(lab, s[order[bounds[i] : bounds[i + 1]]]) for i, lab in enumerate(labels)]
