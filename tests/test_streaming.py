"""Features that stream from disk: the per-array .npy files, memory-mapped reads, and training
from a memory-mapped cache giving exactly what training from memory gives."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from fairviz.data import feature_store as store
from fairviz.data import features as F
from fairviz.data import loader
from tests.test_train import tiny_config, tiny_features


@pytest.mark.parametrize("dtype, row_shape", [(np.uint8, (3, 4, 4, 3)), (np.float32, (5,)),
                                              (np.int64, ()), ("<U7", ())])
def test_row_writer_writes_what_numpy_reads(tmp_path, dtype, row_shape):
    rng = np.random.default_rng(0)
    if str(dtype).startswith("<U"):
        arr = np.array([f"id-{i}" for i in range(23)], dtype=dtype)
    else:
        arr = (rng.random((23, *row_shape)) * 100).astype(dtype)
    writer = store.RowWriter(tmp_path / "a.npy", arr.dtype, row_shape, max_rows=10**6)
    for chunk in np.array_split(arr, [1, 2, 10]):  # uneven appends
        writer.append(chunk)
    spec = writer.close()
    back = np.load(tmp_path / "a.npy", allow_pickle=False)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == arr.dtype and spec["shape"] == list(arr.shape)
    assert spec["bytes"] == (tmp_path / "a.npy").stat().st_size
    data = (tmp_path / "a.npy").read_bytes()
    assert spec["data_crc32"] == zlib.crc32(data[len(data) - arr.nbytes:])
    for mmap in (False, True):
        got = store.read_arrays(tmp_path, {"a": spec}, mmap=mmap)["a"]
        np.testing.assert_array_equal(got, arr)
        assert store.is_mapped(got) is mmap


def test_fewer_rows_than_the_bound_and_none(tmp_path):
    spec = store.write_array(tmp_path / "e.npy", np.zeros((0, 2, 2), dtype=np.uint8))
    assert np.load(tmp_path / "e.npy").shape == (0, 2, 2)
    assert store.read_arrays(tmp_path, {"e": spec}, mmap=True)["e"].shape == (0, 2, 2)
    writer = store.RowWriter(tmp_path / "f.npy", np.uint8, (2,), max_rows=10**9)
    writer.append(np.ones((3, 2), dtype=np.uint8))
    writer.close()
    assert np.load(tmp_path / "f.npy").shape == (3, 2)  # the header says 3, not the bound


def test_take_rows_copies_and_releases(tmp_path):
    arr = np.arange(40 * 5000, dtype=np.uint8).reshape(40, 5000)
    spec = store.write_array(tmp_path / "v.npy", arr)
    mapped = store.read_arrays(tmp_path, {"v": spec}, mmap=True)["v"]
    idx = [7, 3, 3, 39, 0]
    rows = store.take_rows(mapped, idx)
    assert not store.is_mapped(rows) and rows.flags.writeable
    np.testing.assert_array_equal(rows, arr[idx])
    np.testing.assert_array_equal(store.take_rows(mapped, idx), arr[idx])  # after MADV_DONTNEED
    np.testing.assert_array_equal(store.take_rows(arr, idx), arr[idx])


@pytest.fixture
def cached(tmp_path):
    """tiny_features written to a cache folder, read back in memory and memory-mapped."""
    feats = tiny_features(n=160)
    path = F.save_feature_cache(tmp_path / "c", feats, "k", {"source": "test"})
    return feats, F.load_feature_cache(path, "k"), F.load_feature_cache(path, "k", mmap=True)


def test_memory_mapped_cache_holds_the_same_arrays(cached):
    feats, memory, mapped = cached
    assert not store.is_mapped(memory.video)
    assert all(store.is_mapped(getattr(mapped, k)) for k in ("video", "mfcc", "text"))
    for fs in (memory, mapped):
        for k in F.ARRAY_FIELDS:
            np.testing.assert_array_equal(getattr(fs, k), getattr(feats, k))
        assert fs.ids == feats.ids


def test_memory_mapped_batches_equal_in_memory_batches(cached):
    from fairviz.train import prepared_from_features

    _, memory, mapped = cached
    cfg = tiny_config()
    a, b = prepared_from_features(memory, cfg), prepared_from_features(mapped, cfg)
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    rows = [np.random.default_rng(s).permutation(a.train_idx)[:16] for s in range(5)]
    cpu = torch.device("cpu")
    for x, y in zip(loader.iter_batches(a.video, a.mfcc, a.text, rows, cpu),
                    loader.iter_batches(b.video, b.mfcc, b.text, rows, cpu)):
        for u, v in zip(x, y):
            assert torch.equal(u, v)


@pytest.mark.parametrize("method", ["ours", "balancing"])
def test_training_from_a_memory_mapped_cache_is_exact(cached, method):
    from fairviz.train import train

    _, memory, mapped = cached
    cfg = tiny_config(method, device="cpu", epochs=2)
    a, b = train(cfg, features=memory), train(cfg, features=mapped)
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    np.testing.assert_array_equal(a.predictions["score"], b.predictions["score"])


def test_damaged_memory_mapped_file_is_reported(cached, tmp_path):
    path = tmp_path / "c"
    video = path / "video.npy"
    data = bytearray(video.read_bytes())
    data[-5] ^= 0x01
    video.write_bytes(bytes(data))
    with pytest.raises(F.CacheError, match="video.npy fails its CRC-32 check"):
        F.load_feature_cache(path, "k", mmap=True)
    with pytest.raises(F.CacheError, match="video.npy fails its CRC-32 check"):
        F.load_feature_cache(path, "k")


@pytest.mark.parametrize("stream", [None, False, True])
def test_train_config_stream_chooses_the_memory_map(stream, tmp_path, monkeypatch):
    from fairviz.train import TrainConfig, load_features

    monkeypatch.setenv("FAIRVIZ_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(n_samples=12, data_params=dict(audio_seconds=0.25), frames=3, size=16, stream=stream)
    fs = load_features(cfg)
    assert fs.video.shape == (12, 3, 16, 16, 3)  # frames and size reach the synthetic generator
    assert store.is_mapped(fs.video) is bool(stream)  # synthetic data stays in memory by default


def test_bad_video_options_in_the_config():
    from fairviz.train import TrainConfig

    with pytest.raises(ValueError, match="stream must be true, false or null"):
        TrainConfig(stream="yes")
    with pytest.raises(ValueError, match="frame sampling must be one of"):
        TrainConfig(frame_sampling="random")
    with pytest.raises(ValueError, match="frames must be a whole number >= 1"):
        TrainConfig(frames=0)
    with pytest.raises(ValueError, match="size must be a whole number >= 1"):
        TrainConfig(size=-2)
