"""Figures the audit report needs beyond `fairviz.figures`, in the shared ``"fairviz"`` template.

Pure functions of plain data (no Streamlit), so the app can draw them too:

- `add_dp_band(fig, band)`: the simultaneous confidence band of DP(τ) on a `figures.dp_curve_figure`;
- `permutation_figure(result)`: the permutation null of SPDD (chance level) and the observed value;
- `repair_tradeoff_figure(table)`: SPDD (and PCC / SRCC) against the repair strength θ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairviz import theme

__all__ = ["add_dp_band", "permutation_figure", "repair_tradeoff_figure"]

BAND_FILL = "rgba(0, 114, 178, 0.16)"


def add_dp_band(fig: go.Figure, band: Any) -> go.Figure:
    """Draw `band` (a `fairviz.significance.DPBand`) on a DP(τ) figure as a shaded ribbon.

    The band holds at every τ at once (see `dp_band`) and is drawn beneath the curve. Returns ``fig``.
    """
    taus = np.asarray(band.taus, dtype=np.float64)
    fig.add_trace(go.Scatter(
        x=taus, y=np.asarray(band.high, dtype=np.float64), mode="lines", line=dict(width=0, shape="hv"),
        showlegend=False, hoverinfo="skip", name="band-high",
    ))
    fig.add_trace(go.Scatter(
        x=taus, y=np.asarray(band.low, dtype=np.float64), mode="lines", line=dict(width=0, shape="hv"),
        fill="tonexty", fillcolor=BAND_FILL,
        name=band.label,
        hovertemplate="τ %{x:.3f}<br>band %{y:.3f}<extra></extra>",
    ))
    return fig


def permutation_figure(result: Any, *, title: str | None = "SPDD against its chance level",
                       bins: int = 40) -> go.Figure:
    """Histogram of the permutation null (SPDD with group labels shuffled) and the observed SPDD.

    The shaded band spans the null's 5–95 % quantiles (when computed): values there arise by chance
    for these group sizes. ``result``: `fairviz.significance.PermutationResult`.
    """
    null = np.asarray(result.null_values, dtype=np.float64)
    hi = max(float(null.max()), float(result.observed)) if null.size else float(result.observed)
    edges = np.linspace(0.0, hi * 1.05 + 1e-12, int(bins) + 1)
    counts, _ = np.histogram(null, bins=edges)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=360, bargap=0.02)
    q = result.null_quantiles
    if 0.05 in q and 0.95 in q:
        fig.add_vrect(x0=q[0.05], x1=q[0.95], fillcolor="rgba(110,110,110,0.15)", line_width=0,
                      layer="below")
    fig.add_trace(go.Bar(
        x=centers, y=counts, width=edges[1] - edges[0], marker=dict(color=theme.with_alpha(theme.NEUTRAL, 0.6)),
        name=f"shuffled groups ({result.n_perm} permutations)",
        hovertemplate="SPDD %{x:.4f}<br>%{y} permutations<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=[result.observed, result.observed], y=[0, max(int(counts.max()) if counts.size else 1, 1)],
        mode="lines", line=dict(color=theme.SPDD_LINE, width=3),
        name=f"observed {result.metric.upper()} = {result.observed:.4f} ({_p(result.p_value)})",
    ))
    fig.update_xaxes(title_text=f"{result.metric.upper()} (grey band: 5–95 % of the chance level)")
    fig.update_yaxes(title_text="permutations")
    return fig


def repair_tradeoff_figure(table: pd.DataFrame, *, title: str | None = "Repair strength θ: fairness and accuracy") -> go.Figure:
    """SPDD against θ (left axis) and, when present, PCC / SRCC against θ (right axis).

    ``table``: `fairviz.repair_tradeoff.repair_tradeoff` output (columns strength, spdd, pcc, srcc, ...).
    """
    if len(table) == 0:
        raise ValueError("repair_tradeoff_figure needs at least one row")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=380)
    fig.add_trace(go.Scatter(
        x=table["strength"], y=table["spdd"], mode="lines+markers", name="SPDD (lower is fairer)",
        line=dict(color=theme.SPDD_LINE, width=3), hovertemplate="θ %{x:.2f}<br>SPDD %{y:.4f}<extra></extra>",
    ), secondary_y=False)
    styles = {"pcc": ("PCC with labels", "#009E73", "solid"), "srcc": ("SRCC with labels", "#E69F00", "dash"),
              "srcc_original": ("SRCC with the original scores", theme.NEUTRAL, "dot")}
    for col, (name, color, dash) in styles.items():
        if col in table.columns and table[col].notna().any():
            fig.add_trace(go.Scatter(
                x=table["strength"], y=table[col], mode="lines+markers", name=name,
                line=dict(color=color, width=2, dash=dash),
                hovertemplate="θ %{x:.2f}<br>" + col.upper() + " %{y:.4f}<extra></extra>",
            ), secondary_y=True)
    fig.update_xaxes(title_text="repair strength θ (0 = original, 1 = fully repaired)", range=[-0.02, 1.02])
    fig.update_yaxes(title_text="SPDD", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="correlation", secondary_y=True, showgrid=False)
    return fig


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
