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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairviz import theme
from fairviz.metrics import FOUR_FIFTHS

DEFAULT_MAX_POINTS = 2000
DEFAULT_BINS = 40
#: Above this many groups, histograms are drawn as outlines and per-group curves leave the legend
#: (their values stay in the hover text and in the tables next to the chart).
MANY_GROUPS = 3

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


# ----------------------------------------------------------------------------------------------
# Helpers: plain numbers in, plain numbers out
# ----------------------------------------------------------------------------------------------


def ecdf_points(scores, max_points: int = DEFAULT_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Exact points of the empirical CDF F(x) = P(score ≤ x), at most ``max_points`` (+2) of them.

    Returns ``(x, y)`` to draw as a step line (Plotly ``line_shape="hv"``): starting at (0, 0),
    ending at (1, 1) for scores in [0, 1]. With more scores than ``max_points`` the points are
    taken at evenly spaced ranks; each ``y`` is still the exact ECDF value at its ``x`` (ties
    included), so the drawing is off by at most 1/max_points vertically.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if s.size == 0:
        raise ValueError("ecdf_points needs at least one score")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    n = s.size
    if n <= max_points:
        x = np.unique(s)
    else:
        idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
        x = np.unique(s[idx])
    y = np.searchsorted(s, x, side="right") / n
    lo, hi = min(0.0, float(s[0])), max(1.0, float(s[-1]))
    x = np.concatenate([[lo], x, [hi]])
    y = np.concatenate([[0.0], y, [1.0]])
    return x, y


def step_points(edges, values, max_points: int = DEFAULT_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points to draw a step function (value ``values[i]`` on ``[edges[i], edges[i+1])``).

    Returns ``(x, y)`` for ``line_shape="hv"`` with ``y[-1] == y[-2]`` (the last step is drawn to
    the right edge). With more than ``max_points`` steps, the function is averaged over
    ``max_points`` equal-width bins: the area under the drawn curve equals the exact area (so a
    shaded DP(τ) still shows SPDD), narrow spikes are smoothed.
    """
    edges = np.asarray(edges, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if edges.size != values.size + 1:
        raise ValueError(
            f"a step function needs len(edges) == len(values) + 1, got {edges.size} and {values.size}"
        )
    if values.size == 0:
        raise ValueError("a step function needs at least one step")
    if values.size <= max_points:
        return edges.copy(), np.append(values, values[-1])
    widths = np.diff(edges)
    cum = np.concatenate([[0.0], np.cumsum(values * widths)])
    grid = np.linspace(edges[0], edges[-1], max_points + 1)
    cum_grid = np.interp(grid, edges, cum)  # the integral is piecewise linear between edges
    y = np.diff(cum_grid) / np.diff(grid)
    return grid, np.append(y, y[-1])


def score_range(lo: float, hi: float, *, step: float = 0.05, min_span: float = 0.2) -> tuple[float, float]:
    """An axis range for scores in [lo, hi]: padded by a step, rounded out to multiples of
    ``step``, inside [0, 1], and at least ``min_span`` wide (so a narrow score range is readable
    instead of squeezed into a corner of [0, 1])."""
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        return 0.0, 1.0
    a = max(0.0, np.floor(lo / step) * step - step)
    b = min(1.0, np.ceil(hi / step) * step + step)
    while b - a < min_span - 1e-12 and (a > 0 or b < 1):
        a, b = max(0.0, a - step / 2), min(1.0, b + step / 2)
    return round(a, 10), round(b, 10)


def _resolve_range(x_range, lo: float, hi: float) -> tuple[float, float]:
    if x_range is None or x_range == "full":
        return 0.0, 1.0
    if x_range == "auto":
        return score_range(lo, hi)
    a, b = x_range
    return float(a), float(b)


def _curve_data_range(curve) -> tuple[float, float]:
    t = np.asarray(curve.thresholds, dtype=np.float64)
    inner = t[1:-1]
    return (float(inner.min()), float(inner.max())) if inner.size else (0.0, 1.0)


def _curve_area(curve) -> float:
    t = np.asarray(curve.thresholds, dtype=np.float64)
    return float(np.sum(np.asarray(curve.values, dtype=np.float64) * np.diff(t)))


def impact_ratio_violations(curve, threshold: float = FOUR_FIFTHS) -> list[tuple[float, float]]:
    """τ ranges where some group's impact ratio is under ``threshold`` (the four-fifths rule).

    The impact ratio of group g at τ is P(score > τ | g) / max_h P(score > τ | h). Where no group
    has anyone selected (max rate 0, e.g. τ above every score) the ratio is undefined and not a
    violation. Returns merged, sorted ``(τ0, τ1)`` half-open ranges ``[τ0, τ1)`` from the exact
    intervals of the curve.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    rates = np.asarray(curve.rates, dtype=np.float64)
    t = np.asarray(curve.thresholds, dtype=np.float64)
    top = rates.max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(top > 0, rates.min(axis=0) / np.where(top > 0, top, 1.0), 1.0)
    bad = (top > 0) & (low < threshold - 1e-12)
    if not bad.any():
        return []
    # run-length encode the violating intervals
    padded = np.concatenate([[False], bad, [False]]).astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    starts, stops = change[0::2], change[1::2]
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, stops)]


def merge_ranges(ranges: Sequence[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """Join ranges separated by less than ``min_gap`` (for drawing: fewer, visible rectangles)."""
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a - out[-1][1] < min_gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def tau_summary(curve, tau: float) -> dict[str, Any]:
    """What happens at one threshold τ, read off a precomputed curve (cheap: no scores needed).

    Returns ``{"tau", "dp", "rates": {group: P(score > τ | group)}, "impact_ratios": {group:
    rate / highest rate} (NaN where nobody is selected), "min_impact_ratio", "four_fifths_ok"}``.
    """
    tau = float(tau)
    if not np.isfinite(tau) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"τ must be in [0, 1], got {tau}")
    rates = np.asarray(curve.rates_at(np.array([tau])), dtype=np.float64)[:, 0]
    top = rates.max()
    ratios = rates / top if top > 0 else np.full_like(rates, np.nan)
    groups = list(curve.groups)
    min_ratio = float(np.nanmin(ratios)) if top > 0 else float("nan")
    return {
        "tau": tau,
        "dp": float(np.asarray(curve.at(np.array([tau])))[0]),
        "rates": {g: float(r) for g, r in zip(groups, rates)},
        "impact_ratios": {g: float(r) for g, r in zip(groups, ratios)},
        "min_impact_ratio": min_ratio,
        "four_fifths_ok": bool(top == 0 or min_ratio >= FOUR_FIFTHS - 1e-12),
    }


def pareto_front(points, *, minimize: tuple[bool, bool] = (True, False)) -> np.ndarray:
    """Indices of the non-dominated points, ordered by the first coordinate.

    ``points`` is (n, 2), by default (SPDD, PCC): lower SPDD is better, higher PCC is better
    (change with ``minimize``). A point is dominated when another is at least as good on both
    coordinates and strictly better on one. Rows with NaN are ignored; duplicates keep the first.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {p.shape}")
    sign = np.array([1.0 if m else -1.0 for m in minimize])
    q = p * sign  # now both coordinates are "lower is better"
    ok = np.flatnonzero(np.isfinite(q).all(axis=1))
    if ok.size == 0:
        return np.array([], dtype=np.int64)
    order = ok[np.lexsort((q[ok, 1], q[ok, 0]))]  # by x, then y
    front: list[int] = []
    best_y = np.inf
    for i in order:
        if q[i, 1] < best_y:
            front.append(int(i))
            best_y = q[i, 1]
    return np.array(front, dtype=np.int64)


class PCA2D(NamedTuple):
    """A 2-D PCA projection: ``coords`` (n, 2) and ``explained`` (2,) variance ratios."""

    coords: np.ndarray
    explained: np.ndarray


def pca_2d(z, *, random_state: int = 0) -> PCA2D:
    """Project ``z`` (n, d) onto its first two principal components (scikit-learn PCA).

    The sign of each component is fixed so that the coordinate with the largest absolute
    loading is positive (PCA's sign is otherwise arbitrary, and pictures would flip between
    runs). With d == 1 the second coordinate is 0.
    """
    from sklearn.decomposition import PCA

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z must be a 2-D array (n samples, d features), got shape {z.shape}")
    if z.shape[0] < 3:
        raise ValueError(f"PCA needs at least 3 rows of z, got {z.shape[0]}")
    if not np.isfinite(z).all():
        raise ValueError("z contains NaN or infinite values")
    if z.shape[1] == 1:
        coords = np.column_stack([z[:, 0] - z[:, 0].mean(), np.zeros(len(z))])
        return PCA2D(coords, np.array([1.0, 0.0]))
    pca = PCA(n_components=2, random_state=random_state).fit(z)
    comps = pca.components_
    flip = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    flip[flip == 0] = 1.0
    coords = pca.transform(z) * flip
    return PCA2D(coords, np.asarray(pca.explained_variance_ratio_, dtype=np.float64))


def group_centroids(z, groups) -> dict:
    """Mean of ``z`` (n, d) per group: ``{group: ndarray (d,)}``, groups in sorted order."""
    z = np.asarray(z, dtype=np.float64)
    g = np.asarray(groups)
    if z.ndim != 2 or len(g) != len(z):
        raise ValueError(f"z must be (n, d) and groups (n,), got {z.shape} and {g.shape}")
    labels = np.unique(g)
    return {lab.item() if hasattr(lab, "item") else lab: z[g == lab].mean(axis=0) for lab in labels}


def centroid_distance(z, groups, *, standardize: bool = False) -> float:
    """Euclidean distance between the group centroids of ``z`` (n, d); largest pair if > 2 groups.

    With ``standardize=True`` the distance is divided by the root-mean-square distance of all
    points to the overall mean, so representations of different scale compare (0 = same centre,
    ~2 = groups fully apart).
    """
    z = np.asarray(z, dtype=np.float64)
    cents = group_centroids(z, groups)
    if len(cents) < 2:
        raise ValueError("centroid distance needs at least two groups")
    c = np.stack(list(cents.values()))
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)).max()
    if standardize:
        spread = np.sqrt(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())
        d = d / spread if spread > 0 else 0.0
    return float(d)


def best_per_column(df: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, Any]:
    """Index label of the best row for each listed column (NaN ignored; ties: first row).

    ``higher_is_better`` maps a column to True (e.g. PCC) or False (e.g. SPDD).
    """
    out = {}
    for col, higher in higher_is_better.items():
        if col not in df.columns:
            raise ValueError(f"no column {col!r}; columns are {list(df.columns)}")
        s = pd.to_numeric(df[col], errors="coerce")
        if s.notna().any():
            out[col] = s.idxmax() if higher else s.idxmin()
    return out


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def _new_figure(**layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=theme.TEMPLATE_NAME, **layout)
    return fig


def _split_by_group(scores, groups):
    from fairviz import metrics

    s, codes, labels, _ = metrics.validate_inputs(scores, groups)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(lab, s[order[bounds[i] : bounds[i + 1]]]) for i, lab in enumerate(labels)]


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
    parts = _split_by_group(scores, groups)
    ref_parts = _split_by_group(reference_scores, groups) if reference_scores is not None else None
    colors = theme.group_colors([g for g, _ in parts])
    everything = [p for _, p in parts] + ([p for _, p in ref_parts] if ref_parts else [])
    r0, r1 = _resolve_range(x_range, min(float(p.min()) for p in everything), max(float(p.max()) for p in everything))
    edges = np.linspace(r0, r1, int(bins) + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.09,
        subplot_titles=("Histogram (density)", "Empirical CDF  P(score ≤ x)"),
    )
    outlines = len(parts) > MANY_GROUPS  # overlaid filled bars of many groups are unreadable
    for i, (g, s) in enumerate(parts):
        name = f"{theme.group_name(g)} (n={s.size:,})"
        counts, _ = np.histogram(s, bins=edges)
        density = counts / (s.size * width)
        hover = "score %{x:.3f}<br>density %{y:.2f}<extra>" + name + "</extra>"
        if outlines:
            trace = go.Scatter(
                x=edges, y=np.append(density, density[-1]),
                mode="lines", line=dict(color=colors[g], width=2, shape="hv"), name=name, legendgroup=str(g),
                hovertemplate=hover,
            )
        else:
            trace = go.Bar(
                x=centers, y=density, width=width, name=name, legendgroup=str(g),
                marker=dict(color=theme.with_alpha(colors[g], 0.55), line=dict(color=colors[g], width=1)),
                hovertemplate=hover,
            )
        fig.add_trace(trace, row=1, col=1)
        x, y = ecdf_points(s, max_points)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=colors[g], width=2.5, shape="hv"),
                name=name, legendgroup=str(g), showlegend=False,
                hovertemplate="score %{x:.3f}<br>F = %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=1, col=2,
        )
        if ref_parts is not None:
            x, y = ecdf_points(ref_parts[i][1], max_points)
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines",
                    line=dict(color=colors[g], width=1.5, dash="dot", shape="hv"),
                    name=f"{theme.group_name(g)} {reference_name}", legendgroup=f"{g}-ref",
                    hovertemplate="score %{x:.3f}<br>F = %{y:.3f}<extra>" + reference_name + "</extra>",
                ),
                row=1, col=2,
            )
    fig.update_layout(template=theme.TEMPLATE_NAME, barmode="overlay", title=title, height=440)
    if title is None:
        fig.update_layout(margin=dict(t=40))
    fig.update_xaxes(title_text="score", range=[r0, r1])
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_yaxes(title_text="cumulative share", range=[0, 1.02], row=1, col=2)
    return fig


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
        parts = _split_by_group(*samples[name])
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
    area = _curve_area(curve) if spdd is None else float(spdd)
    t = np.asarray(curve.thresholds, dtype=np.float64)
    fig = _new_figure(title=title, height=500)

    if violations is True:
        violations = impact_ratio_violations(curve)
    if violations:
        _add_violation_shading(fig, violations, max_points)

    if show_rates:
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

    x, y = step_points(t, curve.values, max_points)
    fig.add_trace(
        go.Scatter(
            x=x, y=y, mode="lines", fill="tozeroy", fillcolor=theme.SPDD_FILL,
            line=dict(color=theme.SPDD_LINE, width=2.5, shape="hv"),
            name=f"DP(τ); shaded area = SPDD = {area:.3f}", legendgroup="dp",
            hovertemplate="τ %{x:.3f}<br>DP(τ) = %{y:.3f}<extra></extra>",
        )
    )
    # label the shaded area at its centre of mass
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
    r0, r1 = _resolve_range(x_range, *_curve_data_range(curve))
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
    fig = _new_figure(title=title, height=430)
    for name in names:
        c = curves[name]
        x, y = step_points(c.thresholds, c.values, max_points)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=colors[name], width=2.2, shape="hv"),
                name=f"{name} (SPDD {_curve_area(c):.3f})",
                hovertemplate="τ %{x:.3f}<br>DP(τ) = %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    lows, highs = zip(*[_curve_data_range(c) for c in curves.values()])
    fig.update_xaxes(title_text="threshold τ", range=list(score_range(min(lows), max(highs))))
    fig.update_yaxes(title_text="DP(τ)", rangemode="tozero")
    return fig


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
        s = np.asarray(scores, dtype=np.float64)
        if len(s) != n:
            raise ValueError(f"scores has {len(s)} values but coords has {n} rows")
        fig.add_trace(
            go.Scatter(
                x=coords[show, 0], y=coords[show, 1], mode="markers", name="score", showlegend=False,
                marker=dict(color=s[show], colorscale=theme.SCORE_COLORSCALE, cmin=float(s.min()),
                            cmax=float(s.max()) if s.max() > s.min() else float(s.min()) + 1e-9, size=6,
                            colorbar=dict(title=dict(text="score"), thickness=14, len=0.8)),
                hovertemplate="PC1 %{x:.2f}<br>PC2 %{y:.2f}<br>score %{marker.color:.3f}<extra></extra>",
            ),
            row=1, col=2,
        )
    c = np.stack(list(cents.values()))
    dist = centroid_distance(coords, g) if distance is None else float(distance)
    for j in range(1, cols + 1):
        fig.add_trace(
            go.Scatter(
                x=c[:, 0], y=c[:, 1], mode="lines", line=dict(color="#222222", width=2),
                name=f"{distance_label} {dist:.3f}", legendgroup="centroids", showlegend=(j == 1),
                hoverinfo="skip",
            ),
            row=1, col=j,
        )
        for lab, xy in cents.items():
            fig.add_trace(
                go.Scatter(
                    x=[xy[0]], y=[xy[1]], mode="markers",
                    marker=dict(symbol="x", size=18, color=colors[lab], line=dict(color="#111111", width=2)),
                    name=f"centroid, {names[lab]}", legendgroup=f"c-{lab}", showlegend=(j == 1),
                    hovertemplate=f"centroid of {names[lab]}<br>" + "(%{x:.2f}, %{y:.2f})<extra></extra>",
                ),
                row=1, col=j,
            )
    ev = np.asarray(explained, dtype=np.float64) if explained is not None else None
    for j in range(1, cols + 1):
        fig.update_xaxes(title_text="PC1" + (f" ({ev[0]:.0%} of variance)" if ev is not None else ""), row=1, col=j)
        fig.update_yaxes(title_text="PC2" + (f" ({ev[1]:.0%})" if ev is not None else ""), row=1, col=j)
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=500, meta={"centroid_distance": dist})
    return fig


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
    fig = _new_figure(title=title, height=380, showlegend=False)
    fig.add_trace(
        go.Bar(
            x=names, y=vals, marker=dict(color=[colors[n] for n in names]),
            text=[f"{v:.3f}" for v in vals], textposition="outside",
            hovertemplate="%{x}<br>distance %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="centroid distance", rangemode="tozero")
    return fig


_NOT_LOSSES = frozenset({"epoch", "epochs", "losses", "stage", "step", "steps", "lambda", "grl_lambda",
                         "time", "seconds", "lr", "adv_acc"})


def history_figure(history: Sequence[Mapping[str, Any]], *, title: str | None = "Training progress") -> go.Figure:
    """Per-epoch training curves: loss terms (left) and validation PCC and SPDD (right).

    ``history`` is a list of dicts with ``epoch`` and any of: ``losses`` (dict of loss terms) or
    loss keys at top level (``loss``, ``mse``, ``wasserstein``, ``adversary``, ...), ``val_pcc``,
    ``val_spdd``. Unknown/missing keys are skipped; an empty history gives empty axes.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Loss terms (train)", "Validation PCC and SPDD"))
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    loss_rows: list[dict[str, float]] = []
    for h in history:
        terms = dict(h.get("losses") or {})
        for k, v in h.items():
            if k not in _NOT_LOSSES and not k.startswith("val_") \
                    and isinstance(v, (int, float)) and not isinstance(v, bool):
                terms.setdefault(k, v)
        loss_rows.append(terms)
    keys = sorted({k for r in loss_rows for k in r})
    for i, k in enumerate(keys):
        fig.add_trace(
            go.Scatter(x=epochs, y=[r.get(k, np.nan) for r in loss_rows], mode="lines+markers", name=k,
                       line=dict(color=theme.OKABE_ITO[(i + 2) % len(theme.OKABE_ITO)], width=2)),
            row=1, col=1,
        )
    for key, label, color in (("val_pcc", "val PCC", theme.METHOD_COLORS["ours"]),
                              ("val_spdd", "val SPDD", theme.GROUP_PALETTE[0])):
        ys = [h.get(key, np.nan) for h in history]
        if any(v is not None and np.isfinite(v) for v in ys):
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=label,
                                     line=dict(color=color, width=2.5)), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=360)
    return fig
