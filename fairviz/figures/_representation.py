"""The latent representation Z: its 2-D projection by group and score, centroid distances per run."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairviz import theme
from fairviz.figures._base import new_figure
from fairviz.figures._summaries import centroid_distance, group_centroids


def pca_figure(
    coords,
    groups,
    *,
    scores=None,
    explained=None,
    max_points: int = 3000,
    random_state: int = 0,
    distance: float | None = None,
    distance_label: str = "centroid distance in this plane",
    group_names: Mapping | None = None,
    title: str | None = "Latent representation Z (PCA)",
) -> go.Figure:
    """2-D projection of Z: coloured by group (left) and, with ``scores``, by score (right).

    Group centroids (over all points) are big crosses joined by a line labelled
    ``f"{distance_label} {distance:.3f}"``; `distance` defaults to the centroid distance in this
    plane (pass the number the page reports elsewhere, e.g. the standardised distance in the full
    Z, so the plot and the bar chart show one number). `group_names` maps a group value to its
    legend name (default `theme.group_name`). The score colour scale spans the scores' own range,
    so a narrow score range still shows its variation. More than ``max_points`` points are
    subsampled for drawing (seeded), never for the centroids.
    """
    coords = np.asarray(coords, dtype=np.float64)
    g = np.asarray(groups)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(g) != len(coords):
        raise ValueError(f"coords must be (n, 2) and groups (n,), got {coords.shape} and {g.shape}")
    n = len(coords)
    show = np.arange(n)
    if n > max_points:
        show = np.sort(np.random.default_rng(random_state).choice(n, max_points, replace=False))
    cols = 2 if scores is not None else 1
    titles = ["coloured by group"] + (["coloured by score"] if scores is not None else [])
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.08, subplot_titles=titles)
    cents = group_centroids(coords, g)
    colors = theme.group_colors(list(cents))
    names = {lab: theme.group_name((group_names or {}).get(lab, lab)) for lab in cents}
    for lab in cents:
        m = show[g[show] == lab]
        fig.add_trace(
            go.Scatter(
                x=coords[m, 0], y=coords[m, 1], mode="markers", name=names[lab],
                legendgroup=str(lab), marker=dict(color=theme.with_alpha(colors[lab], 0.6), size=6),
                hovertemplate="PC1 %{x:.2f}<br>PC2 %{y:.2f}<extra>" + names[lab] + "</extra>",
            ),
            row=1, col=1,
        )
    if scores is not None:
        fig.add_trace(_score_points(coords, scores, show), row=1, col=2)
    dist = centroid_distance(coords, g) if distance is None else float(distance)
    for j in range(1, cols + 1):
        _add_centroids(fig, cents, colors, names, f"{distance_label} {dist:.3f}", col=j)
    ev = np.asarray(explained, dtype=np.float64) if explained is not None else None
    for j in range(1, cols + 1):
        fig.update_xaxes(title_text="PC1" + (f" ({ev[0]:.0%} of variance)" if ev is not None else ""), row=1, col=j)
        fig.update_yaxes(title_text="PC2" + (f" ({ev[1]:.0%})" if ev is not None else ""), row=1, col=j)
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=500, meta={"centroid_distance": dist})
    return fig


def _score_points(coords: np.ndarray, scores, show: np.ndarray) -> go.Scatter:
    """The drawn rows ``show`` of ``coords`` (n, 2), coloured by score on the scores' own range."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) != len(coords):
        raise ValueError(f"scores has {len(s)} values but coords has {len(coords)} rows")
    return go.Scatter(
        x=coords[show, 0], y=coords[show, 1], mode="markers", name="score", showlegend=False,
        marker=dict(color=s[show], colorscale=theme.SCORE_COLORSCALE, cmin=float(s.min()),
                    cmax=float(s.max()) if s.max() > s.min() else float(s.min()) + 1e-9, size=6,
                    colorbar=dict(title=dict(text="score"), thickness=14, len=0.8)),
        hovertemplate="PC1 %{x:.2f}<br>PC2 %{y:.2f}<br>score %{marker.color:.3f}<extra></extra>",
    )


def _add_centroids(fig: go.Figure, cents: Mapping, colors: Mapping, names: Mapping, line_name: str, *,
                   col: int) -> None:
    """The group centroids ``{group: (2,)}`` as big crosses joined by a line, in panel ``col``
    (the legend entries only once, in the first panel)."""
    c = np.stack(list(cents.values()))
    fig.add_trace(
        go.Scatter(
            x=c[:, 0], y=c[:, 1], mode="lines", line=dict(color="#222222", width=2),
            name=line_name, legendgroup="centroids", showlegend=(col == 1),
            hoverinfo="skip",
        ),
        row=1, col=col,
    )
    for lab, xy in cents.items():
        fig.add_trace(
            go.Scatter(
                x=[xy[0]], y=[xy[1]], mode="markers",
                marker=dict(symbol="x", size=18, color=colors[lab], line=dict(color="#111111", width=2)),
                name=f"centroid, {names[lab]}", legendgroup=f"c-{lab}", showlegend=(col == 1),
                hovertemplate=f"centroid of {names[lab]}<br>" + "(%{x:.2f}, %{y:.2f})<extra></extra>",
            ),
            row=1, col=col,
        )


def centroid_distance_figure(
    distances: Mapping[str, float],
    *,
    methods: Mapping[str, str] | None = None,
    title: str | None = "Distance between the group centroids in the full Z, standardised",
) -> go.Figure:
    """Bar chart of one centroid distance per run/method (``{name: distance}``), lower = groups
    closer in the representation."""
    if not distances:
        raise ValueError("centroid_distance_figure needs at least one value")
    names = list(distances)
    colors = theme.series_colors(names, [methods.get(n, "") for n in names] if methods else None)
    vals = [float(distances[n]) for n in names]
    fig = new_figure(title=title, height=380, showlegend=False)
    fig.add_trace(
        go.Bar(
            x=names, y=vals, marker=dict(color=[colors[n] for n in names]),
            text=[f"{v:.3f}" for v in vals], textposition="outside",
            hovertemplate="%{x}<br>distance %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="centroid distance", rangemode="tozero")
    return fig
