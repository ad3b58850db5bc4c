"""Figures and their helpers (`fairviz.figures`, `fairviz.theme`), without Streamlit.

Figures are checked through their JSON (what the browser receives): traces, shaded areas,
values. Helpers are checked against brute force.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from fairviz import figures as F
from fairviz import theme
from fairviz.metrics import dp_curve, spdd
from tests._plotly_json import figure_json


def _data(rng, n=2000, shift=0.12):
    g = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.45 + shift * g, 0.15), 0, 1)
    return s, g


def _fig_json(fig) -> dict:
    return figure_json(fig)


def _rates_brute(s, g, tau):
    return {k: float(np.mean(s[g == k] > tau)) for k in np.unique(g)}


# --------------------------------------------------------------------------- theme


def test_template_registered_and_used():
    assert theme.TEMPLATE_NAME in pio.templates
    fig = F.dp_overlay_figure({"a": dp_curve([0.1, 0.9, 0.4], [0, 1, 1])})
    layout = _fig_json(fig)["layout"]
    assert layout["template"]["layout"]["colorway"][:2] == list(theme.OKABE_ITO[:2])


def test_group_colors_fixed_by_sorted_position():
    assert theme.group_colors([1, 0]) == theme.group_colors([0, 1]) == {0: theme.OKABE_ITO[0], 1: theme.OKABE_ITO[1]}
    assert theme.group_colors(["M", "F"])["F"] == theme.OKABE_ITO[0]
    k = len(theme.GROUP_PALETTE)
    many = theme.group_colors(range(k + 1))
    assert len(set(many[i] for i in range(k))) == k and many[k] == many[0]  # distinct, then cycles
    assert theme.with_alpha("#0072B2", 0.5) == "rgba(0, 114, 178, 0.5)"
    with pytest.raises(ValueError):
        theme.with_alpha("blue", 0.5)
    assert theme.series_colors(["x", "y"], ["ours", "vanilla"]) == {"x": theme.METHOD_COLORS["ours"], "y": theme.METHOD_COLORS["vanilla"]}
    # two runs of one method: distinct colours by position
    c = theme.series_colors(["x", "y"], ["ours", "ours"])
    assert c["x"] != c["y"]


# --------------------------------------------------------------------------- helpers


def test_ecdf_points_exact_with_ties():
    s = np.array([0.2, 0.2, 0.5, 0.7, 0.7, 0.7])
    x, y = F.ecdf_points(s)
    assert x.tolist() == [0.0, 0.2, 0.5, 0.7, 1.0]
    assert y.tolist() == pytest.approx([0, 2 / 6, 3 / 6, 1.0, 1.0])


def test_ecdf_points_downsampled_values_are_exact(rng):
    s = rng.random(1_000_000)
    x, y = F.ecdf_points(s, max_points=2000)
    assert len(x) <= 2002
    srt = np.sort(s)
    assert np.allclose(y[1:-1], np.searchsorted(srt, x[1:-1], side="right") / len(s))
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
    # the largest vertical step between drawn points is about 1/max_points
    assert np.max(np.diff(y[1:-1])) < 2.0 / 2000
    with pytest.raises(ValueError):
        F.ecdf_points([])


def test_step_points_identity_and_area_preserving(rng):
    edges = np.array([0.0, 0.3, 0.5, 1.0])
    x, y = F.step_points(edges, [0.1, 0.4, 0.2])
    assert x.tolist() == edges.tolist() and y.tolist() == [0.1, 0.4, 0.2, 0.2]
    edges = np.unique(np.concatenate([[0.0, 1.0], rng.random(50_000)]))
    vals = rng.random(len(edges) - 1)
    x, y = F.step_points(edges, vals, max_points=500)
    assert len(x) == 501
    assert np.sum(y[:-1] * np.diff(x)) == pytest.approx(np.sum(vals * np.diff(edges)), abs=1e-12)
    with pytest.raises(ValueError, match="len"):
        F.step_points([0, 1], [1, 2])


def test_impact_ratio_violations_match_brute_force(rng):
    s, g = _data(rng, 600, shift=0.1)
    curve = dp_curve(s, g)
    ranges = F.impact_ratio_violations(curve)
    assert ranges, "this data has four-fifths violations"
    for tau in np.linspace(0, 0.999, 700):
        r = _rates_brute(s, g, tau)
        top = max(r.values())
        brute = top > 0 and min(r.values()) / top < 0.8
        inside = any(a <= tau < b for a, b in ranges)
        assert inside == brute, tau
    # ranges are sorted, disjoint and not adjacent (merged)
    for (_a0, b0), (a1, _b1) in zip(ranges, ranges[1:]):
        assert b0 < a1
    assert F.impact_ratio_violations(dp_curve([0.1, 0.2, 0.1, 0.2], [0, 0, 1, 1])) == []


def test_merge_ranges():
    assert F.merge_ranges([(0.5, 0.6), (0.1, 0.2), (0.2005, 0.3)], min_gap=0.001) == [(0.1, 0.3), (0.5, 0.6)]


def test_tau_summary_reads_the_curve(rng):
    s, g = _data(rng, 500)
    curve = dp_curve(s, g)
    for tau in (0.0, 0.31, 0.5, float(s[3]), 1.0):
        info = F.tau_summary(curve, tau)
        brute = _rates_brute(s, g, tau)
        assert info["rates"] == pytest.approx(brute)
        assert info["dp"] == pytest.approx(max(brute.values()) - min(brute.values()))
        if max(brute.values()) > 0:
            assert info["impact_ratios"][0] == pytest.approx(brute[0] / max(brute.values()))
            assert info["four_fifths_ok"] == (min(brute.values()) / max(brute.values()) >= 0.8)
    with pytest.raises(ValueError, match="τ"):
        F.tau_summary(curve, 1.5)


def test_pareto_front_known_and_brute_force(rng):
    pts = [[0.1, 0.4], [0.05, 0.3], [0.2, 0.5], [0.15, 0.35], [0.05, 0.35], [np.nan, 0.9]]
    assert F.pareto_front(pts).tolist() == [4, 0, 2]
    p = rng.random((60, 2))
    front = set(F.pareto_front(p).tolist())
    for i in range(len(p)):
        dominated = any((p[j, 0] <= p[i, 0] and p[j, 1] >= p[i, 1]) and (p[j, 0] < p[i, 0] or p[j, 1] > p[i, 1])
                        for j in range(len(p)))
        assert (i in front) == (not dominated)
    assert F.pareto_front([[0.1, 0.2], [0.2, 0.1]], minimize=(True, True)).tolist() == [0, 1]
    with pytest.raises(ValueError):
        F.pareto_front([1, 2, 3])


def test_pca_2d_matches_sklearn_up_to_sign(rng):
    from sklearn.decomposition import PCA

    z = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    proj = F.pca_2d(z)
    ref = PCA(2).fit(z)
    assert proj.coords.shape == (300, 2)
    assert np.allclose(np.abs(proj.coords), np.abs(ref.transform(z)))
    assert proj.explained == pytest.approx(ref.explained_variance_ratio_)
    perm = rng.permutation(300)
    assert np.allclose(F.pca_2d(z[perm]).coords, proj.coords[perm])  # sign fixed: same picture
    assert np.allclose(F.pca_2d(-z).coords, -proj.coords)  # a mirrored cloud is drawn mirrored
    with pytest.raises(ValueError, match="2-D"):
        F.pca_2d(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        F.pca_2d(np.full((5, 3), np.nan))


def test_centroid_distance(rng):
    z = np.array([[0.0, 0.0], [0.0, 2.0], [3.0, 0.0], [3.0, 2.0]])
    g = np.array([0, 0, 1, 1])
    assert F.centroid_distance(z, g) == pytest.approx(3.0)
    big = rng.normal(size=(200, 4)) + np.array([[1, 0, 0, 0]]) * (np.arange(200) % 2)[:, None]
    gg = np.arange(200) % 2
    assert F.centroid_distance(big * 10, gg, standardize=True) == pytest.approx(F.centroid_distance(big, gg, standardize=True))
    three = F.centroid_distance(np.array([[0.0], [1.0], [5.0]]), [0, 1, 2])
    assert three == pytest.approx(5.0)
    with pytest.raises(ValueError, match="two groups"):
        F.centroid_distance(z, [0, 0, 0, 0])


def test_best_per_column():
    df = pd.DataFrame({"pcc": [0.4, 0.45, np.nan], "spdd": [0.1, 0.02, 0.05]}, index=["a", "b", "c"])
    assert F.best_per_column(df, {"pcc": True, "spdd": False}) == {"pcc": "b", "spdd": "b"}
    with pytest.raises(ValueError, match="no column"):
        F.best_per_column(df, {"srcc": True})


# --------------------------------------------------------------------------- figures


def test_score_distribution_figure_binned_and_downsampled(rng):
    n = 1_000_000
    g = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.45 + 0.1 * g, 0.15), 0, 1)
    t0 = time.perf_counter()
    fig = F.score_distribution_figure(s, g, bins=40, max_points=2000)
    elapsed = time.perf_counter() - t0
    data = _fig_json(fig)["data"]
    bars = [t for t in data if t["type"] == "bar"]
    lines = [t for t in data if t["type"] == "scatter"]
    assert len(bars) == 2 and len(lines) == 2
    for b in bars:
        assert len(b["x"]) == 40
        assert np.sum(b["y"]) * (1 / 40) == pytest.approx(1.0)  # densities integrate to 1
    for ln in lines:
        assert len(ln["x"]) <= 2002 and ln["line"]["shape"] == "hv"
    assert bars[0]["marker"]["line"]["color"] == theme.group_colors([0, 1])[0]
    assert "n=" in bars[0]["name"]
    assert elapsed < 5.0
    assert len(fig.to_json()) < 400_000  # what goes to the browser stays small


def test_score_distribution_figure_with_reference(rng):
    s, g = _data(rng, 300)
    fig = F.score_distribution_figure(s * 0.5, g, reference_scores=s, reference_name="before")
    names = [t.name for t in fig.data]
    assert any("before" in n for n in names)
    dotted = [t for t in fig.data if t.type == "scatter" and t.line.dash == "dot"]
    assert len(dotted) == 2


def test_dp_curve_figure_shades_spdd_and_violations(rng):
    s, g = _data(rng, 3000)
    curve = dp_curve(s, g)
    fig = F.dp_curve_figure(curve)
    js = _fig_json(fig)
    dp = [t for t in js["data"] if t.get("fill") == "tozeroy"]
    assert len(dp) == 1
    x, y = np.array(dp[0]["x"]), np.array(dp[0]["y"])
    assert np.sum(y[:-1] * np.diff(x)) == pytest.approx(spdd(s, g), abs=1e-9)  # shaded area = SPDD
    assert f"{spdd(s, g):.3f}" in dp[0]["name"]
    assert js["layout"]["meta"]["spdd"] == pytest.approx(spdd(s, g))
    assert any("SPDD" in a["text"] for a in js["layout"]["annotations"])
    shapes = [sh for sh in js["layout"].get("shapes", []) if sh.get("name") == "impact ratio < 0.8"]
    expected = F.merge_ranges(F.impact_ratio_violations(curve), 1 / 2000)
    assert len(shapes) == len(expected) >= 1
    assert np.allclose([(sh["x0"], sh["x1"]) for sh in shapes], expected)
    rate_traces = [t for t in js["data"] if t["name"].startswith("selection rate")]
    assert len(rate_traces) == 2
    # no violations drawn when asked not to
    assert not [sh for sh in _fig_json(F.dp_curve_figure(curve, violations=False))["layout"].get("shapes", [])]


def test_dp_curve_figure_downsamples_large_curves(rng):
    s, g = _data(rng, 200_000)
    curve = dp_curve(s, g)
    fig = F.dp_curve_figure(curve, max_points=1500)
    for t in fig.data:
        assert len(t.x) <= 1501
    area = next(t for t in fig.data if t.fill == "tozeroy")
    assert np.sum(np.array(area.y[:-1]) * np.diff(area.x)) == pytest.approx(spdd(s, g), abs=1e-9)


def test_tau_marker_shows_rates_and_gap(rng):
    s, g = _data(rng, 800)
    curve = dp_curve(s, g)
    fig = F.dp_curve_figure(curve, tau=0.5)
    js = _fig_json(fig)
    brute = _rates_brute(s, g, 0.5)
    markers = [t for t in js["data"] if t.get("mode") == "markers"]
    assert sorted(m["y"][0] for m in markers) == pytest.approx(sorted(brute.values()))
    assert all(m["x"] == [0.5] for m in markers)
    gap = next(t for t in js["data"] if t["name"].startswith("gap at τ"))
    assert gap["y"] == pytest.approx([min(brute.values()), max(brute.values())])
    assert f"{max(brute.values()) - min(brute.values()):.3f}" in gap["name"]
    assert any(sh.get("type") == "line" and sh.get("x0") == 0.5 for sh in js["layout"]["shapes"])
    # the marker can be added to a cached base figure, cheaply
    base = F.dp_curve_figure(curve)
    t0 = time.perf_counter()
    F.add_tau_marker(base, curve, 0.3)
    assert time.perf_counter() - t0 < 0.5


def test_dp_overlay_figure(rng):
    s, g = _data(rng, 500)
    curves = {"vanilla-run": dp_curve(s, g), "ours-run": dp_curve(np.clip(s * 0.8 + 0.1 * (1 - g) * 0.5, 0, 1), g)}
    fig = F.dp_overlay_figure(curves, methods={"vanilla-run": "vanilla", "ours-run": "ours"})
    assert [t.name.split(" ")[0] for t in fig.data] == ["vanilla-run", "ours-run"]
    assert fig.data[1].line.color == theme.METHOD_COLORS["ours"]
    assert f"{spdd(s, g):.3f}" in fig.data[0].name
    with pytest.raises(ValueError):
        F.dp_overlay_figure({})


def test_pca_figure_centroids_and_subsampling(rng):
    z = rng.normal(size=(5000, 2))
    g = np.arange(5000) % 2
    z[g == 1] += 2.0
    s = rng.random(5000)
    fig = F.pca_figure(z, g, scores=s, explained=[0.6, 0.3], max_points=1000)
    js = _fig_json(fig)
    cents = [t for t in js["data"] if t["name"].startswith("centroid,") and t.get("xaxis", "x") == "x"]
    assert len(cents) == 2  # in the left panel (the right panel repeats them)
    c1 = next(t for t in cents if t["name"].endswith("group 1"))
    assert c1["x"][0] == pytest.approx(z[g == 1, 0].mean()) and c1["y"][0] == pytest.approx(z[g == 1, 1].mean())
    pts = [t for t in js["data"] if t.get("mode") == "markers" and not t["name"].startswith("centroid")]
    assert sum(len(t["x"]) for t in pts if t["name"] != "score") == 1000
    assert js["layout"]["meta"]["centroid_distance"] == pytest.approx(F.centroid_distance(z, g))
    assert "60%" in js["layout"]["xaxis"]["title"]["text"]


def test_centroid_distance_history_and_grid_figures(rng):
    fig = F.centroid_distance_figure({"vanilla": 0.8, "ours": 0.2}, methods={"vanilla": "vanilla", "ours": "ours"})
    assert list(fig.data[0].y) == [0.8, 0.2] and list(fig.data[0].text) == ["0.800", "0.200"]
    hist = [{"epoch": e, "loss": 1 / e, "mse": 0.5 / e, "w1": 0.1, "val_pcc": 0.3 + e / 100, "val_spdd": 0.1,
             "val_mse": 0.02, "seconds": 1.0, "grl_lambda": 0.5, "adv_acc": 0.6} for e in range(1, 4)]
    fig = F.history_figure(hist)
    names = {t.name for t in fig.data}
    assert names == {"loss", "mse", "w1", "val PCC", "val SPDD"}
    assert len(F.history_figure([]).data) == 0
    s, g = _data(rng, 400)
    grid = F.distribution_grid_figure({"a": (s, g), "b": (s, g), "c": (s, g), "d": (s, g)}, cols=3)
    assert len(grid.data) == 8
    assert sum(t.showlegend is not False for t in grid.data) == 2  # one legend entry per group
    assert [a.text for a in grid.layout.annotations][:4] == ["a", "b", "c", "d"]


def test_many_groups_outlines_and_short_legend(rng):
    n = 4000
    g = rng.choice(list("ABCDEF"), n)
    s = rng.random(n)
    fig = F.score_distribution_figure(s, g)
    hist = [t for t in fig.data if t.xaxis in (None, "x")]
    assert len(hist) == 6 and all(t.type == "scatter" and t.line.shape == "hv" for t in hist)
    for t in hist:  # outlines still integrate to 1
        assert np.sum(np.array(t.y[:-1]) * np.diff(t.x)) == pytest.approx(1.0)
    dp = F.dp_curve_figure(dp_curve(s, g), tau=0.5)
    in_legend = [t.name for t in dp.data if t.showlegend is not False]
    assert len(in_legend) <= 3  # DP(τ) and the gap; groups are in the hover text and the tables


def test_score_range_and_auto_axes(rng):
    assert F.score_range(0.43, 0.58) == (0.35, 0.65)
    assert F.score_range(0.0, 1.0) == (0.0, 1.0)
    a, b = F.score_range(0.5, 0.5)
    assert b - a >= 0.2 - 1e-9 and a <= 0.5 <= b
    assert F.score_range(float("nan"), 1) == (0.0, 1.0)
    g = rng.integers(0, 2, 2000)
    s = 0.45 + 0.1 * rng.random(2000)
    fig = F.score_distribution_figure(s, g)
    assert list(fig.layout.xaxis.range) == [0.4, 0.6]
    for t in fig.data:
        if t.type == "bar":
            assert np.sum(t.y) * t.width == pytest.approx(1.0)
    assert list(F.score_distribution_figure(s, g, x_range="full").layout.xaxis.range) == [0, 1]
    curve = dp_curve(s, g)
    dp = F.dp_curve_figure(curve)
    assert list(dp.layout.xaxis.range) == [0.4, 0.6]
    F.add_tau_marker(dp, curve, 0.9)  # outside the drawn range: the axis grows to show it
    assert dp.layout.xaxis.range[1] >= 0.9
