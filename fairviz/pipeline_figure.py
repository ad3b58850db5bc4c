"""The Trade-off page's figure: every pipeline (method × weight, run + repair × θ) on one plane.

`pipeline_figure(points)` draws the output of `fairviz.pipelines` (after `mark_front` and
`flag_spread`): SPDD on x (left is fairer), PCC on y (up is more accurate, so up-left is best).
Each method's weight sweep is a solid line, each run's repair curve (θ from 0 to 1) a dotted line
in the same colour starting at the run as trained, the Pareto front over all points a black
dashed line. Collapsed points are drawn as crosses and say so on hover; the best pipeline for the
accepted SPDD gets a star and the accepted SPDD a vertical line. Pure: data in, figure out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairviz import theme
from fairviz.app_support import METHOD_ORDER

__all__ = ["pipeline_figure"]


def _hover(df: pd.DataFrame) -> list[str]:
    out = []
    for _, r in df.iterrows():
        knob = ""
        if r["knob"] == "theta":
            knob = f"repair θ = {r['value']:g}<br>"
        elif pd.notna(r["value"]):
            knob = f"weight {r['value']:g}<br>"
        ratio = r.get("spread_ratio", math.nan)
        spread = f"score spread (std) {r['score_std']:.3f}" + (f" = {ratio:.2f}× vanilla's" if pd.notna(ratio) else "")
        warn = "<br><b>collapsed: near-constant scores</b>" if r.get("collapsed", False) else (
            "<br>narrowed: spread below half of vanilla's" if r.get("narrow", False) else "")
        floor = f" (floor p95 {r['spdd_floor_p95']:.4f})" if pd.notna(r["spdd_floor_p95"]) else ""
        out.append(f"<b>{r['pipeline']}</b> · {r['name']}<br>{knob}PCC {r['pcc']:.3f}<br>"
                   f"SPDD {r['spdd']:.4f}{floor}<br>{spread}{warn}")
    return out


def _order(methods) -> list[str]:
    return sorted(set(methods), key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))


def _add_method(fig: go.Figure, df: pd.DataFrame, trained: pd.DataFrame, method: str) -> None:
    """One method's weight sweep (solid) and each of its runs' repair curves (dotted, from the run)."""
    color = theme.method_color(method)
    t = trained[trained["method"] == method].sort_values(["value", "name"])
    if len(t):
        swept = t[t["value"].notna()]
        mode = "lines+markers" if swept["value"].nunique() > 1 else "markers"
        sym = np.where(t["collapsed"], "x", "circle")
        fig.add_trace(go.Scatter(
            x=t["spdd"], y=t["pcc"], mode=mode, name=method, legendgroup=method,
            line=dict(color=color, width=1.5), customdata=t["name"],
            marker=dict(color=color, size=np.where(t["on_front"], 13, 10), symbol=sym,
                        line=dict(color="white", width=1)),
            hovertext=_hover(t), hovertemplate="%{hovertext}<extra></extra>",
        ))
    rep = df[(df["family"] == "repair") & (df["method"] == method)]
    for i, (name, r) in enumerate(rep.groupby("name", sort=True)):
        base = trained[trained["name"] == name]
        r = pd.concat([base, r.sort_values("value")], ignore_index=True)
        fig.add_trace(go.Scatter(
            x=r["spdd"], y=r["pcc"], mode="lines+markers", name=f"{method} + repair (θ 0→1)",
            legendgroup=f"{method}-repair", showlegend=(i == 0), customdata=r["name"],
            line=dict(color=color, width=1.5, dash="dot"),
            marker=dict(color="white", size=np.where(r["on_front"], 10, 7), symbol="circle",
                        line=dict(color=color, width=2)),
            hovertext=_hover(r), hovertemplate="%{hovertext}<extra></extra>",
        ))


def _add_marks(fig: go.Figure, df: pd.DataFrame, trained: pd.DataFrame, best_key: str | None,
               selected: str | None) -> None:
    """Crosses on collapsed points, a star on the best pipeline, a ring on the selected run."""
    bad = df[df["collapsed"]]
    if len(bad):
        fig.add_trace(go.Scatter(x=bad["spdd"], y=bad["pcc"], mode="markers", name="collapsed (near-constant scores)",
                                 marker=dict(symbol="x-thin-open", size=20, color="#D55E00", line=dict(width=2)),
                                 hoverinfo="skip"))
    if best_key is not None and (df["key"] == best_key).any():
        b = df[df["key"] == best_key].iloc[0]
        fig.add_trace(go.Scatter(x=[b["spdd"]], y=[b["pcc"]], mode="markers", name=f"best: {b['pipeline']}",
                                 marker=dict(symbol="star", size=22, color="#F0E442", line=dict(color="#111111", width=1.5)),
                                 customdata=[b["name"]], hovertext=_hover(df[df["key"] == best_key]),
                                 hovertemplate="%{hovertext}<extra>best</extra>"))
    if selected is not None and (trained["name"] == selected).any():
        s = trained[trained["name"] == selected].iloc[0]
        fig.add_trace(go.Scatter(x=[s["spdd"]], y=[s["pcc"]], mode="markers", name=f"selected: {selected}",
                                 marker=dict(size=24, color="rgba(0,0,0,0)", line=dict(color="#000000", width=2.5)),
                                 hoverinfo="skip"))


def pipeline_figure(points: pd.DataFrame, *, best_key: str | None = None, selected: str | None = None,
                    max_spdd: float | None = None,
                    title: str | None = "Every pipeline: left is fairer, up-left is best") -> go.Figure:
    """SPDD (x) against PCC (y) of every pipeline in `points` (`fairviz.pipelines` columns plus
    ``on_front``, ``collapsed``, ``narrow``, ``spread_ratio``). ``customdata`` of every point is
    its run name (a click selects the run). `best_key` (a ``key``) gets a star, `selected` (a run
    name) a ring on its trained point, `max_spdd` a vertical dotted line.
    """
    if len(points) == 0:
        raise ValueError("pipeline_figure needs at least one point")
    df = points.reset_index(drop=True)
    for col in ("on_front", "collapsed", "narrow"):
        if col not in df.columns:
            df[col] = False
    fig = go.Figure()
    front = df[df["on_front"]].sort_values("spdd")
    if len(front):
        fig.add_trace(go.Scatter(x=front["spdd"], y=front["pcc"], mode="lines", name="Pareto front (all pipelines)",
                                 line=dict(color="#111111", width=2, dash="dash"), hoverinfo="skip"))
    trained = df[df["family"] == "trained"]
    for method in _order(df["method"]):
        _add_method(fig, df, trained, method)
    _add_marks(fig, df, trained, best_key, selected)
    if max_spdd is not None and math.isfinite(max_spdd):
        fig.add_vline(x=max_spdd, line=dict(color=theme.NEUTRAL, width=1.5, dash="dot"),
                      annotation_text=f"accepted SPDD {max_spdd:g}", annotation_position="top left")
    fig.update_xaxes(title_text="SPDD (left is fairer)", rangemode="tozero")
    fig.update_yaxes(title_text="PCC (up is more accurate)")
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=560,
                      meta={"n_points": int(len(df)), "n_front": int(df["on_front"].sum()), "best": best_key})
    return fig
