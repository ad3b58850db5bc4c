"""Training: the method registry's loss terms, the min-max adversary, bias protocol, every method
end to end on a tiny data set, determinism, progress/cancel, save -> load -> same predictions."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
import torch

import fairviz.train as T
from fairviz.cli import main
from fairviz.cli import train as cli_train
from fairviz.data.features import FeatureSet
from fairviz.data.video_dataset import FRAME_SAMPLINGS
from fairviz.kgroups import W1_FORMS
from fairviz.methods import SAFE_WEIGHT_MAX, weight_warning
from fairviz.model.heads import Adversary, grl_lambda
from fairviz.runs import load_run, save_run
from fairviz.train import (
    BIAS_MODES,
    METHODS,
    LossInputs,
    TrainConfig,
    TrainingCancelled,
    _public_meta,
    balanced_oversample,
    loss_terms,
    predict,
    prepared_from_features,
    resolve_device,
    train,
)

TINY_MODEL = dict(
    video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=4, text_hidden=4,
    regressor_hidden=8, adversary_hidden=8,
)


def tiny_features(n=160, seed=0) -> FeatureSet:
    """A small learnable set: text carries the label, audio and video carry the group."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % 2
    y = np.clip(0.5 + 0.18 * rng.normal(size=n), 0, 1)
    video = rng.integers(0, 60, (n, 2, 16, 16, 3), dtype=np.uint8)
    video[g == 1, :, :, :, 0] += 120
    mfcc = rng.normal(size=(n, 4, 5)).astype(np.float32)
    mfcc[:, :, 0] += 2.0 * g[:, None]
    text = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    text[:, 0] += 4 * (y - 0.5)
    return FeatureSet(video=video, mfcc=mfcc, text=text, label=y, group=g, ids=[f"c{i}" for i in range(n)])


def tiny_config(method="ours", **kw) -> TrainConfig:
    base = dict(method=method, epochs=2, batch_size=16, model=TINY_MODEL, n_boot=20, n_perm=3, lr=5e-3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def feats():
    return tiny_features()


# --------------------------------------------------------------------------------------------
# the registry and its loss terms


def _batch_inputs(seed=0, b=32, d=6, shift=1.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.arange(b) % 2
    score = torch.sigmoid(torch.randn(b, generator=g) + shift * s).requires_grad_(True)
    z = (torch.randn(b, d, generator=g) + shift * s[:, None]).requires_grad_(True)
    logits = torch.randn(b, 2, generator=g, requires_grad=True)
    return score, z, s, logits


def test_registry_lists_every_method_in_catalogue_order():
    assert list(METHODS) == ["vanilla", "balancing", "adversarial", "l2", "mmd", "ours", "fairoffset", "dro", "arl"]
    assert [m for m in METHODS if METHODS[m].compared] == [
        "vanilla", "balancing", "adversarial", "l2", "mmd", "ours", "fairoffset"]
    assert METHODS["balancing"].balance_training_rows
    assert [m for m in METHODS if METHODS[m].uses_adversary] == ["adversarial", "ours", "arl"]
    assert {m: METHODS[m].weight_field for m in METHODS if METHODS[m].weight_field} == {
        "l2": "lambda_l2", "mmd": "lambda_mmd", "ours": "lambda_w", "fairoffset": "lambda_sw"}
    assert [m for m in METHODS if METHODS[m].group_offset] == ["fairoffset"]


@pytest.mark.parametrize(
    "method,expected",
    [
        ("vanilla", set()),
        ("balancing", set()),
        ("adversarial", {"adv"}),
        ("l2", {"l2"}),
        ("mmd", {"mmd"}),
        ("ours", {"w1", "adv"}),
        ("fairoffset", {"sw1"}),
    ],
)
def test_each_method_adds_its_term(method, expected):
    score, z, s, logits = _batch_inputs()
    cfg = TrainConfig(method=method, lambda_w=1.0, adv_weight=1.0)
    terms = loss_terms(method, LossInputs(score, z, s, logits), cfg)
    assert set(terms) == expected
    for name, value in terms.items():
        assert value.dim() == 0 and value.item() > 0, name
        value.backward(retain_graph=True)
    # a distribution term reaches the scores (w1, mmd) or Z (l2)
    if {"w1", "mmd", "sw1"} & set(terms):
        assert score.grad is not None and score.grad.abs().sum() > 0
    if "l2" in terms:
        assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["l2", "mmd", "ours", "fairoffset"])
def test_the_method_weight_scales_the_term_and_zero_switches_it_off(method):
    score, z, s, logits = _batch_inputs()
    inp = LossInputs(score, z, s, logits)
    key = {"l2": "l2", "mmd": "mmd", "ours": "w1", "fairoffset": "sw1"}[method]
    field = METHODS[method].weight_field
    one = loss_terms(method, inp, TrainConfig(method=method, **{field: 1.0}))[key].item()
    three = loss_terms(method, inp, TrainConfig(method=method, **{field: 3.0}))[key].item()
    assert three == pytest.approx(3 * one, rel=1e-5)
    assert loss_terms(method, inp, TrainConfig(method=method, **{field: 0.0}))[key].item() == 0.0
    # the other methods' weights do not touch this term
    others = {f: 7.0 for f in ("lambda_w", "lambda_l2", "lambda_mmd", "lambda_sw") if f != field}
    assert loss_terms(method, inp, TrainConfig(method=method, **{field: 1.0}, **others))[key].item() == one


def test_distribution_terms_vanish_for_identical_groups():
    b = 32
    base = torch.rand(b // 2)
    score = torch.cat([base, base])
    s = torch.cat([torch.zeros(b // 2), torch.ones(b // 2)]).long()
    z = torch.cat([base[:, None].repeat(1, 3)] * 2)
    inp = LossInputs(score, z, s, None)
    assert loss_terms("ours", LossInputs(score, z, s, torch.zeros(b, 2)), TrainConfig())["w1"].item() == pytest.approx(0, abs=1e-6)
    assert loss_terms("l2", inp, TrainConfig(method="l2"))["l2"].item() == pytest.approx(0, abs=1e-6)
    assert loss_terms("mmd", inp, TrainConfig(method="mmd"))["mmd"].item() == pytest.approx(0, abs=1e-5)


def test_balanced_oversample_equalises_groups_within_bins(rng):
    y = rng.uniform(0, 1, 400)
    g = (rng.uniform(0, 1, 400) < 0.2 + 0.6 * y).astype(int)  # privileged dominate high labels
    idx = balanced_oversample(y, g, n_bins=10, seed=0)
    edges = np.quantile(y, np.linspace(0, 1, 11)[1:-1])
    bins = np.searchsorted(edges, y[idx], side="right")
    for b in np.unique(bins):
        counts = np.bincount(g[idx][bins == b], minlength=2)
        assert counts[0] == counts[1], (b, counts)
    assert set(np.arange(400)) <= set(idx)  # nothing dropped


# --------------------------------------------------------------------------------------------
# data protocol


@pytest.mark.parametrize("mode", ["label", "sample"])
def test_bias_goes_into_train_split_only(feats, mode):
    cfg = tiny_config(bias_mode=mode, alpha=4)
    data = prepared_from_features(feats, cfg)
    unbiased = prepared_from_features(feats, tiny_config(bias_mode=mode, alpha=1))
    np.testing.assert_array_equal(data.val_idx, unbiased.val_idx)
    np.testing.assert_array_equal(data.test_idx, unbiased.test_idx)
    assert not set(data.train_idx) & (set(data.val_idx) | set(data.test_idx))
    y, g = feats.label.astype(float), feats.group
    gap = data.train_label[g[data.train_idx] == 1].mean() - data.train_label[g[data.train_idx] == 0].mean()
    assert gap > 0.05  # the privileged group gets higher training labels
    if mode == "label":
        assert len(data.train_idx) == len(unbiased.train_idx)
        assert not np.allclose(data.train_label, y[data.train_idx])
        np.testing.assert_allclose(np.sort(data.train_label), np.sort(y[data.train_idx]))
    else:
        assert len(data.train_idx) < len(unbiased.train_idx)
        np.testing.assert_array_equal(data.train_label, y[data.train_idx])


# --------------------------------------------------------------------------------------------
# end to end


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_end_to_end(feats, method):
    events = []
    run = train(tiny_config(method), progress=events.append, features=feats)
    assert run.config.method == method and len(run.history) == 2
    h = run.history[-1]
    for key in ("epoch", "loss", "mse", "val_pcc", "val_spdd"):
        assert key in h
    terms = {"adversarial": ["adv"], "l2": ["l2"], "mmd": ["mmd"], "ours": ["w1", "adv"],
             "fairoffset": ["sw1"]}.get(method, [])
    for t in terms:
        assert h[t] > 0
    for t in {"adv", "l2", "mmd", "w1", "sw1"} - set(terms):
        assert t not in h
    preds = run.predictions
    assert list(preds.columns) == ["score", "label", "group", "split"]
    assert set(preds["split"]) == {"val", "test"}
    test = run.test_predictions()
    assert run.z.shape == (len(test), run.model_config.d_z)
    assert preds["score"].between(0, 1).all()
    # true labels on val/test
    data = prepared_from_features(feats, run.config)
    np.testing.assert_allclose(test["label"], feats.label[data.test_idx].astype(float))
    m = run.metrics
    for key in ("n", "spdd", "pcc", "srcc", "speo", "spdd_grid50", "speo_grid50", "spdd_floor", "best_epoch"):
        assert key in m, key
    assert m["n"] == len(test)
    steps = [e for e in events if e["stage"] == "step"]
    epochs = [e for e in events if e["stage"] == "epoch"]
    assert len(epochs) == 2 and steps and steps[-1]["steps"] == steps[-1]["step"]
    assert {"epoch", "epochs", "step", "steps", "losses"} <= set(steps[0])
    assert {"val_pcc", "val_spdd"} <= set(epochs[0])


def _weights(run) -> dict:
    return {k: v.numpy() for k, v in run.state_dict.items()}


@pytest.mark.parametrize("method, zero_equals", [("ours", "adversarial"), ("l2", "vanilla"), ("mmd", "vanilla"),
                                                  ("fairoffset", None)])
def test_the_weighted_term_is_in_the_loss_that_is_backpropagated(feats, method, zero_equals):
    # a term that is logged but left out of the backward pass leaves the trained weights unchanged
    field = METHODS[method].weight_field
    on = train(tiny_config(method, epochs=1, **{field: 1.0}), features=feats)
    off = train(tiny_config(method, epochs=1, **{field: 0.0}), features=feats)
    assert on.history[0][{"ours": "w1", "l2": "l2", "mmd": "mmd", "fairoffset": "sw1"}[method]] > 0
    changed = [k for k, v in _weights(on).items() if not np.array_equal(v, _weights(off)[k])]
    assert any(k.startswith("regressor") for k in changed), changed
    if zero_equals is not None:  # control: at weight 0 the run is exactly the method without the term
        base = _weights(train(tiny_config(zero_equals, epochs=1), features=feats))
        assert all(np.array_equal(v, base[k]) for k, v in _weights(off).items())


@pytest.mark.parametrize("method", ["adversarial", "ours"])
def test_the_adversary_is_called_with_the_positive_reversal_schedule(feats, monkeypatch, method):
    # with -lambda the encoders would help the adversary find S instead of hiding it

    seen, forward = [], Adversary.forward

    def spy(self, z, lambd=1.0):
        seen.append(lambd)
        return forward(self, z, lambd)

    monkeypatch.setattr(Adversary, "forward", spy)
    cfg = tiny_config(method, epochs=2)
    run = train(cfg, features=feats)
    total = cfg.epochs * run.info["steps_per_epoch"]
    assert seen == [grl_lambda(i / total, cfg.gamma) for i in range(total)]
    assert seen[0] == 0.0 and all(b > a > 0 for a, b in zip(seen[1:], seen[2:]))


def test_same_budget_for_every_method(feats):
    steps = {m: train(tiny_config(m, epochs=1), features=feats).info["steps_per_epoch"] for m in ("vanilla", "balancing")}
    assert steps["vanilla"] == steps["balancing"]


def test_same_seed_same_result_other_seed_differs(feats):
    a = train(tiny_config("ours", seed=3), features=feats)
    b = train(tiny_config("ours", seed=3), features=feats)
    c = train(tiny_config("ours", seed=4), features=feats)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    assert a.metrics == b.metrics
    np.testing.assert_array_equal(a.z, b.z)
    assert not a.predictions["score"].equals(c.predictions["score"])


def test_stored_metrics_match_independent_references(feats):
    run = train(tiny_config("vanilla"), features=feats)
    test = run.test_predictions()
    x, y, g = test["score"].to_numpy(), test["label"].to_numpy(), test["group"].to_numpy()
    assert run.metrics["pcc"]["value"] == pytest.approx(ss.pearsonr(x, y)[0], abs=1e-12)
    assert run.metrics["srcc"]["value"] == pytest.approx(ss.spearmanr(x, y)[0], abs=1e-12)
    assert run.metrics["spdd"]["value"] == pytest.approx(
        ss.wasserstein_distance(x[g == 0], x[g == 1]), abs=1e-12)


def test_save_load_gives_identical_predictions(feats, tmp_path):
    # trained and predicted on the CPU: a CUDA run predicted on the CPU may differ in the last bits
    run = train(tiny_config("ours", device="cpu"), features=feats)
    back = load_run(save_run(run, tmp_path / "r"))
    data = prepared_from_features(feats, back.config)
    device = resolve_device("cpu")
    scores, z = predict(back.model(), data, data.test_idx, device)
    np.testing.assert_array_equal(np.clip(scores, 0, 1), run.test_predictions()["score"].to_numpy())
    np.testing.assert_array_equal(z, run.z)
    pd.testing.assert_frame_equal(back.predictions, run.predictions)


def test_cancel_stops_training(feats):
    ev = threading.Event()

    def progress(e):
        if e["stage"] == "step" and e["step"] == 2:
            ev.set()

    with pytest.raises(TrainingCancelled):
        train(tiny_config("vanilla"), progress=progress, cancel=ev, features=feats)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"method": "magic"}, "unknown method"),
        ({"bias_mode": "both"}, "bias_mode"),
        ({"alpha": 0.5}, "alpha"),
        ({"lambda_w": -1.0}, "lambda_w"),
        ({"lambda_mmd": float("nan")}, "lambda_mmd"),
        ({"mmd_bandwidth": 0.0}, "mmd_bandwidth"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch_size"),
        ({"model": {"depth": 3}}, "unknown model config"),
        ({"selection": "val_auc"}, "selection"),
        ({"lambda_sw": -0.1}, "lambda_sw"),
        ({"val_labels": "audited"}, "val_labels"),
        ({"method": "fairoffset", "target_spdd": 0.0}, r"target_spdd must be in \(0, 1\)"),
        ({"method": "fairoffset", "target_spdd": -0.02}, r"target_spdd must be in \(0, 1\)"),
        ({"method": "ours", "target_spdd": 1.5}, r"target_spdd must be in \(0, 1\)"),
        ({"method": "ours", "target_spdd": float("nan")}, "target_spdd must be a number"),
        ({"method": "vanilla", "target_spdd": 0.02}, "no fairness weight to adjust"),
    ],
)
def test_bad_config_is_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw)


def test_config_roundtrip_and_names():
    cfg = TrainConfig(method="ours", alpha=4, lambda_w=0.3, seed=2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.default_name() == "ours-a4-label-lw0.3-s2"
    assert TrainConfig(method="vanilla").default_name() == "vanilla-a4-label-s0"
    assert TrainConfig(method="l2", lambda_l2=2).default_name() == "l2-a4-label-lam2-s0"
    assert TrainConfig(method="mmd").method_weight() == TrainConfig().lambda_mmd
    assert TrainConfig(method="balancing").method_weight() is None
    assert TrainConfig(method="fairoffset", lambda_sw=2).default_name() == "fairoffset-a4-label-lsw2-s0"
    cfg = TrainConfig(method="fairoffset", target_spdd=0.02, val_labels="biased")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown train config keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "foo": 1})


def test_cuda_request_without_cuda_is_clear():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


# --------------------------------------------------------------------------------------------
# CLI (in-process, features replaced by the tiny set)


def test_cli_defaults_match_train_config():
    assert cli_train.METHOD_CHOICES == tuple(METHODS)
    assert cli_train.BIAS_MODE_CHOICES == BIAS_MODES

    assert cli_train.W1_FORM_CHOICES == W1_FORMS
    assert cli_train.FRAME_SAMPLING_CHOICES == FRAME_SAMPLINGS
    d = TrainConfig()
    for key, value in cli_train.DEFAULTS.items():
        assert getattr(d, key) == value, key


@pytest.fixture
def cli_tiny(monkeypatch, feats):
    monkeypatch.setattr(T, "load_features", lambda cfg, progress=None: feats)

    return main


def test_cli_train_saves_a_loadable_run(cli_tiny, tmp_path, capsys):
    out = tmp_path / "ours-a4"
    rc = cli_tiny(["train", "--method", "ours", "--alpha", "4", "--lambda-w", "0.5", "--seed", "1",
                   "--epochs", "1", "--batch-size", "16", "--n-boot", "10", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "SPDD" in text and "floor" in text and str(out) in text
    run = load_run(out)
    assert (run.config.method, run.config.alpha, run.config.lambda_w, run.config.seed) == ("ours", 4.0, 0.5, 1)
    assert cli_tiny(["train", "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_compare_and_sweep(cli_tiny, tmp_path, capsys):
    rc = cli_tiny(["compare", "--alpha", "3", "--seeds", "0", "1", "--methods", "vanilla", "ours",
                   "--epochs", "1", "--batch-size", "16", "--n-boot", "10", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    md = (tmp_path / "compare-a3-label.md").read_text()
    assert "| vanilla |" in md and "| ours |" in md and "±" in md and "| ours + repair |" in md
    per_run = pd.read_csv(tmp_path / "compare-a3-label.csv")
    assert len(per_run) == 8 and set(per_run["seed"]) == {0, 1}  # each run, and each run + repair
    assert per_run["theta"].isna().sum() == 4 and set(per_run["theta"].dropna()) == {1.0}
    assert cli_tiny(["compare", "--alpha", "3", "--seeds", "0", "--repair-strength", "1.5", "--epochs", "1",
                     "--no-progress"]) == 2
    assert "--repair-strength must be in [0, 1]" in capsys.readouterr().err
    rc = cli_tiny(["sweep", "--method", "ours", "--alpha", "3", "--lambda-w", "0", "1", "--epochs", "1",
                   "--batch-size", "16", "--n-boot", "10", "--out-root", str(tmp_path / "m"), "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["sweep-a3-lw0", "sweep-a3-lw1"]
    assert "theta curve: sweep-a3-lw0 + barycenter repair" in capsys.readouterr().out


def test_saved_info_names_no_local_paths():
    meta = {"cache_path": "/root/.cache/x", "cache_hit": True, "n": 3,
            "text_model": {"path": "/venv/model", "name": "mini"}, "params": {"seed": 0}}
    assert _public_meta(meta) == {"n": 3, "text_model": {"name": "mini"}, "params": {"seed": 0}}


# --------------------------------------------------------------------------------------------
# model selection protocols, the group offset, the target SPDD


@pytest.mark.parametrize("mode", ["label", "sample"])
def test_selection_reads_true_or_biased_validation_labels(feats, mode):
    true = prepared_from_features(feats, tiny_config(bias_mode=mode, alpha=4))
    np.testing.assert_array_equal(true.sel_pos, np.arange(len(true.val_idx)))
    np.testing.assert_array_equal(true.sel_label, feats.label[true.val_idx].astype(float))
    biased = prepared_from_features(feats, tiny_config(bias_mode=mode, alpha=4, val_labels="biased"))
    np.testing.assert_array_equal(biased.val_idx, true.val_idx)  # the validation rows themselves are kept
    g = feats.group[biased.val_idx][biased.sel_pos]
    gap = biased.sel_label[g == 1].mean() - biased.sel_label[g == 0].mean()
    true_gap = true.sel_label[feats.group[true.val_idx] == 1].mean() - true.sel_label[feats.group[true.val_idx] == 0].mean()
    assert gap > true_gap + 0.05  # biased like the training split: the privileged group rated higher
    if mode == "label":
        np.testing.assert_array_equal(biased.sel_pos, true.sel_pos)
        np.testing.assert_allclose(np.sort(biased.sel_label), np.sort(true.sel_label))
    else:
        assert len(biased.sel_pos) < len(true.sel_pos)
        np.testing.assert_array_equal(biased.sel_label, true.sel_label[biased.sel_pos])
    # alpha = 1: nothing to bias, both protocols read the same labels
    plain = prepared_from_features(feats, tiny_config(bias_mode=mode, alpha=1, val_labels="biased"))
    np.testing.assert_array_equal(plain.sel_label, feats.label[plain.val_idx].astype(float))


def test_biased_selection_is_used_and_named_in_the_run(feats, tmp_path):
    run = train(tiny_config("vanilla", alpha=4, epochs=3, val_labels="biased"), features=feats)
    crit = [h["val_pcc_selection"] for h in run.history]
    assert run.metrics["best_epoch"] == int(np.nanargmax(crit)) + 1
    assert all(h["val_pcc_selection"] != h["val_pcc"] for h in run.history)
    back = load_run(save_run(run, tmp_path / "r"))
    assert back.config.val_labels == "biased"
    assert "val_pcc_selection" not in train(tiny_config("vanilla", epochs=1), features=feats).history[0]


def test_group_offset_absorbs_the_raters_shift_and_is_not_part_of_the_model(feats):
    run = train(tiny_config("fairoffset", alpha=4, epochs=4, lambda_sw=0.0), features=feats)
    offsets = [h["group_offset"] for h in run.history]
    assert offsets[-1] > 0.02 and offsets == sorted(offsets)  # privileged rated higher: b grows > 0
    assert run.info["group_offset"] == offsets[run.metrics["best_epoch"] - 1]
    assert not any("offset" in k for k in run.state_dict)
    data = prepared_from_features(feats, run.config)
    scores, _ = predict(run.model(), data, data.test_idx, resolve_device("cpu"))
    np.testing.assert_array_equal(np.clip(scores, 0, 1), run.test_predictions()["score"].to_numpy())
    assert "group_offset" not in train(tiny_config("ours", epochs=1), features=feats).history[0]


def test_target_spdd_raises_the_weight_until_validation_spdd_is_reached(feats):
    eps = 0.02
    free = train(tiny_config("fairoffset", alpha=4, epochs=6, lambda_sw=0.0), features=feats)
    assert max(h["val_spdd"] for h in free.history[2:]) > 1.5 * eps  # without a target it drifts above
    run = train(tiny_config("fairoffset", alpha=4, epochs=6, lambda_sw=0.05, target_spdd=eps), features=feats)
    t = run.info["target_spdd"]
    assert t["reached"] and t["target"] == eps
    assert run.metrics["val_spdd"] <= eps and t["val_spdd"] == run.metrics["val_spdd"]
    assert t["weights"][-1] > 0.05  # the controller raised the weight
    assert max(t["weights"]) <= METHODS["fairoffset"].weight_max  # ... but not past the measured safe range
    ok = [h for h in run.history if h["val_spdd"] <= eps]
    assert run.metrics["val_pcc"] == max(h["val_pcc"] for h in ok)  # the most accurate epoch within target
    assert t["weight"] == run.history[run.metrics["best_epoch"] - 1]["weight"]


def test_cli_warns_past_the_measured_safe_weight(cli_tiny, tmp_path, capsys):
    assert METHODS["fairoffset"].weight_max == SAFE_WEIGHT_MAX["fairoffset"] == 0.3
    assert weight_warning("fairoffset", 0.3) is None and weight_warning("ours", 5.0) is None
    assert weight_warning("fairoffset", None) is None
    for weight, warned in (("0.3", False), ("0.5", True)):
        rc = cli_tiny(["train", "--method", "fairoffset", "--lambda-sw", weight, "--epochs", "1", "--batch-size", "16",
                       "--n-boot", "10", "--out", str(tmp_path / weight), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 0 and ("warning: fairoffset's weight 0.5 is above 0.3" in err) == warned
    rc = cli_tiny(["sweep", "--method", "fairoffset", "--lambda-w", "0.5", "--epochs", "1", "--batch-size", "16",
                   "--n-boot", "10", "--out-root", str(tmp_path / "m"), "--no-progress"])
    assert rc == 0 and "warning: fairoffset's weight 0.5 is above 0.3" in capsys.readouterr().err


def test_cli_target_spdd_and_val_labels(cli_tiny, tmp_path, capsys):
    out = tmp_path / "fo"
    rc = cli_tiny(["train", "--method", "fairoffset", "--target-spdd", "0.05", "--val-labels", "biased",
                   "--epochs", "2", "--batch-size", "16", "--n-boot", "10", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert "target SPDD 0.05 on validation" in capsys.readouterr().out
    run = load_run(out)
    assert run.config.target_spdd == 0.05 and run.config.val_labels == "biased"
    assert run.info["target_spdd"]["target"] == 0.05
    for bad, msg in (("0", "target_spdd must be in (0, 1)"), ("-0.1", "target_spdd must be in (0, 1)")):
        rc = cli_tiny(["train", "--method", "fairoffset", "--target-spdd", bad, "--epochs", "1",
                       "--out", str(tmp_path / "x"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and msg in err and "Traceback" not in err
    rc = cli_tiny(["train", "--method", "vanilla", "--target-spdd", "0.02", "--epochs", "1",
                   "--out", str(tmp_path / "y"), "--no-progress"])
    assert rc == 2 and "no fairness weight to adjust" in capsys.readouterr().err
