"""Score distributions per group: histograms and ECDFs of one run, small multiples of many."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairviz import theme
from fairviz.figures._base import DEFAULT_BINS, DEFAULT_MAX_POINTS, MANY_GROUPS, split_by_group
from fairviz.figures._steps import ecdf_points, resolve_range, score_range


def score_distribution_figure(
    scores,
    groups,
    *,
    reference_scores=None,
    bins: int = DEFAULT_BINS,
    max_points: int = DEFAULT_MAX_POINTS,
    title: str | None = "Score distribution per group",
    reference_name: str = "before",
    x_range="auto",
) -> go.Figure:
    """Per-group score histograms (left, density) and ECDFs (right), groups overlaid.

    Histograms are binned with numpy on ``bins`` equal bins of the drawn score range (one trace
    per group; every score falls in a bin, so each density integrates to 1); ECDFs are exact
    step points, at most ``max_points`` per group. ``x_range``: "auto" (the scores' range,
    padded: see `score_range`), "full" ([0, 1]) or (low, high). With ``reference_scores`` (same
    rows, e.g. scores before a repair) the reference ECDFs are drawn dotted, so a change of
    distribution is visible.
    """
    parts = split_by_group(scores, groups)
    ref_parts = split_by_group(reference_scores, groups) if reference_scores is not None else None
    colors = theme.group_colors([g for g, _ in parts])
    everything = [p for _, p in parts] + ([p for _, p in ref_parts] if ref_parts else [])
    r0, r1 = resolve_range(x_range, min(float(p.min()) for p in everything), max(float(p.max()) for p in everything))
    edges = np.linspace(r0, r1, int(bins) + 1)
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.09,
        subplot_titles=("Histogram (density)", "Empirical CDF  P(score ≤ x)"),
    )
    outlines = len(parts) > MANY_GROUPS  # overlaid filled bars of many groups are unreadable
    for i, (g, s) in enumerate(parts):
        name = f"{theme.group_name(g)} (n={s.size:,})"
        fig.add_trace(_histogram_trace(s, edges, colors[g], name, str(g), outlines), row=1, col=1)
        fig.add_trace(_ecdf_trace(s, max_points, colors[g], name, str(g), name, dash=None), row=1, col=2)
        if ref_parts is not None:
            fig.add_trace(
                _ecdf_trace(ref_parts[i][1], max_points, colors[g], f"{theme.group_name(g)} {reference_name}",
                            f"{g}-ref", reference_name, dash="dot"),
                row=1, col=2,
            )
    fig.update_layout(template=theme.TEMPLATE_NAME, barmode="overlay", title=title, height=440)
    if title is None:
        fig.update_layout(margin=dict(t=40))
    fig.update_xaxes(title_text="score", range=[r0, r1])
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_yaxes(title_text="cumulative share", range=[0, 1.02], row=1, col=2)
    return fig


def _histogram_trace(s: np.ndarray, edges: np.ndarray, color: str, name: str, group: str, outline: bool):
    """One group's density histogram of scores ``s`` (n_g,) on ``edges`` (bins + 1,): filled bars,
    or a step outline when many groups are overlaid."""
    width = edges[1] - edges[0]
    counts, _ = np.histogram(s, bins=edges)
    density = counts / (s.size * width)
    hover = "score %{x:.3f}<br>density %{y:.2f}<extra>" + name + "</extra>"
    if outline:
        return go.Scatter(
            x=edges, y=np.append(density, density[-1]),
            mode="lines", line=dict(color=color, width=2, shape="hv"), name=name, legendgroup=group,
            hovertemplate=hover,
        )
    return go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=density, width=width, name=name, legendgroup=group,
        marker=dict(color=theme.with_alpha(color, 0.55), line=dict(color=color, width=1)),
        hovertemplate=hover,
    )


def _ecdf_trace(s: np.ndarray, max_points: int, color: str, name: str, group: str, hover_name: str,
                dash: str | None) -> go.Scatter:
    """The ECDF of scores ``s`` as a step line; solid (in no legend) for a run's own scores,
    dotted (in the legend) for reference scores."""
    x, y = ecdf_points(s, max_points)
    line = dict(color=color, width=2.5, shape="hv") if dash is None else \
        dict(color=color, width=1.5, dash=dash, shape="hv")
    extra = {"showlegend": False} if dash is None else {}
    return go.Scatter(
        x=x, y=y, mode="lines", line=line, name=name, legendgroup=group,
        hovertemplate="score %{x:.3f}<br>F = %{y:.3f}<extra>" + hover_name + "</extra>", **extra,
    )


def distribution_grid_figure(
    samples: Mapping[str, tuple[Any, Any]],
    *,
    bins: int = DEFAULT_BINS,
    cols: int = 3,
    title: str | None = "Score distribution per group, run by run",
) -> go.Figure:
    """Small multiples: one panel per run (``{run name: (scores, groups)}``), each with the
    per-group score histograms (density, binned with numpy) drawn as outlines in group colours.

    A shared score axis, so the panels compare at a glance; each panel has its own density
    scale (one collapsed run, all scores in one bin, would otherwise flatten every other panel).
    The panel title carries the run name.
    """
    if not samples:
        raise ValueError("distribution_grid_figure needs at least one run")
    names = list(samples)
    cols = max(1, min(int(cols), len(names)))
    rows = -(-len(names) // cols)
    lows, highs = zip(*[(float(np.min(np.asarray(samples[n][0], dtype=float))),
                         float(np.max(np.asarray(samples[n][0], dtype=float)))) for n in names])
    r0, r1 = score_range(min(lows), max(highs))
    edges = np.linspace(r0, r1, int(bins) + 1)
    width = edges[1] - edges[0]
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes=True, shared_yaxes=False,
                        subplot_titles=names, horizontal_spacing=0.06, vertical_spacing=0.12)
    seen: set = set()
    for k, name in enumerate(names):
        r, c = divmod(k, cols)
        parts = split_by_group(*samples[name])
        colors = theme.group_colors([g for g, _ in parts])
        for g, s in parts:
            counts, _ = np.histogram(s, bins=edges)
            dens = counts / (s.size * width)
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([[r0], edges, [r1]]), y=np.concatenate([[0.0], dens, [dens[-1], 0.0]]),
                    mode="lines", line=dict(color=colors[g], width=2, shape="hv"),
                    fill="tozeroy", fillcolor=theme.with_alpha(colors[g], 0.15),
                    name=theme.group_name(g), legendgroup=str(g), showlegend=g not in seen,
                    hovertemplate="score %{x:.3f}<br>density %{y:.2f}<extra>" + f"{name}, {theme.group_name(g)} (n={s.size:,})</extra>",
                ),
                row=r + 1, col=c + 1,
            )
            seen.add(g)
    fig.update_xaxes(range=[r0, r1])
    fig.update_xaxes(title_text="score", row=rows)
    fig.update_yaxes(title_text="density", col=1)
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=260 * rows + 120)
    return fig
