"""fairviz.app_services: what the pages compute, checked against independent references."""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from fairviz import methods, metrics
from fairviz.app_services import audit_view, budget, compare, latent, tradeoff, upload
from fairviz.app_support import runs_frame
from fairviz.figures import tau_summary
from fairviz.repair import RepairMap
from fairviz.report import auto_n_perm
from fairviz.runs import load_run, save_run
from fairviz.significance import permutation_test
from tests._app_runs import make_fake_run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    run = make_fake_run("ours", 1.0, 0.05, 0.6, n_test=120, n_val=40)
    run.history[1]["adv_acc"] = 0.7
    run.history[2]["adv_acc"] = 0.55
    return save_run(run, tmp_path_factory.mktemp("runs") / run.name)


# ------------------------------------------------------------------------------- latent code


def test_read_latent_matches_the_full_loader(run_folder):
    full = load_run(run_folder)
    lat = latent.read_latent(run_folder)
    test = full.test_predictions()
    assert lat.z.dtype == np.float32 and np.array_equal(lat.z, full.z)
    assert np.array_equal(lat.groups, test["group"].to_numpy())
    assert np.array_equal(lat.scores, test["score"].to_numpy())
    assert lat.history == full.history and lat.info == full.info
    assert latent.adversary_range(lat.history) == (0.55, 0.7)
    assert latent.adversary_range([{"loss": 1.0}]) is None


def test_read_latent_refuses_a_z_of_the_wrong_shape(run_folder, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run_folder, bad)
    save_file({"z": np.zeros((3, 4), dtype=np.float32)}, str(bad / "z.safetensors"))
    with pytest.raises(ValueError, match="Z has shape"):
        latent.read_latent(bad)
    save_file({"z": np.zeros((3, 4), dtype=np.float32), "w": np.zeros(2, dtype=np.float32)},
              str(bad / "z.safetensors"))
    with pytest.raises(ValueError, match="one tensor 'z'"):
        latent.read_latent(bad)
    (bad / "history.json").write_text('{"not": "a list"}')
    save_file({"z": latent.read_latent(run_folder).z}, str(bad / "z.safetensors"))
    with pytest.raises(ValueError, match="must be a list"):
        latent.read_latent(bad)


def test_separation_note_only_when_ours_separates_more_than_vanilla():
    methods_of = {"v": "vanilla", "o": "ours", "a": "adversarial"}
    assert latent.separation_note({"v": 0.5, "o": 0.3, "a": 0.4}, methods_of, lambda n: None) is None
    assert latent.separation_note({"o": 0.9}, {"o": "ours"}, lambda n: None) is None  # no vanilla to compare
    text = latent.separation_note({"v": 0.5, "o": 0.8, "a": 0.6}, methods_of, lambda n: (0.41, 0.93))
    assert "(0.800 vs 0.500)" in text and "between 0.41 and 0.93" in text and "also gives 0.600" in text


# ---------------------------------------------------------------------------- budgets


def test_interval_plan_follows_the_budget_and_the_request():
    small = budget.interval_plan(1000, True)
    assert small == budget.IntervalPlan(n_boot=budget.auto_n_boot(1000, True)) and small.n_boot == 1000
    n = 100_000_000  # ~0.2 s per resample with labels (little bootstraps): no automatic intervals
    assert budget.auto_n_boot(n, True) == 0
    offer = budget.interval_plan(n, True)
    assert offer.n_boot == 0 and offer.offer == 200
    assert offer.offer_seconds == pytest.approx(budget.BOOT_COST_PER_ROW[True] * budget.rows_per_resample(n) * 200)
    assert budget.interval_plan(n, True, requested=True).n_boot == 200
    stored = budget.interval_plan(n, True, stored_n_boot=50)
    assert stored.stored and stored.n_boot == 50 and stored.offer == 0
    assert budget.interval_plan(10, True, stored_n_boot=0) == budget.IntervalPlan(n_boot=0, stored=True)


def test_report_and_permutation_budgets():
    for n, labels in [(100, True), (200_000, True), (2_000_000, False), (50_000_000, True)]:
        k = budget.report_n_boot(n, labels)
        per = budget.BOOT_COST_PER_ROW[labels] * budget.rows_per_resample(n)
        assert k <= 200 and (k == 0 or (k % 50 == 0 and k * per <= 15.0 + 1e-9)), (n, labels, k)
    assert budget.report_n_boot(100, True) == 200
    for n, k in [(1000, 2), (1_500_000, 2), (3_000_000, 2), (10_000, 5)]:
        assert budget.permutation_count(n, k) == auto_n_perm(n, k, budget=1.5e8, low=20)
    assert budget.permutation_count(1000, 2) == 1000
    assert budget.permutation_count(10**9, 2) == 20


# ------------------------------------------------------------------------------ audit view


def test_rate_table_at_matches_counting_the_scores():
    rng = np.random.default_rng(3)
    x = rng.random(500)
    g = np.where(rng.random(500) < 0.3, "F", "M")
    tau = 0.6
    curve = metrics.dp_curve(x, g)
    rates = tau_summary(curve, tau)["rates"]
    table = audit_view.rate_table_at({"F": int((g == "F").sum()), "M": int((g == "M").sum())}, rates)
    by_hand = {k: float((x[g == k] > tau).mean()) for k in ("F", "M")}
    best = max(by_hand.values())
    got = dict(zip(table["group"], table["impact ratio"]))
    for k in by_hand:
        assert got[k] == pytest.approx(by_hand[k] / best)
    assert dict(zip(table["group"], table["selection rate"])) == pytest.approx(by_hand)
    fails = audit_view.below_four_fifths(table)
    assert [k for k, _ in fails] == [k for k in by_hand if by_hand[k] / best < 0.8]


def test_below_four_fifths_and_the_flag_column():
    table = pd.DataFrame({"group": ["a", "b", "c"], "impact ratio": [1.0, 0.8, 0.79]})
    assert audit_view.below_four_fifths(table) == [("c", 0.79)]  # exactly 0.8 passes
    assert audit_view.UNDER_FOUR_FIFTHS == "under four-fifths (< 0.8)"


def test_permutation_caption_bounds_the_p_value_when_no_shuffle_reaches_the_gap():
    x = np.r_[np.zeros(50), np.ones(50)]
    g = np.r_[np.zeros(50), np.ones(50)]
    perm = permutation_test(x, g, metric="spdd", n_perm=99, random_state=0)
    assert "p ≤ 0.01" in audit_view.permutation_caption(perm) and "of 99 group-label shuffles" in \
        audit_view.permutation_caption(perm)
    rng = np.random.default_rng(0)
    perm = permutation_test(rng.random(200), rng.integers(0, 2, 200), metric="spdd", n_perm=99, random_state=0)
    assert f"p = {perm.p_value:.2g}" in audit_view.permutation_caption(perm)
    assert audit_view.needs_permutation({"spdd": {"value": 0.1}})
    assert not audit_view.needs_permutation({"spdd": {"value": 0.1, "p_value": 0.2}})


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.7, 1.0])
def test_repair_preview_numbers_match_the_repaired_scores(theta):
    rng = np.random.default_rng(1)
    n = 800
    g = rng.integers(0, 2, n)
    y = rng.random(n)
    x = np.clip(0.3 + 0.4 * y + 0.15 * g + rng.normal(0, 0.05, n), 0, 1)
    rmap = RepairMap().fit(x, g)
    before = metrics.audit(x, g, y).to_dict()
    rep = audit_view.repair_preview(x, g, y, theta, rmap, before, metrics.dp_curve(x, g))
    # the repaired scores by the map's definition: (1 - θ) x + θ Q_B(F_g(x))
    xr = (1 - theta) * x + theta * rmap.repaired_full(x, g)
    assert rep.spdd == pytest.approx(metrics.spdd(xr, g), abs=1e-12)
    assert rep.pcc == pytest.approx(np.corrcoef(xr, y)[0, 1], abs=1e-10)
    assert rep.spdd0 == pytest.approx(metrics.spdd(x, g)) and rep.pcc0 == pytest.approx(metrics.pcc(x, y))
    assert (rep.spdd < rep.spdd0) == (theta > 0)
    assert RepairMap.from_json(rep.map_json).transform(x, g, theta) == pytest.approx(xr)
    assert len(rep.dp_figure.data) >= 2 and json.loads(rep.figure.to_json())
    no_labels = audit_view.repair_preview(x, g, None, theta, rmap, before, metrics.dp_curve(x, g))
    assert no_labels.pcc is None and no_labels.srcc is None and no_labels.spdd == pytest.approx(rep.spdd)


def test_metrics_frame_has_every_part_and_drops_absent_metrics():
    m = {"spdd": {"value": 0.1, "ci_low": 0.05, "ci_high": 0.2, "upper": 0.2, "p_value": 0.01}, "pcc": 0.5}
    frame = audit_view.metrics_frame(m)
    assert frame["metric"].tolist() == ["pcc", "spdd"]
    spdd = frame.set_index("metric").loc["spdd"]
    assert (spdd["ci_low"], spdd["ci_high"], spdd["p_value"]) == (0.05, 0.2, 0.01)
    assert math.isnan(frame.set_index("metric").loc["pcc", "ci_low"])


# ---------------------------------------------------------------------------- upload


def test_guess_column():
    cols = ["id", "Score", "SEX", "y"]
    assert upload.guess_column(cols, upload.SCORE_NAMES) == "Score"
    assert upload.guess_column(cols, upload.GROUP_NAMES) == "SEX"
    assert upload.guess_column(cols, upload.LABEL_NAMES) == "y"
    assert upload.guess_column(["a", "b"], upload.LABEL_NAMES, "(none)") == "(none)"


# ---------------------------------------------------------------------- compare, trade-off


def _frame():
    def info(name, method, pcc, spdd):
        return SimpleNamespace(name=name, method=method, alpha=4.0, lambda_w=1.0, seed=0, bias_mode="label",
                               metrics={"pcc": {"value": pcc, "ci_low": pcc - 0.01, "ci_high": pcc + 0.01},
                                        "spdd": {"value": spdd, "ci_low": spdd - 0.005, "ci_high": spdd + 0.01}})

    return runs_frame([info("a", "vanilla", 0.6, 0.10), info("b", "ours", 0.605, 0.02), info("c", "l2", 0.5, 0.09)])


def test_compare_table_marks_the_best_and_the_ties():
    t = compare.compare_table(_frame().set_index("name"))
    assert t.best["PCC ↑"] == "b" and t.best["SPDD ↓"] == "b"
    assert t.tied["PCC ↑"] == ["a"] and t.tied["SPDD ↓"] == []
    assert t.shown.loc["b", "λ_W"] == "1" and t.shown.loc["a", "λ_W"] == "—" and t.shown.loc["c", "λ_W"] == "—"
    assert t.shown.loc["b", "PCC ↑"] == "0.605  [0.595, 0.615]" and t.shown.loc["a", "SRCC ↑"] == "—"
    styles = dict(zip(t.shown.index, t.styles(t.shown["PCC ↑"])))
    assert styles == {"a": compare.TIED_STYLE, "b": compare.BEST_STYLE, "c": ""}
    assert "PCC ↑ → `b` (tied with 1)" in t.best_caption()


def test_method_catalogue_matches_training():
    from fairviz.train import METHODS, TrainConfig  # noqa: PLC0415 - imports torch

    assert methods.WEIGHT_FIELDS == {m: s.weight_field for m, s in METHODS.items() if s.weight_field}
    assert tradeoff.sweepable_methods() == [m for m in METHODS if METHODS[m].weight_field]
    assert methods.DEFAULT_EPOCHS == TrainConfig().epochs


def test_tradeoff_texts_and_front_table():
    pts = pd.DataFrame({
        "key": ["v", "o", "o@1", "c"], "name": ["v", "o", "o", "c"], "pipeline": ["vanilla", "ours", "ours + repair", "l2"],
        "family": ["trained", "trained", "repair", "trained"], "knob": ["weight", "weight", "theta", "weight"],
        "value": [np.nan, 1.0, 1.0, 3.0], "pcc": [0.6, 0.58, 0.59, 0.2], "spdd": [0.1, 0.03, 0.01, 0.001],
        "score_std": [0.2, 0.18, 0.19, 0.001], "spdd_floor_p95": [0.01] * 4, "on_front": [True, False, True, True],
        "spread_ratio": [1.0, 0.9, 0.95, 0.005], "collapsed": [False, False, False, True],
        "narrow": [False, False, False, True], "method": ["vanilla", "ours", "ours", "l2"],
    })
    front = tradeoff.front_table(pts)
    assert front["run"].tolist() == ["c", "o", "v"]  # fairest first
    assert front["knob"].tolist() == ["weight 3", "θ = 1", "—"] and front["note"].tolist() == ["collapsed", "", ""]
    best = pts.iloc[2]
    text = tradeoff.best_text(best, 0.02)
    assert "**ours + repair** (θ = 1) on run `o`" in text and "Post-processing wins here" in text
    assert tradeoff.spread_warning(pts.iloc[3], best).startswith("`c` (l2) has a higher PCC")
    assert tradeoff.spread_warning(best, best) is None and tradeoff.spread_warning(None, best) is None
    assert "`c` (spread 0.001)" in tradeoff.collapsed_front_warning(pts)
    assert tradeoff.collapsed_front_warning(pts.assign(collapsed=False)) is None


# ----------------------------------------------------------------------------- train form


def _form(**kw):
    base = dict(source="synthetic", method="ours", alpha=4.0, bias_mode="label", weight=0.7, adv_weight=0.2,
                epochs=3, batch_size=32, lr=1e-3, seed=5, n_samples=0, target=0.0, val_labels="biased",
                attr="k4", w1_form="pooled", s_fraction=0.5, frames=None, size=None)
    return {**base, **kw}


def test_train_config_of_the_form_values():
    from fairviz.app_services import train_form  # noqa: PLC0415 - imports torch
    from fairviz.kgroups import SYNTHETIC_ATTRIBUTES  # noqa: PLC0415 - imports torch
    from fairviz.train import TrainConfig  # noqa: PLC0415 - imports torch

    cfg = train_form.train_config(_form(target=0.02, n_samples=300), "synthetic")
    assert cfg == TrainConfig(method="ours", alpha=4.0, bias_mode="label", lambda_w=0.7, adv_weight=0.2, epochs=3,
                              batch_size=32, lr=1e-3, seed=5, data="synthetic", n_samples=300, target_spdd=0.02,
                              val_labels="biased", data_params=dict(SYNTHETIC_ATTRIBUTES["k4"][1]), w1_form="pooled",
                              s_fraction=0.5)
    l2 = train_form.train_config(_form(method="l2", weight=2.0), "synthetic")
    assert l2.lambda_l2 == 2.0 and l2.lambda_w == TrainConfig().lambda_w and l2.n_samples is None
    # no weight (so no target), S never read, real videos: frames and size, no synthetic size
    dro = train_form.train_config(_form(method="dro", source="manifest", target=0.1, n_samples=300, frames=30,
                                        size=112), "/data/m.csv")
    assert dro.target_spdd is None and dro.s_fraction == 1.0 and dro.n_samples is None
    assert (dro.frames, dro.size, dro.data) == (30, 112, "/data/m.csv")
    assert train_form.train_config(_form(method="balancing"), "synthetic").s_fraction == 1.0
    assert train_form.uses_s("ours") and not train_form.uses_s("balancing") and not train_form.uses_s("arl")
    # the fairness rows: passed for a method that could read unlabelled rows, else the method's choice
    fo = train_form.train_config(_form(method="fairoffset", s_fraction=1.0, fairness_rows="labelled"), "synthetic")
    assert fo.fairness_rows == "labelled" and not fo.pool_fairness()
    assert train_form.train_config(_form(method="vanilla", fairness_rows="pool"), "synthetic").fairness_rows == "auto"
    assert train_form.train_config(_form(method="fairoffset", s_fraction=1.0), "synthetic").pool_fairness()
    defaults, options = train_form.form_defaults()
    assert set(options) <= set(defaults) and all(defaults[k] in options[k] for k in options)


def test_bootstrap_budget_follows_what_a_resample_reads():
    """Below `LITTLE_MIN_ROWS` a resample reads every row; from there on one little-bootstrap
    subset, never more rows than the bound for up to ten groups."""
    from fairviz.metrics._little import LITTLE_MIN_ROWS, LittleBootstrap

    assert budget.rows_per_resample(1000) == 1000
    assert budget.rows_per_resample(LITTLE_MIN_ROWS - 1) == LITTLE_MIN_ROWS - 1
    for n in (LITTLE_MIN_ROWS, 1_000_000, 30_000_000):
        for k in (2, 3, 6, 10):
            for shares in (np.full(k, 1.0 / k), np.r_[0.9, np.full(k - 1, 0.1 / (k - 1))]):
                counts = np.maximum(1, (shares * n).astype(np.int64))
                assert LittleBootstrap().sizes(counts).sum() <= budget.rows_per_resample(n), (n, k)
    # a 10⁶-row audit with labels gets its intervals right away, and the app's report its 200 resamples
    assert budget.interval_plan(1_000_000, True).n_boot >= 500
    assert budget.report_n_boot(1_000_000, True) == 200
