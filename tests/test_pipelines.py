"""Which pipeline wins (`fairviz.pipelines`) and its figure (`fairviz.pipeline_figure`): the front
over every method, weight and repair strength, spread flags, the best pipeline for an accepted SPDD."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from fairviz import pipelines as P
from fairviz import postprocess
from fairviz.app_support import runs_frame
from fairviz.metrics import spdd
from fairviz.pipeline_figure import pipeline_figure


@dataclass
class Info:
    name: str
    method: str
    lambda_w: float = 0.3
    seed: int = 0
    alpha: float = 4.0
    bias_mode: str = "label"
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)


def _preds(seed, gap, acc=0.6, spread=1.0, n=800):
    rng = np.random.default_rng(seed)
    g = np.arange(n) % 2
    y = np.clip(rng.normal(0.5, 0.15, n), 0, 1)
    s = np.clip(0.5 + spread * (acc * (y - 0.5) + gap * (g - 0.5) + rng.normal(0, 0.05, n)), 0, 1)
    return pd.DataFrame({"score": s, "label": y, "group": g, "split": np.where(np.arange(n) < 300, "val", "test")})


def _info(name, method, preds, **kw):
    test = preds[preds["split"] == "test"]
    m = postprocess.pipeline_metrics(test["score"], test["label"], test["group"], n_perm=20)
    metrics = {k: {"value": m[k]} for k in ("pcc", "srcc", "spdd")}
    metrics["score_std"] = m["score_std"]
    metrics["spdd_floor"] = {"mean": m["spdd_floor"], "p95": m["spdd_floor_p95"]}
    return Info(name, method, metrics=metrics, **kw)


@pytest.fixture(scope="module")
def world():
    preds = {
        "van": _preds(0, 0.2),
        "mmd": _preds(1, 0.05, acc=0.7),
        "ours-0.3": _preds(2, 0.02, spread=0.6),
        "ours-1": _preds(3, 0.0, spread=0.02),  # collapsed: near-constant scores
    }
    infos = [_info("van", "vanilla", preds["van"]), _info("mmd", "mmd", preds["mmd"], config={"lambda_mmd": 0.15}),
             _info("ours-0.3", "ours", preds["ours-0.3"], lambda_w=0.3),
             _info("ours-1", "ours", preds["ours-1"], lambda_w=1.0)]
    pts = P.pipeline_points(infos, preds, repaired=["van", "mmd"], thetas=[0, 0.5, 1], n_perm=20)
    return infos, preds, P.flag_spread(P.mark_front(pts))


def test_points_cover_every_run_and_every_repair_strength(world):
    infos, preds, pts = world
    assert len(pts) == 4 + 2 * 2 and pts["key"].is_unique  # theta 0 is the run itself
    trained = pts[pts["family"] == "trained"].set_index("name")
    assert trained.loc["mmd", "value"] == 0.15 and trained.loc["ours-1", "value"] == 1.0
    assert math.isnan(trained.loc["van", "value"])
    rep = pts[pts["key"] == "mmd@1"].iloc[0]
    assert rep["pipeline"] == "mmd + repair" and rep["knob"] == "theta"
    # the repaired point is the validation-fitted repair of the test rows
    t = postprocess.repaired_test(preds["mmd"], postprocess.fit_validation_repair(preds["mmd"]), 1.0)
    assert rep["spdd"] == pytest.approx(spdd(t["score"], t["group"]))


def test_front_is_exactly_the_non_dominated_points(world):
    _, _, pts = world
    xy = pts[["spdd", "pcc"]].to_numpy()
    for i, j in itertools.product(range(len(pts)), repeat=2):
        dominated = xy[j, 0] <= xy[i, 0] and xy[j, 1] >= xy[i, 1] and (xy[j] != xy[i]).any()
        if dominated:
            assert not pts["on_front"].iloc[i]
    for i in np.flatnonzero(pts["on_front"]):  # brute force: nothing dominates a front point
        assert not any(xy[j, 0] <= xy[i, 0] and xy[j, 1] >= xy[i, 1] and (xy[j] != xy[i]).any() for j in range(len(pts)))


def test_spread_flags_and_best_pipeline_skip_collapsed_runs(world):
    _, _, pts = world
    flags = pts.set_index("key")
    assert flags.loc["van", "spread_ratio"] == pytest.approx(1.0)
    assert flags.loc["ours-1", "collapsed"] and flags.loc["ours-1", "narrow"]
    assert not flags.loc["mmd", "narrow"]
    # the collapsed run has the smallest SPDD of all, yet is never named best while spread is kept
    assert pts["spdd"].idxmin() == pts.index[pts["key"] == "ours-1"][0]
    eps = float(flags.loc["ours-1", "spdd"]) + 1e-9
    raw = P.best_pipeline(pts, eps, keep_spread=False)
    assert raw["key"] == "ours-1"
    assert P.best_pipeline(pts, eps) is None
    best = P.best_pipeline(pts, 1.0)
    ok = pts[~pts["narrow"]]
    assert best["key"] == ok.loc[ok["pcc"].idxmax(), "key"]
    for bad in (-0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match="accepted SPDD"):
            P.best_pipeline(pts, bad)


def test_run_without_validation_rows_cannot_be_repaired(world):
    infos, preds, _ = world
    no_val = {**preds, "van": preds["van"][preds["van"]["split"] == "test"]}
    with pytest.raises(ValueError, match="run 'van' has no validation rows"):
        P.pipeline_points(infos, no_val, repaired=["van"])
    frame = runs_frame(infos)
    rows, skipped = P.repaired_rows(frame, no_val, 1.0, n_perm=5)
    assert [s[0] for s in skipped] == ["van"] and "no validation rows" in skipped[0][1]
    assert set(rows["method"]) == {"mmd + repair", "ours + repair"}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        P.repaired_rows(frame, preds, 1.2)


def test_pipeline_figure_draws_front_curves_best_and_collapse(world):
    _, _, pts = world
    best = P.best_pipeline(pts, 0.05)
    fig = pipeline_figure(pts, best_key=best["key"], selected="ours-0.3", max_spdd=0.05)
    names = [t.name for t in fig.data]
    assert "Pareto front (all pipelines)" in names
    assert {"vanilla", "mmd", "ours", "vanilla + repair (θ 0→1)", "mmd + repair (θ 0→1)"} <= set(names)
    front = [t for t in fig.data if t.name.startswith("Pareto")][0]
    expect = pts[pts["on_front"]].sort_values("spdd")
    assert list(front.x) == pytest.approx(expect["spdd"].tolist())
    assert any(n.startswith("best: ") for n in names)
    assert "collapsed (near-constant scores)" in names
    ours = [t for t in fig.data if t.name == "ours"][0]
    assert any("collapsed" in h for h in ours.hovertext) and all("score spread" in h for h in ours.hovertext)
    # a repair curve starts at its run as trained
    rep = [t for t in fig.data if t.name == "mmd + repair (θ 0→1)"][0]
    assert list(rep.customdata) == ["mmd"] * 3
    assert rep.x[0] == pytest.approx(pts.set_index("key").loc["mmd", "spdd"])
    assert "left is fairer" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError):
        pipeline_figure(pts.iloc[:0])


def test_unresolved_jumps_names_the_gaps_of_each_methods_curve(world):
    _, _, pts = world
    jumps = P.unresolved_jumps(pts)
    assert set(jumps) == {"ours"}  # ours jumps (0.3 -> 1 collapses); the others have one weight each
    assert all(0.3 < v < 1.0 for v in jumps["ours"])
    smooth = pts[pts["key"] != "ours-1"]
    assert P.unresolved_jumps(smooth) == {}
