"""Every fairviz figure, as a pure function of plain data (no Streamlit).

The app's pages and the HTML report (`fairviz.report`) call these; both get the same look from
the ``"fairviz"`` Plotly template and the fixed group colours of `fairviz.theme`.

Large inputs are summarised before drawing, never sent point by point: histograms are binned
with numpy, empirical CDFs are drawn from at most ``max_points`` exact step points per group,
and step functions with many intervals (DP(τ) on 10⁶ scores has up to 10⁶ steps) are averaged
onto a regular grid, which keeps the shaded area — SPDD — exact.

Small helpers computing what the figures need are public and tested on their own:
`ecdf_points`, `step_points`, `impact_ratio_violations`, `tau_summary`, `pareto_front`,
`pca_2d`, `centroid_distance`, `best_per_column`.

Conventions: scores are in [0, 1]; a "curve" is a `fairviz.metrics.DPCurve` (``thresholds``
(k+1,), ``values`` (k,), ``groups``, ``rates`` (n_groups, k), ``at``, ``rates_at``).

Layout: `_steps` (step functions, ranges, τ summaries), `_summaries` (Pareto front, PCA, centroids),
`_distributions`, `_dp`, `_representation`, `_history` (the figures), `_base` (shared constants).
"""

from __future__ import annotations

from fairviz.figures._base import DEFAULT_BINS as DEFAULT_BINS
from fairviz.figures._base import DEFAULT_MAX_POINTS as DEFAULT_MAX_POINTS
from fairviz.figures._base import FOUR_FIFTHS as FOUR_FIFTHS
from fairviz.figures._base import MANY_GROUPS as MANY_GROUPS
from fairviz.figures._distributions import distribution_grid_figure, score_distribution_figure
from fairviz.figures._dp import add_tau_marker, dp_curve_figure, dp_overlay_figure
from fairviz.figures._history import history_figure
from fairviz.figures._representation import centroid_distance_figure, pca_figure
from fairviz.figures._steps import (
    ecdf_points,
    impact_ratio_violations,
    merge_ranges,
    score_range,
    step_points,
    tau_summary,
)
from fairviz.figures._summaries import (
    PCA2D,
    best_per_column,
    centroid_distance,
    group_centroids,
    pareto_front,
    pca_2d,
)

__all__ = [
    "score_range",
    "ecdf_points",
    "step_points",
    "impact_ratio_violations",
    "merge_ranges",
    "tau_summary",
    "pareto_front",
    "pca_2d",
    "PCA2D",
    "centroid_distance",
    "group_centroids",
    "best_per_column",
    "score_distribution_figure",
    "distribution_grid_figure",
    "dp_curve_figure",
    "add_tau_marker",
    "dp_overlay_figure",
    "pca_figure",
    "centroid_distance_figure",
    "history_figure",
]
