"""Training with k groups and with S partly or wholly unknown (fairviz.kgroups + fairviz.train):
the k-group terms in the registry, the k-way adversary, the no-S methods, s_fraction, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fairviz.train as T
from fairviz import kgroups, losses
from fairviz.cli import main
from fairviz.data.features import FeatureSet
from fairviz.model.network import FairMultimodalNet, ModelConfig
from fairviz.runs import load_run
from fairviz.train import METHODS, LossInputs, TrainConfig, _batches, fit, loss_terms, prepared_from_features, train
from tests.test_train import TINY_MODEL, tiny_config, tiny_features


def tiny_features_k(n=240, shares=(0.15, 0.25, 0.25, 0.35), seed=0) -> FeatureSet:
    """Like `tiny_features` with k groups of the given shares (exact counts, shuffled): text
    carries the label, audio and video carry the group code."""
    rng = np.random.default_rng(seed)
    counts = np.floor(np.asarray(shares) * n).astype(int)
    counts[-1] += n - counts.sum()
    g = rng.permutation(np.repeat(np.arange(len(shares)), counts))
    y = np.clip(0.5 + 0.18 * rng.normal(size=n), 0, 1)
    video = rng.integers(0, 60, (n, 2, 16, 16, 3), dtype=np.uint8)
    video[:, :, :, :, 0] += (40 * g).astype(np.uint8)[:, None, None, None]
    mfcc = rng.normal(size=(n, 4, 5)).astype(np.float32)
    mfcc[:, :, 0] += 1.5 * g[:, None]
    text = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    text[:, 0] += 4 * (y - 0.5)
    return FeatureSet(video=video, mfcc=mfcc, text=text, label=y, group=g, ids=[f"c{i}" for i in range(n)],
                      meta={"group_labels": list(range(len(shares)))})


def _inputs(k=4, b=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = torch.arange(b) % k
    score = torch.sigmoid(torch.randn(b, generator=gen) + 0.5 * s)
    z = torch.randn(b, 6, generator=gen) + 0.5 * s[:, None]
    logits = torch.randn(b, k, generator=gen)
    y = torch.rand(b, generator=gen)
    return LossInputs(score, z, s, logits, y, k)


# --------------------------------------------------------------------------------------------
# the registry's terms


def test_k_groups_use_the_k_group_terms():
    inp = _inputs()
    w1 = loss_terms("ours", inp, TrainConfig(lambda_w=1.0))["w1"]
    assert float(w1) == pytest.approx(float(losses.spdd_loss(inp.score, inp.s)), abs=1e-7)
    pooled = loss_terms("ours", inp, TrainConfig(lambda_w=1.0, w1_form="pooled"))["w1"]
    assert float(pooled) == pytest.approx(float(losses.w1_pooled_loss(inp.score, inp.s)), abs=1e-7)
    mmd = loss_terms("mmd", inp, TrainConfig(method="mmd", lambda_mmd=1.0))["mmd"]
    assert float(mmd) == pytest.approx(float(losses.mmd_k_loss(inp.score, inp.s, bandwidth=0.02)), abs=1e-7)
    gap = loss_terms("l2", inp, TrainConfig(method="l2", lambda_l2=1.0))["l2"]
    assert float(gap) == pytest.approx(float(losses.mean_gap_k_loss(inp.z, inp.s)), abs=1e-6)
    adv = loss_terms("adversarial", inp, TrainConfig(method="adversarial", adv_weight=1.0))["adv"]
    assert float(adv) == pytest.approx(float(torch.nn.functional.cross_entropy(inp.adv_logits, inp.s)))


def test_two_groups_keep_the_binary_terms():
    """Binary data go through the binary loss functions: the same numbers as before."""
    inp = _inputs(k=2)
    assert float(loss_terms("ours", inp, TrainConfig(lambda_w=1.0))["w1"]) == float(
        losses.wasserstein_loss(inp.score, inp.s))
    assert float(loss_terms("ours", inp, TrainConfig(lambda_w=1.0, w1_form="pooled"))["w1"]) == float(
        losses.wasserstein_loss(inp.score, inp.s))
    assert float(loss_terms("mmd", inp, TrainConfig(method="mmd", lambda_mmd=1.0))["mmd"]) == float(
        losses.mmd_loss(inp.score, inp.s, bandwidth=0.02))
    assert float(loss_terms("l2", inp, TrainConfig(method="l2", lambda_l2=1.0))["l2"]) == float(
        losses.mean_gap_loss(inp.z, inp.s))


def test_partly_known_groups_use_the_labelled_rows_only():
    inp = _inputs()
    hidden = torch.arange(len(inp.s)) % 3 == 0
    s = torch.where(hidden, torch.full_like(inp.s, kgroups.UNKNOWN), inp.s)
    part = LossInputs(inp.score, inp.z, s, inp.adv_logits, inp.y, 4)
    cfg = TrainConfig(lambda_w=1.0, adv_weight=1.0, s_fraction=0.5)
    terms = loss_terms("ours", part, cfg)
    keep = ~hidden
    assert float(terms["w1"]) == pytest.approx(float(losses.spdd_loss(inp.score[keep], inp.s[keep])), abs=1e-7)
    want = torch.nn.functional.cross_entropy(inp.adv_logits[keep], inp.s[keep])
    assert float(terms["adv"]) == pytest.approx(float(want), abs=1e-6)
    none = LossInputs(inp.score, inp.z, torch.full_like(inp.s, -1), inp.adv_logits, inp.y, 4)
    for value in loss_terms("ours", none, cfg).values():
        assert float(value) == 0.0


@pytest.mark.parametrize("present", [(0, 2, 3), (3,)])
@pytest.mark.parametrize("method", list(METHODS))
def test_a_batch_missing_groups_gives_finite_terms_and_gradients(method, present):
    """k = 4 but the batch holds groups {0, 2, 3} only, or group 3 only: every method's terms,
    and their gradients on the scores, Z and the adversary logits, are finite."""
    inp = _inputs()
    s = torch.tensor(present)[torch.arange(len(inp.s)) % len(present)]
    score, z, logits = (t.clone().requires_grad_(True) for t in (inp.score, inp.z, inp.adv_logits))
    batch = LossInputs(score, z, s, logits, inp.y, 4)
    cfg = TrainConfig(method=method, lambda_w=1.0, lambda_l2=1.0, lambda_mmd=1.0, lambda_sw=1.0, adv_weight=1.0)
    terms = loss_terms(method, batch, cfg)
    total = sum(terms.values(), (score - inp.y).pow(2).mean())
    assert torch.isfinite(total), terms
    total.backward()
    for t in (score, z, logits):
        assert t.grad is None or torch.isfinite(t.grad).all()


def test_visible_groups():
    g = np.arange(1000) % 4
    v = kgroups.visible_groups(g, 0.1, seed=3)
    known = v != kgroups.UNKNOWN
    assert known.sum() == 100 and np.array_equal(v[known], g[known])
    assert np.array_equal(v, kgroups.visible_groups(g, 0.1, seed=3))
    assert np.array_equal(kgroups.visible_groups(g, 1.0, seed=3), g)
    assert (kgroups.visible_groups(g, 1.0, seed=3, needs_s=False) == kgroups.UNKNOWN).all()


def test_dro_and_arl_terms():
    inp = _inputs()
    cfg = TrainConfig(method="dro", dro_alpha=0.3)
    per = (inp.score - inp.y).pow(2)
    dro = loss_terms("dro", inp, cfg)["dro"]
    assert float(dro + per.mean()) == pytest.approx(float(losses.chi2_dro_loss(per, 0.3)), abs=1e-6)
    assert float(dro) > 0
    # ARL: weights 1 + B f / sum f; the learner gets the weighted MSE, the adversary its reverse
    score = inp.score.clone().requires_grad_(True)
    logits = torch.randn(len(score), 4, requires_grad=True)
    arl = loss_terms("arl", LossInputs(score, inp.z, inp.s, logits, inp.y, 4), TrainConfig(method="arl"))["arl"]
    f = torch.sigmoid(logits[:, 0].detach())
    lam = 1 + len(f) * f / f.sum()
    per = (score.detach() - inp.y).pow(2)
    assert float(arl.detach()) == pytest.approx(float(((lam - 1) * per).mean()), rel=1e-5)
    arl.backward()
    torch.testing.assert_close(score.grad, ((lam - 1) * 2 * (score.detach() - inp.y)) / len(f))
    lg = logits.clone().detach().requires_grad_(True)
    fw = torch.sigmoid(lg[:, 0])
    (((1 + len(f) * fw / fw.sum()) * per).mean()).backward()
    torch.testing.assert_close(logits.grad, -lg.grad)  # the adversary ascends the weighted loss


def test_fairoffset_terms_for_k_and_for_two_groups():
    """k groups: the shape term of the run's w1_form; two groups: the binary shape term exactly."""
    inp = _inputs()
    for form in ("spdd", "pooled"):
        cfg = TrainConfig(method="fairoffset", lambda_sw=1.0, w1_form=form)
        assert float(loss_terms("fairoffset", inp, cfg)["sw1"]) == float(losses.shape_k_loss(inp.score, inp.s, form))
        two = _inputs(k=2)
        assert float(loss_terms("fairoffset", two, cfg)["sw1"]) == float(
            losses.shape_wasserstein_loss(two.score, two.s))


def test_group_offsets():
    """k − 1 free offsets (group 0's is 0, hidden S gets none); two groups keep the scalar b·S,
    and the vector form on two groups gives the same shift."""
    b = kgroups.new_offset(4, "cpu")
    assert b.shape == (3,) and b.requires_grad and kgroups.new_offset(2, "cpu").shape == ()
    s = torch.tensor([0, 1, 2, 3, -1, 3, 1])
    with torch.no_grad():
        b.copy_(torch.tensor([0.1, -0.2, 0.3]))
    torch.testing.assert_close(kgroups.offset_shift(b, s, torch.float32),
                               torch.tensor([0.0, 0.1, -0.2, 0.3, 0.0, 0.3, 0.1]))
    assert kgroups.offset_value(b) == pytest.approx([0.1, -0.2, 0.3])
    s2 = torch.tensor([0, 1, 1, -1, 0])
    scalar, vector = torch.tensor(0.25), torch.tensor([0.25])
    assert torch.equal(kgroups.offset_shift(scalar, s2, torch.float32), kgroups.offset_shift(vector, s2, torch.float32))
    assert kgroups.offset_value(scalar) == 0.25
    # the gradient: each offset collects its own group's rows only
    w = torch.randn(len(s), dtype=torch.float64)
    bd = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: (w * kgroups.offset_shift(x, s, torch.float64)).sum(), (bd,))
    (w * kgroups.offset_shift(bd, s, torch.float64)).sum().backward()
    torch.testing.assert_close(bd.grad, torch.stack([w[s == g].sum() for g in (1, 2, 3)]))


@pytest.mark.slow
def test_k_group_offsets_absorb_known_group_shifts():
    """Labels = a text-borne score + a shift per group, features without the group: the offsets
    learn the shifts against group 0 and the model (without them) is fair and not part of them."""
    feats = tiny_features_k(n=320)
    shift = np.array([0.0, 0.05, 0.10, 0.15])
    feats.video[..., 0] = 0  # no group in the video ...
    feats.mfcc[:, :, 0] = np.random.default_rng(1).normal(size=feats.mfcc.shape[:2])  # ... nor in the audio
    feats.label = np.clip(feats.label * 0.5 + 0.2, 0, 1) + shift[feats.group]
    run = train(tiny_config("fairoffset", alpha=1.0, epochs=8, lambda_sw=0.0), features=feats)
    got = np.asarray(run.info["group_offset"])
    assert got.shape == (3,)
    np.testing.assert_allclose(got, shift[1:], atol=0.03)
    assert not any("offset" in k for k in run.state_dict)
    vanilla = train(tiny_config("vanilla", alpha=1.0, epochs=8), features=feats)
    assert run.metrics["spdd"]["value"] < vanilla.metrics["spdd"]["value"]


# --------------------------------------------------------------------------------------------
# training end to end


@pytest.fixture(scope="module")
def kfeats():
    return tiny_features_k()


def test_k_way_adversary_learns_the_groups(kfeats):
    """The adversary head has k outputs; trained alone on Z (no reversal), it reads 4 groups far
    above chance (0.25)."""
    cfg = tiny_config("adversarial", alpha=1.0)
    data = prepared_from_features(kfeats, cfg)
    torch.manual_seed(0)  # the network's initial weights, whatever ran before
    net = FairMultimodalNet(ModelConfig.from_dict({**TINY_MODEL, "n_mfcc": 5, "text_dim": 8, "n_groups": 4}))
    assert net.adversary.net[-1].out_features == 4
    idx = data.train_idx
    with torch.no_grad():
        net.eval()
        _, z = net(*data.batch(idx, "cpu"))
    s = torch.as_tensor(data.group[idx])
    opt = torch.optim.Adam(net.adversary.parameters(), lr=0.02)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(net.adversary(z, 0.0), s)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float((net.adversary(z, 0.0).argmax(1) == s).float().mean())
    assert acc > 0.6, acc


@pytest.mark.slow
@pytest.mark.parametrize("method, extra", [
    ("ours", {}), ("ours", {"w1_form": "pooled"}), ("mmd", {}), ("l2", {}), ("adversarial", {}),
    ("dro", {}), ("arl", {}), ("ours", {"s_fraction": 0.2}), ("fairoffset", {"w1_form": "pooled"}),
    ("fairoffset", {"s_fraction": 0.5}),
])
def test_every_method_trains_on_k_groups(kfeats, method, extra):
    run = train(tiny_config(method, **extra), features=kfeats)
    assert run.model_config.n_groups == 4
    assert set(run.predictions["group"]) == {0, 1, 2, 3}
    for rec in run.history:
        assert all(np.isfinite(v) for k, v in rec.items() if isinstance(v, float)), rec
    if METHODS[method].uses_adversary and METHODS[method].needs_s:
        assert 0 <= run.history[0]["adv_acc"] <= 1
    if method == "fairoffset":
        assert all(len(rec["group_offset"]) == 3 for rec in run.history)
        assert not any("offset" in k for k in run.state_dict)
    if method == "arl":
        assert run.model_config.adversary_label_input
        assert "adv_acc" not in run.history[0]
    loaded = run.model()  # a fresh network with the stored config and weights
    assert loaded.adversary.net[-1].out_features == 4


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dro", "arl"])
def test_no_s_methods_never_read_the_training_groups(kfeats, method):
    """Permuting the group labels of the training rows changes nothing for a no-S method."""
    cfg = tiny_config(method, alpha=1.0)
    data = prepared_from_features(kfeats, cfg)
    a = fit(cfg, data)
    data.group = data.group.copy()
    tr = data.train_idx
    data.group[tr] = np.random.default_rng(1).permutation(data.group[tr])
    b = fit(cfg, data)
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    # whereas `ours` does read them
    ours = tiny_config("ours", alpha=1.0)
    c, d = fit(ours, prepared_from_features(kfeats, ours)), fit(ours, data)
    assert [r["loss"] for r in c.history] != [r["loss"] for r in d.history]


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5, float("nan"), "half", True])
def test_bad_s_fraction(value):
    with pytest.raises(ValueError, match=r"s_fraction .* must be in \(0, 1\]"):
        TrainConfig(s_fraction=value)


def test_bad_config_values():
    with pytest.raises(ValueError, match="w1_form"):
        TrainConfig(w1_form="max")
    with pytest.raises(ValueError, match="dro_alpha"):
        TrainConfig(method="dro", dro_alpha=0)
    with pytest.raises(ValueError, match="needs S for every training row"):
        TrainConfig(method="balancing", s_fraction=0.5)


def test_one_group_and_a_group_missing_from_training(kfeats):
    one = tiny_features(n=80)
    one.group = np.zeros(80, dtype=np.int64)
    with pytest.raises(ValueError, match="one group"):
        prepared_from_features(one, tiny_config())
    cfg = tiny_config()
    splits = {"train": np.arange(0, 120), "val": np.arange(120, 180), "test": np.arange(180, 240)}
    feats = tiny_features_k()
    feats.group = feats.group.copy()
    feats.group[:120] = np.where(feats.group[:120] == 2, 1, feats.group[:120])  # no group 2 in train
    with pytest.raises(ValueError, match="group 2 .* has no rows in the train split"):
        prepared_from_features(feats, cfg, splits=splits)
    feats.group = np.where(feats.group == 3, 7, feats.group)
    with pytest.raises(ValueError, match=r"group codes must be 0\.\.3"):
        prepared_from_features(feats, cfg, splits={k: np.arange(240) for k in splits})


def test_sample_bias_with_k_groups_subsamples_the_training_rows(kfeats):
    """Sampling bias on k groups: the training split is the k-group subsample of
    `inject_bias`; validation and test rows are untouched."""
    from fairviz.data import inject_bias

    free = prepared_from_features(kfeats, tiny_config(alpha=1.0))
    data = prepared_from_features(kfeats, tiny_config(bias_mode="sample", alpha=4.0))
    tr = free.train_idx
    want = tr[inject_bias(kfeats.label[tr], kfeats.group[tr], 4.0, seed=0)]
    np.testing.assert_array_equal(data.train_idx, want)
    assert len(data.train_idx) < len(tr) and set(kfeats.group[data.train_idx]) == {0, 1, 2, 3}
    np.testing.assert_array_equal(data.test_idx, free.test_idx)
    np.testing.assert_array_equal(data.train_label, kfeats.label[want])


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_k_groups_and_s_fraction(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_load(cfg, progress=None):
        seen["data_params"] = cfg.data_params
        return tiny_features_k()

    monkeypatch.setattr(T, "load_features", fake_load)
    out = tmp_path / "k4"
    rc = main(["train", "--method", "ours", "--group-shares", "0.15", "0.25", "0.25", "0.35", "--s-fraction", "0.5",
               "--w1-form", "pooled", "--epochs", "1", "--batch-size", "16", "--n-boot", "5", "--out", str(out),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert seen["data_params"] == {"group_shares": [0.15, 0.25, 0.25, 0.35]}
    run = load_run(out)
    assert (run.config.s_fraction, run.config.w1_form, run.model_config.n_groups) == (0.5, "pooled", 4)
    for bad, msg in ((["--s-fraction", "0"], "s_fraction"), (["--s-fraction", "1.2"], "s_fraction"),
                     (["--method", "dro", "--dro-alpha", "2"], "dro_alpha")):
        assert main(["train", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "x"), *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err


def bad_group_features(kind: str) -> FeatureSet:
    """Tiny 4-group features whose attribute is unusable for training: ``"one"`` holds one group
    only; ``"absent"`` has its own split column with group 2 only in the validation and test rows."""
    feats = tiny_features_k()
    feats.group = feats.group.copy()
    if kind == "one":
        feats.group[:] = 0
        return feats
    split = np.where(np.arange(240) % 4 == 0, "val", np.where(np.arange(240) % 4 == 1, "test", "train"))
    feats.split = np.where(feats.group == 2, np.where(np.arange(240) % 2 == 0, "val", "test"), split)
    return feats


BAD_GROUPS = {"one": "has one group only", "absent": "group 2 (60 rows in all) has no rows in the train split"}


@pytest.mark.parametrize("kind", list(BAD_GROUPS))
def test_cli_bad_groups_give_one_error_line(monkeypatch, tmp_path, capsys, kind):
    """An attribute with one group, or a group absent from the training split: exit 2 and one
    `error: ...` line naming the problem, from `python -m fairviz train`."""
    monkeypatch.setattr(T, "load_features", lambda cfg, progress=None: bad_group_features(kind))
    out = tmp_path / "bad"
    rc = main(["train", "--epochs", "1", "--batch-size", "16", "--n-boot", "5", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and BAD_GROUPS[kind] in err and err.count("\n") == 1, err
    assert not out.exists()


def test_kgroup_summary_against_direct_computation():
    rng = np.random.default_rng(0)
    g = np.repeat([0, 1, 2], [30, 40, 50])
    y = rng.uniform(size=120)
    s = np.clip(y + 0.1 * g + 0.1 * rng.normal(size=120), 0, 1)
    out = kgroups.kgroup_summary(s, g, y, tau=0.5)
    assert out["rates"] == {k: float(np.mean(s[g == k] > 0.5)) for k in range(3)}
    assert out["small_gap"] == pytest.approx(np.mean(s[g == 0] > 0.5) - np.mean(s[g != 0] > 0.5))
    assert out["worst_group_pcc"] == pytest.approx(min(np.corrcoef(s[g == k], y[g == k])[0, 1] for k in range(3)))
    assert out["dp_tau"] == pytest.approx(max(out["rates"].values()) - min(out["rates"].values()))


def test_batches_hold_every_group_including_the_small_one():
    """`_batches` on 4 groups with a 3 % group: every batch holds all 4; with S partly known,
    every batch holds known rows of every group (unknown rows are one more stratum)."""

    g = np.repeat([0, 1, 2, 3], [30, 270, 300, 400])
    cfg = TrainConfig(seed=2)
    for epoch in range(3):
        for b in _batches(g, np.arange(len(g)), len(g), cfg, epoch, 64):
            assert set(g[b]) == {0, 1, 2, 3}
    visible = kgroups.visible_groups(g, 0.2, seed=2)
    for b in _batches(visible, np.arange(len(g)), len(g), cfg, 0, 64):
        assert set(visible[b]) == {-1, 0, 1, 2, 3}
