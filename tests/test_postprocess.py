"""Post-processing as a method family (`fairviz.postprocess`): fitted on validation rows only,
stored as JSON in the run folder, reloaded exactly; clear messages for bad strengths and runs
without a validation split; adaptive sweep points (`fairviz.pipelines.refine_points`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fairviz import postprocess as pp
from fairviz.repair import RepairMap


def make_predictions(seed=0, n_val=300, n_test=500, test_shift=0.0):
    """Scores where group 1 sits higher; the test rows can be shifted away from the validation rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, n, shift in (("val", n_val, 0.0), ("test", n_test, test_shift)):
        g = rng.integers(0, 2, n)
        y = np.clip(rng.normal(0.5, 0.15, n), 0, 1)
        s = np.clip(0.3 * y + 0.35 + 0.15 * g + shift + rng.normal(0, 0.05, n), 0, 1)
        rows.append(pd.DataFrame({"score": s, "label": y, "group": g, "split": split}))
    return pd.concat(rows, ignore_index=True)


def test_repair_is_fitted_on_validation_rows_only():
    preds = make_predictions()
    rmap = pp.fit_validation_repair(preds)
    assert rmap.n_fit_ == int((preds["split"] == "val").sum())
    # any change to the test rows leaves the fitted map untouched ...
    leaked = preds.copy()
    test = leaked["split"] == "test"
    leaked.loc[test, "score"] = np.random.default_rng(5).uniform(0, 1, int(test.sum()))
    leaked.loc[test, "group"] = 1
    assert pp.fit_validation_repair(leaked).to_dict() == rmap.to_dict()
    # ... while it is exactly the map of the validation rows alone
    val = preds[preds["split"] == "val"]
    alone = RepairMap(n_quantiles=None).fit(val["score"].to_numpy(), val["group"].to_numpy())
    assert alone.to_dict() == rmap.to_dict()
    # and the test metrics come from it: a map fitted on test rows would give other repaired scores
    on_test = RepairMap(n_quantiles=None).fit(preds.loc[test, "score"], preds.loc[test, "group"])
    got = pp.repaired_test(preds, rmap, 1.0)["score"].to_numpy()
    assert np.array_equal(got, rmap.transform(preds.loc[test, "score"], preds.loc[test, "group"], 1.0))
    assert not np.allclose(got, on_test.transform(preds.loc[test, "score"], preds.loc[test, "group"], 1.0))


def test_repair_curve_metrics_match_independent_references():
    preds = make_predictions(seed=1)
    curve = pp.repair_curve(preds, [0.0, 0.5, 1.0], n_perm=50)
    test = preds[preds["split"] == "test"]
    rmap = pp.fit_validation_repair(preds)
    for _, row in curve.iterrows():
        s = rmap.transform(test["score"].to_numpy(), test["group"].to_numpy(), row["theta"])
        g = test["group"].to_numpy()
        assert row["pcc"] == pytest.approx(stats.pearsonr(s, test["label"])[0], abs=1e-12)
        assert row["srcc"] == pytest.approx(stats.spearmanr(s, test["label"])[0], abs=1e-12)
        assert row["spdd"] == pytest.approx(stats.wasserstein_distance(s[g == 0], s[g == 1]), abs=1e-12)
        assert row["score_std"] == pytest.approx(np.std(s))
    # theta = 0 is the run as trained; full repair removes most of the (held-out) gap
    assert curve["spdd"].iloc[0] > 0.1 and curve["spdd"].iloc[-1] < 0.3 * curve["spdd"].iloc[0]


def test_permutation_floor_matches_brute_force():
    rng = np.random.default_rng(3)
    s, g = rng.uniform(size=200), rng.integers(0, 2, 200)
    floor = pp.permutation_floor(s, g, n_perm=40, seed=7)
    r = np.random.default_rng(7)
    vals = []
    for _ in range(40):
        p = r.permutation(g)
        vals.append(stats.wasserstein_distance(s[p == 0], s[p == 1]))
    assert floor["mean"] == pytest.approx(np.mean(vals), abs=1e-12)
    assert floor["p95"] == pytest.approx(np.quantile(vals, 0.95), abs=1e-12)


@pytest.mark.parametrize("theta", [-0.1, 1.5, float("nan"), "1", True])
def test_strength_outside_0_1_is_refused_clearly(theta):
    preds = make_predictions()
    with pytest.raises(ValueError, match=r"strength must be .*\[0, 1\]"):
        pp.repaired_test(preds, pp.fit_validation_repair(preds), theta)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pp.repair_curve(preds, [0.0, theta])


def test_run_without_validation_split_gets_a_clear_message(tmp_path):
    preds = make_predictions()
    test_only = preds[preds["split"] == "test"]
    with pytest.raises(ValueError, match="no validation rows.*retrain"):
        pp.fit_validation_repair(test_only, run="run 'old'")
    with pytest.raises(ValueError, match="no validation rows"):
        pp.repair_curve(test_only)
    one_group = preds[(preds["split"] == "test") | (preds["group"] == 0)]
    with pytest.raises(ValueError, match="one group only"):
        pp.fit_validation_repair(one_group)
    # writing the repair of such a run stores nothing (and raises nothing)
    assert pp.write_repair(tmp_path, test_only) is None and not (tmp_path / pp.REPAIR_FILE).exists()


def test_stored_repair_reloads_exactly_and_older_runs_are_refitted(tmp_path):
    preds = make_predictions(seed=2)
    path = pp.write_repair(tmp_path, preds)
    state = json.loads(path.read_text())
    assert state["fitted_on"] == "val" and state["n_fit"] == 300
    loaded = pp.load_repair(tmp_path, preds)
    fresh = pp.fit_validation_repair(preds)
    test = preds[preds["split"] == "test"]
    for theta in (0.3, 1.0):
        a = loaded.transform(test["score"], test["group"], theta)
        assert np.array_equal(a, fresh.transform(test["score"], test["group"], theta))
    # the file is what is used: a run folder without it is refitted from its validation rows
    path.unlink()
    assert pp.load_repair(tmp_path, preds).to_dict() == fresh.to_dict()
    (tmp_path / pp.REPAIR_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        pp.load_repair(tmp_path, preds)
    (tmp_path / pp.REPAIR_FILE).write_text(json.dumps({**state, "fitted_on": "test"}))
    with pytest.raises(ValueError, match="not fitted on the validation split"):
        pp.load_repair(tmp_path, preds)
    hostile = json.loads(json.dumps(state))
    hostile["map"]["groups"][0]["n"] = 1e400
    (tmp_path / pp.REPAIR_FILE).write_text(json.dumps(hostile).replace("Infinity", "1e400"))
    with pytest.raises(ValueError, match="malformed map"):
        pp.load_repair(tmp_path, preds)
    (tmp_path / pp.REPAIR_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not valid JSON"):
        pp.load_repair(tmp_path, preds)


def test_save_run_stores_the_validation_repair(tmp_path):
    """A saved run folder holds repair.json, equal to a fit on the validation rows of its CSV."""
    from fairviz.paths import REPO_ROOT
    from fairviz.runs import load_run, read_predictions, save_run

    run = load_run(REPO_ROOT / "models" / "a4-mmd")
    out = save_run(run, tmp_path / "copy")
    preds = read_predictions(out)
    stored = json.loads((out / pp.REPAIR_FILE).read_text())
    assert RepairMap.from_dict(stored["map"]).to_dict() == pp.fit_validation_repair(preds).to_dict()
    assert load_run(out).metrics == run.metrics  # the extra file does not disturb loading


def test_refine_points_splits_only_where_the_curve_jumps():
    from fairviz.pipelines import refine_points

    table = pd.DataFrame({
        "weight": [0.0, 0.1, 0.3, 1.0, 3.0],
        "pcc": [0.62, 0.64, 0.63, 0.53, 0.32],
        "spdd": [0.087, 0.034, 0.016, 0.000, 0.000],
        "score_std": [0.116, 0.089, 0.053, 0.000, 0.001],
    })
    new = refine_points(table)
    # every gap with a jump gets a point inside it, the biggest jump first; none elsewhere
    assert new[0] == pytest.approx(np.sqrt(3.0), rel=1e-2)  # 1 -> 3: PCC falls by 0.21
    assert set(np.round(new, 3)) == {0.033, 0.173, 0.548, 1.73}
    flat = table.assign(pcc=0.6, spdd=0.01, score_std=0.1)
    assert refine_points(flat) == []
    close = pd.DataFrame({"weight": [0.5, 0.55], "pcc": [0.6, 0.1], "spdd": [0.0, 0.0], "score_std": [0.1, 0.0]})
    assert refine_points(close) == []  # as sharp as the knob resolves


def test_ship_models_sweeps_densely_and_refines_where_the_curve_jumps(monkeypatch, tmp_path):
    """`fairviz ship-models` trains the dense sweep, then adaptive runs inside the collapse gap
    (training and features faked: only the choice of runs is checked)."""
    import fairviz.train as T
    from fairviz.cli import main, ship
    from tests._app_runs import make_fake_run

    trained = []

    def fake_train_save(cfg, features, out, tag, args):
        trained.append(cfg.name)
        if not cfg.name.startswith("sweep-"):
            return []
        collapsed = cfg.lambda_w >= 0.6  # a cliff between 0.5 and 0.7
        run = make_fake_run("ours", cfg.lambda_w, 0.0 if collapsed else 0.05, 0.2 if collapsed else 0.6)
        run.config = cfg
        if collapsed:
            run.predictions["score"] = 0.5 + 1e-4 * run.predictions["label"]
        return [run]

    monkeypatch.setattr(T, "load_features", lambda cfg, progress=None: None)
    monkeypatch.setattr(ship, "_train_save", fake_train_save)
    assert main(["ship-models", "--out", str(tmp_path), "--no-progress"]) == 0
    dense = [f"sweep-a4-lw{v:g}" for v in ship.SWEEP_LAMBDA_WS]
    knob = [f"fsweep-a4-lsw{v:g}" for v in ship.FAIROFFSET_LAMBDA_SWS]
    methods = ("vanilla", "balancing", "adversarial", "l2", "mmd", "ours", "fairoffset")
    assert trained[:7] == [f"a4-{m}" for m in methods]
    assert trained[7:7 + len(dense) + len(knob)] == dense + knob
    extra = [float(n.split("lw")[1]) for n in trained[7 + len(dense) + len(knob):]]
    assert 0 < len(extra) <= ship.ADAPTIVE_RUNS and any(0.5 < v < 0.7 for v in extra)


def test_cli_refuses_bad_repair_strengths_before_training(capsys):
    from fairviz.cli import main

    assert main(["sweep", "--lambda-w", "0", "1", "--repair-thetas", "0", "2"]) == 2
    assert "--repair-thetas must be in [0, 1]" in capsys.readouterr().err
    assert main(["compare", "--seeds", "0", "--repair-strength", "-0.5"]) == 2
    assert "--repair-strength must be in [0, 1]" in capsys.readouterr().err
    assert main(["sweep", "--lambda-w", "0", "--adaptive", "-1"]) == 2
    assert "--adaptive must be >= 0" in capsys.readouterr().err
