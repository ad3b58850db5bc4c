"""Figures of a monitored stream (pure functions of `MonitorState.history_frame()` rows).

- `gap_history_figure(history, gap, epsilon, level)`: one gap over the decisions seen — its value,
  its anytime confidence band, the ε line, the moment the anytime test first rejected H0, and the
  looks at which a fixed-sample test repeated at each look would have rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairviz import theme

__all__ = ["gap_history_figure", "BAND_FILL", "FIXED_COLOR", "ALARM_COLOR"]

BAND_FILL = "rgba(0, 114, 178, 0.18)"
FIXED_COLOR = "#E69F00"
ALARM_COLOR = "#D55E00"


def _hover_time(rows: pd.DataFrame) -> list[str]:
    """Each row's time as hover text, escaped for Plotly (times can come from a user's file)."""
    return ["" if t is None or t != t else f"time {theme.plotly_text(t)}<br>" for t in rows["time"]]


def gap_history_figure(history: pd.DataFrame, gap: str = "SPDD", *, epsilon: float, level: float = 0.95) -> go.Figure:
    """`history`: rows of `MonitorState.history_frame()` (columns n, time, gap, value, low, high,
    fixed_rejects, alarm); only rows whose ``gap`` equals `gap` are drawn. x = decisions seen."""
    rows = history[history["gap"] == gap].sort_values("n")
    x = rows["n"].to_numpy()
    when = _hover_time(rows)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=rows["high"], mode="lines", line=dict(width=0), showlegend=False,
                             hoverinfo="skip", name="band-high"))
    fig.add_trace(go.Scatter(
        x=x, y=rows["low"], mode="lines", line=dict(width=0), fill="tonexty", fillcolor=BAND_FILL,
        name=f"{level:.0%} anytime confidence sequence", customdata=np.stack([rows["high"], when], axis=-1),
        hovertemplate="%{customdata[1]}decisions %{x:,}<br>CS [%{y:.4f}, %{customdata[0]:.4f}]<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=x, y=rows["value"], mode="lines", line=dict(color=theme.SPDD_LINE, width=2.5), name=f"{gap} so far",
        customdata=when, hovertemplate="%{customdata}decisions %{x:,}<br>" + gap + " %{y:.4f}<extra></extra>",
    ))
    fig.add_hline(y=epsilon, line=dict(color=theme.NEUTRAL, dash="dash", width=1.5),
                  annotation_text=f"ε = {epsilon:g}", annotation_position="top left")
    fixed = rows[rows["fixed_rejects"].astype(bool)]
    if len(fixed):
        fig.add_trace(go.Scatter(
            x=fixed["n"], y=fixed["value"], mode="markers", marker=dict(symbol="x", size=8, color=FIXED_COLOR),
            name="fixed-sample test rejects (repeated at each look)", customdata=_hover_time(fixed),
            hovertemplate="%{customdata}decisions %{x:,}<br>fixed-sample test: reject<extra></extra>",
        ))
    alarm = rows[rows["alarm"].astype(bool)]
    if len(alarm):
        first = alarm.iloc[0]
        stamp = "" if first["time"] is None or first["time"] != first["time"] else f" (time {theme.plotly_text(first['time'])})"
        fig.add_vline(x=float(first["n"]), line=dict(color=ALARM_COLOR, width=2),
                      annotation_text=f"alarm at {int(first['n']):,} decisions{stamp}",
                      annotation_position="top right")
    fig.update_layout(template=theme.TEMPLATE_NAME, height=430, hovermode="x unified",
                      title=f"{gap} over the stream, with H0: {gap} ≤ ε",
                      xaxis_title="decisions seen", yaxis_title=gap, yaxis_rangemode="tozero")
    return fig
