"""DP(τ) at every threshold: one curve with its shaded SPDD, the τ marker, several runs overlaid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from fairviz import theme
from fairviz.figures._base import DEFAULT_MAX_POINTS, MANY_GROUPS, new_figure
from fairviz.figures._steps import (
    curve_area,
    curve_data_range,
    impact_ratio_violations,
    merge_ranges,
    resolve_range,
    score_range,
    step_points,
    tau_summary,
)


def dp_curve_figure(
    curve,
    *,
    tau: float | None = None,
    spdd: float | None = None,
    violations: Sequence[tuple[float, float]] | None | bool = True,
    show_rates: bool = True,
    max_points: int = DEFAULT_MAX_POINTS,
    title: str | None = "Demographic parity gap DP(τ) at every threshold",
    x_range="auto",
) -> go.Figure:
    """DP(τ) = largest gap in selection rate P(score > τ | group) between groups, for τ in [0, 1].

    Drawn as a step function with the area under it shaded: that area is SPDD (``spdd``; computed
    exactly from the curve when not given) and labelled so. With ``show_rates`` each group's
    selection-rate curve is drawn thin and dotted (DP is the vertical distance between them).
    ``violations``: τ ranges shaded where a group's impact ratio is under 0.8 — True computes them
    with `impact_ratio_violations`, a list draws those, False/None draws none. ``tau`` adds the
    marker of `add_tau_marker`. ``x_range``: "auto" (the range of the scores, where DP(τ) can be
    non-zero, padded; see `score_range`), "full" ([0, 1]) or (low, high); the area is the same.
    """
    area = curve_area(curve) if spdd is None else float(spdd)
    fig = new_figure(title=title, height=500)

    if violations is True:
        violations = impact_ratio_violations(curve)
    if violations:
        _add_violation_shading(fig, violations, max_points)

    if show_rates:
        _add_rate_curves(fig, curve, max_points)
    _add_dp_area(fig, curve, area, max_points)
    r0, r1 = resolve_range(x_range, *curve_data_range(curve))
    if tau is not None:
        r0, r1 = min(r0, float(tau)), max(r1, float(tau))
    fig.update_xaxes(title_text="threshold τ (selected if score > τ)", range=[r0, r1])
    fig.update_yaxes(title_text="selection rate / gap", range=[0, 1.02])
    fig.update_layout(meta={"spdd": area})
    if title is None:
        fig.update_layout(margin=dict(t=20))
    if tau is not None:
        add_tau_marker(fig, curve, tau)
    return fig


def _add_rate_curves(fig: go.Figure, curve, max_points: int) -> None:
    """Each group's selection rate P(score > τ | group) as a thin dotted step line."""
    t = np.asarray(curve.thresholds, dtype=np.float64)
    colors = theme.group_colors(curve.groups)
    rates = np.asarray(curve.rates, dtype=np.float64)
    many = len(curve.groups) > MANY_GROUPS
    for g, r in zip(curve.groups, rates):
        x, y = step_points(t, r, max_points)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=colors[g], width=1.5, dash="dot", shape="hv"),
                name=f"selection rate, {theme.group_name(g)}", legendgroup=f"rate-{g}", showlegend=not many,
                hovertemplate="τ %{x:.3f}<br>P(score > τ) = %{y:.3f}<extra>"
                + theme.group_name(g) + "</extra>",
            )
        )


def _add_dp_area(fig: go.Figure, curve, area: float, max_points: int) -> None:
    """DP(τ) as a shaded step function, its area (SPDD) labelled at the area's centre of mass."""
    t = np.asarray(curve.thresholds, dtype=np.float64)
    x, y = step_points(t, curve.values, max_points)
    fig.add_trace(
        go.Scatter(
            x=x, y=y, mode="lines", fill="tozeroy", fillcolor=theme.SPDD_FILL,
            line=dict(color=theme.SPDD_LINE, width=2.5, shape="hv"),
            name=f"DP(τ); shaded area = SPDD = {area:.3f}", legendgroup="dp",
            hovertemplate="τ %{x:.3f}<br>DP(τ) = %{y:.3f}<extra></extra>",
        )
    )
    vals = np.asarray(curve.values, dtype=np.float64)
    w = vals * np.diff(t)
    if w.sum() > 0:
        cx = float(np.sum((t[:-1] + t[1:]) / 2 * w) / w.sum())
        cy = float(np.asarray(curve.at(np.array([cx])))[0]) / 2
        fig.add_annotation(
            x=cx, y=max(cy, 0.02), text=f"<b>SPDD = {area:.3f}</b><br>(shaded area)",
            showarrow=False, font=dict(color="#003D5C", size=14), bgcolor="rgba(255,255,255,0.7)",
            name="spdd-label",
        )


def _add_violation_shading(fig: go.Figure, violations, max_points: int) -> None:
    ranges = merge_ranges(violations, min_gap=1.0 / max(max_points, 1))
    for i, (a, b) in enumerate(ranges):
        fig.add_shape(
            type="rect", xref="x", yref="paper", x0=a, x1=b, y0=0, y1=1,
            fillcolor=theme.VIOLATION_FILL, line=dict(width=0), layer="below",
            name="impact ratio < 0.8", legendgroup="violations", showlegend=(i == 0),
        )


def add_tau_marker(fig: go.Figure, curve, tau: float, *, row: int | None = None, col: int | None = None) -> go.Figure:
    """Mark threshold τ on a DP(τ) figure: a vertical line, each group's selection rate as a dot
    in its colour, and the gap between the highest and lowest rate as a labelled bracket.

    Cheap (reads the precomputed curve at one point); returns ``fig`` for chaining.
    """
    info = tau_summary(curve, tau)
    colors = theme.group_colors(curve.groups)
    tau = info["tau"]
    xr = fig.layout.xaxis.range
    if xr is not None and not (xr[0] <= tau <= xr[1]):  # keep the marker on screen
        fig.update_xaxes(range=[min(xr[0], tau), max(xr[1], tau)])
    fig.add_vline(x=tau, line=dict(color=theme.TAU_LINE, width=1.5, dash="dash"), name="tau")
    rates = info["rates"]
    lo, hi = min(rates.values()), max(rates.values())
    fig.add_trace(
        go.Scatter(
            x=[tau, tau], y=[lo, hi], mode="lines", line=dict(color=theme.TAU_LINE, width=4),
            name=f"gap at τ = {tau:.2f}: {info['dp']:.3f}", legendgroup="tau",
            hoverinfo="skip",
        )
    )
    for g, r in rates.items():
        ir = info["impact_ratios"][g]
        ir_text = "n/a" if not np.isfinite(ir) else f"{ir:.2f}"
        fig.add_trace(
            go.Scatter(
                x=[tau], y=[r], mode="markers",
                marker=dict(color=colors[g], size=12, line=dict(color="white", width=1.5)),
                name=f"{theme.group_name(g)} at τ: rate {r:.3f}, impact ratio {ir_text}",
                legendgroup=f"tau-{g}", showlegend=len(rates) <= MANY_GROUPS,
                hovertemplate=f"{theme.group_name(g)}<br>rate {r:.3f}<br>impact ratio {ir_text}<extra></extra>",
            )
        )
    fig.add_annotation(
        x=tau, y=hi, text=f"gap {info['dp']:.3f}", showarrow=True, arrowhead=0, ax=40 if tau < 0.8 else -40,
        ay=-28, font=dict(size=13, color=theme.TAU_LINE), bgcolor="rgba(255,255,255,0.8)", name="tau-label",
    )
    return fig


def dp_overlay_figure(
    curves: Mapping[str, Any],
    *,
    methods: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    title: str | None = "DP(τ) for several runs",
) -> go.Figure:
    """Overlaid DP(τ) step curves, one per run (``{run name: curve}``), SPDD in each legend entry.

    Colours follow the run's method when ``methods`` maps each run to a distinct known method;
    ``colors`` (name → colour) overrides.
    """
    if not curves:
        raise ValueError("dp_overlay_figure needs at least one curve")
    names = list(curves)
    colors = {**theme.series_colors(names, [methods.get(n, "") for n in names] if methods else None),
              **(colors or {})}
    fig = new_figure(title=title, height=430)
    for name in names:
        c = curves[name]
        x, y = step_points(c.thresholds, c.values, max_points)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=colors[name], width=2.2, shape="hv"),
                name=f"{name} (SPDD {curve_area(c):.3f})",
                hovertemplate="τ %{x:.3f}<br>DP(τ) = %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    lows, highs = zip(*[curve_data_range(c) for c in curves.values()])
    fig.update_xaxes(title_text="threshold τ", range=list(score_range(min(lows), max(highs))))
    fig.update_yaxes(title_text="DP(τ)", rangemode="tozero")
    return fig
