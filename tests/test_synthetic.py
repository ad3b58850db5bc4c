"""The synthetic interview generator: shapes, determinism, Y independent of S, and that every
modality is both learnable (Y) and bias-able (S) with simple hand-made features; real-file export."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave

import numpy as np
import pytest

from fairviz.data import (
    DEFAULT_AUDIO_SECONDS,
    DEFAULT_FRAMES,
    DEFAULT_N_SAMPLES,
    DEFAULT_SIZE,
    Interviews,
    balanced_splits,
    export_examples,
    make_synthetic,
)
from fairviz.data import synthetic as syn
from fairviz.data.synthetic._export import _has_libx264
from fairviz.data.synthetic._text import _BACKGROUND_GROUP

ARRAYS = ("video", "audio", "label", "group", "quality")


# ----------------------------------------------------------------------------------------------
# Simple hand-made features (deliberately not the model's features)
# ----------------------------------------------------------------------------------------------
def video_features(video: np.ndarray) -> np.ndarray:
    """Mean colour, border (background) colour, frame-difference energy overall and per row."""
    out = []
    for start in range(0, len(video), 500):  # chunks keep memory small
        v = video[start : start + 500].astype(np.float32) / 255.0  # (n, T, H, W, 3)
        n, t = v.shape[:2]
        mean_rgb = v.mean(axis=(1, 2, 3))
        border = np.concatenate(
            [v[:, :, :2].reshape(n, t, -1, 3), v[:, :, :, :2].reshape(n, t, -1, 3)], axis=2
        ).mean(axis=(1, 2))
        diff = np.abs(np.diff(v, axis=1))
        energy = np.log(diff.mean(axis=(1, 2, 3, 4)) + 1e-6)
        row_energy = diff.mean(axis=(1, 3, 4))
        out.append(np.column_stack([mean_rgb, border, energy, row_energy]))
    return np.concatenate(out)


def audio_features(audio: np.ndarray, sr: int = 16000) -> np.ndarray:
    """RMS envelope stats, voiced fraction, log spectral centroid and log zero-crossing rate of
    the loud frames."""
    fl = 512
    window = np.hanning(fl).astype(np.float32)
    freqs = np.fft.rfftfreq(fl, 1.0 / sr).astype(np.float32)
    out = []
    for start in range(0, len(audio), 500):  # chunks keep memory small
        a = audio[start : start + 500]
        n, length = a.shape
        fr = a[:, : length // fl * fl].reshape(n, -1, fl)
        rms = np.sqrt((fr.astype(np.float64) ** 2).mean(axis=2))
        loud = rms >= 0.5 * rms.max(axis=1, keepdims=True)
        power = np.abs(np.fft.rfft(fr * window, axis=2)).astype(np.float32) ** 2
        centroid = (power @ freqs) / (power.sum(axis=2) + 1e-12)
        zcr = (np.signbit(fr[:, :, 1:]) != np.signbit(fr[:, :, :-1])).mean(axis=2)
        log_cent = (np.log(centroid + 1.0) * loud).sum(axis=1) / loud.sum(axis=1)
        log_zcr = (np.log(zcr + 1e-3) * loud).sum(axis=1) / loud.sum(axis=1)
        out.append(np.column_stack([rms.mean(1), rms.std(1), (rms > 0.02).mean(1), log_cent, log_zcr]))
    return np.concatenate(out)


@pytest.fixture(scope="module")
def default_data() -> Interviews:
    return make_synthetic(seed=0)  # the default dataset


@pytest.fixture(scope="module")
def default_features(default_data):
    d = default_data
    return {"video": video_features(d.video), "audio": audio_features(d.audio)}


# ----------------------------------------------------------------------------------------------
# Shapes, types, validation
# ----------------------------------------------------------------------------------------------
def test_defaults_documented():
    assert (DEFAULT_N_SAMPLES, DEFAULT_FRAMES, DEFAULT_SIZE, DEFAULT_AUDIO_SECONDS) == (4000, 8, 32, 1.0)
    doc = syn.__doc__
    for name in syn.DEFAULT_STRENGTHS:
        assert f"``{name}``" in doc, f"strength {name} is not in the module docstring table"


def test_shapes_types_and_subset():
    d = make_synthetic(12, seed=5, frames=4, size=24, audio_seconds=0.5)
    assert len(d) == 12
    assert d.video.shape == (12, 4, 24, 24, 3) and d.video.dtype == np.uint8
    assert d.audio.shape == (12, 8000) and d.audio.dtype == np.float32
    assert np.abs(d.audio).max() <= 1.0 and np.abs(d.audio).max() > 0.05
    assert d.sample_rate == 16000
    assert d.label.dtype == np.float64 and ((d.label >= 0) & (d.label <= 1)).all()
    assert d.group.dtype == np.int64 and set(d.group.tolist()) == {0, 1}
    assert (d.group == 1).sum() == 6  # balanced pairs
    assert d.quality.dtype == np.float64
    assert len(set(d.ids)) == 12 and all(isinstance(t, str) and len(t) > 50 for t in d.text)
    params = json.loads(json.dumps(d.params))
    assert params["n_samples"] == 12 and params["seed"] == 5 and params["frames"] == 4
    assert params["video_shortcut"] == syn.DEFAULT_STRENGTHS["video_shortcut"]

    sub = d.subset([3, 0, 7])
    assert len(sub) == 3 and sub.ids == [d.ids[3], d.ids[0], d.ids[7]]
    assert np.array_equal(sub.video[1], d.video[0]) and sub.text[2] == d.text[7]
    mask = d.group == 1
    assert np.array_equal(d.subset(mask).label, d.label[mask])
    with pytest.raises(ValueError):
        d.subset([0, 99])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"n_samples": 4, "size": 8}, "size"),
        ({"n_samples": 4, "frames": 0}, "frames"),
        ({"n_samples": 4, "audio_seconds": 0}, "audio_seconds"),
        ({"n_samples": 4, "seed": -1}, "seed"),
        ({"n_samples": 4, "video_signl": 0.5}, "unknown strength"),
        ({"n_samples": 4, "text_shortcut": 1.5}, "text_shortcut"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(**kwargs)


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------
def test_same_seed_byte_identical_other_seed_differs_and_prefix_stable():
    kw = dict(frames=4, size=32, audio_seconds=0.5)
    a = make_synthetic(40, seed=3, **kw)
    b = make_synthetic(40, seed=3, **kw)
    c = make_synthetic(40, seed=4, **kw)
    prefix = make_synthetic(25, seed=3, **kw)  # odd: the last pair is cut
    for name in ARRAYS:
        x = getattr(a, name)
        assert x.tobytes() == getattr(b, name).tobytes(), name
        assert x.tobytes() != getattr(c, name).tobytes(), name
        assert x[:25].tobytes() == getattr(prefix, name).tobytes(), name
    assert a.text == b.text and a.text != c.text and a.text[:25] == prefix.text
    assert a.ids == b.ids and a.params == b.params


def test_strengths_change_the_data():
    none = make_synthetic(60, seed=1, frames=2, size=16, audio_seconds=0.1, text_shortcut=0.0)
    full = make_synthetic(60, seed=1, frames=2, size=16, audio_seconds=0.1, text_shortcut=1.0)
    linked = [p for bank in _BACKGROUND_GROUP for p in bank]
    assert not any(p in t for t in none.text for p in linked)
    for t, s in zip(full.text, full.group):
        assert any(p in t for p in _BACKGROUND_GROUP[s])
    # q and S draws do not depend on the strengths
    assert np.array_equal(none.quality, full.quality) and np.array_equal(none.group, full.group)


# ----------------------------------------------------------------------------------------------
# The fairness design: Y independent of S; each modality carries Y and S
# ----------------------------------------------------------------------------------------------
def test_true_label_independent_of_group(default_data):
    d = default_data
    assert len(d) == DEFAULT_N_SAMPLES
    assert d.video.shape[1:] == (DEFAULT_FRAMES, DEFAULT_SIZE, DEFAULT_SIZE, 3)
    assert (d.group == 1).mean() == 0.5
    gap = d.label[d.group == 1].mean() - d.label[d.group == 0].mean()
    assert abs(gap) < 0.02  # sd of the gap is ~0.006 here
    assert abs(np.corrcoef(d.quality, d.group)[0, 1]) < 0.05
    assert np.corrcoef(d.label, d.quality)[0, 1] > 0.9  # three raters agree with q


def _modality_scores(features, labels, groups, train, test, sparse=False):
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if sparse:
        ridge = Ridge(alpha=1.0)  # RidgeCV on sparse input is slow
        logit = LogisticRegression(max_iter=2000)
    else:
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
        logit = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    ridge.fit(features[train], labels[train])
    pcc = np.corrcoef(ridge.predict(features[test]), labels[test])[0, 1]
    logit.fit(features[train], groups[train])
    acc = (logit.predict(features[test]) == groups[test]).mean()
    return pcc, acc


@pytest.mark.parametrize("modality", ["video", "audio", "text"])
def test_each_modality_is_learnable_and_biasable(default_data, default_features, modality):
    d = default_data
    split = balanced_splits(d.label, d.group, seed=0)
    train, test = split["train"], split["test"]
    assert len(test) >= 1000
    if modality in default_features:
        pcc, acc = _modality_scores(default_features[modality], d.label, d.group, train, test)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit([d.text[i] for i in train])
        pcc, acc = _modality_scores(tfidf.transform(d.text), d.label, d.group, train, test, sparse=True)
    # held-out: Y predictable (PCC > 0.4) and S predictable well above chance (test is balanced)
    assert pcc > 0.4, f"{modality}: PCC {pcc:.3f}"
    assert acc > 0.68, f"{modality}: S accuracy {acc:.3f}"


def test_rater_bias_makes_a_plain_model_unfair_and_a_blind_one_need_not_be(default_data, default_features):
    """The point of the data: on biased labels a model picks up the S proxy (SPDD grows with
    alpha, PCC on true Y falls); S-neutral scoring stays fair and accurate."""
    from scipy.stats import wasserstein_distance
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from fairviz.data import inject_label_bias

    d = default_data
    split = balanced_splits(d.label, d.group, seed=0)
    train, test = split["train"], split["test"]
    x = np.hstack([default_features["video"], default_features["audio"]])
    x = StandardScaler().fit(x[train]).transform(x)
    x_s = np.hstack([x, 3.0 * d.group[:, None]])  # S given explicitly ...
    x_neutral = x_s[test].copy()
    x_neutral[:, -1] = 1.5  # ... and set to a constant when scoring
    g = d.group[test]
    res = {}
    for alpha in (1, 4):
        y_biased = inject_label_bias(d.label[train], d.group[train], alpha, seed=0)
        plain = Ridge(alpha=10.0).fit(x[train], y_biased).predict(x[test])
        blind = Ridge(alpha=10.0).fit(x_s[train], y_biased).predict(x_neutral)
        res[alpha] = {
            name: (np.corrcoef(s, d.label[test])[0, 1], wasserstein_distance(s[g == 1], s[g == 0]))
            for name, s in (("plain", plain), ("blind", blind))
        }
    pcc1, spdd1 = res[1]["plain"]
    pcc4, spdd4 = res[4]["plain"]
    assert spdd4 > 0.08 and spdd4 > 4 * spdd1, res
    assert pcc4 < pcc1 - 0.05, res
    blind_pcc4, blind_spdd4 = res[4]["blind"]
    assert blind_spdd4 < spdd4 / 4 and blind_pcc4 > pcc4 + 0.05, res


def test_shortcut_strength_zero_removes_the_proxy():
    kw = dict(frames=2, size=16, audio_seconds=0.25)
    d = make_synthetic(600, seed=2, video_shortcut=0.0, **kw)
    feats = video_features(d.video)
    half = np.arange(len(d)) < 400
    _, acc = _modality_scores(feats, d.label, d.group, np.flatnonzero(half), np.flatnonzero(~half))
    assert acc < 0.62


# ----------------------------------------------------------------------------------------------
# Export as real files
# ----------------------------------------------------------------------------------------------
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg not installed"
)


@needs_ffmpeg
def test_export_examples_writes_playable_mp4_wav_txt(tmp_path):
    import cv2
    import pandas as pd

    d = make_synthetic(4, seed=0)
    out = tmp_path / "examples"
    manifest = export_examples(d, out, n=2)
    assert list(manifest.columns) == ["video", "label", "group", "transcript", "wav", "txt"]
    assert len(manifest) == 2
    on_disk = pd.read_csv(out / "manifest.csv")
    assert list(on_disk["video"]) == [f"{d.ids[0]}.mp4", f"{d.ids[1]}.mp4"]
    np.testing.assert_allclose(on_disk["label"], d.label[:2])
    assert list(on_disk["group"]) == d.group[:2].tolist()
    assert list(on_disk["transcript"]) == d.text[:2]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers

    for i, row in on_disk.iterrows():
        mp4 = out / row["video"]
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,pix_fmt",
             "-of", "json", str(mp4)],
            capture_output=True, text=True, check=True,
        )
        streams = json.loads(probe.stdout)["streams"]
        kinds = {s["codec_type"]: s for s in streams}
        assert set(kinds) == {"video", "audio"}
        if _has_libx264(shutil.which("ffmpeg")):
            assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["pix_fmt"] == "yuv420p"
        assert kinds["audio"]["codec_name"] == "aac"

        cap = cv2.VideoCapture(str(mp4))
        frames = []
        ok, frame = cap.read()
        while ok:
            frames.append(frame)
            ok, frame = cap.read()
        cap.release()
        assert len(frames) == DEFAULT_FRAMES
        small = np.stack(
            [cv2.cvtColor(cv2.resize(f, (DEFAULT_SIZE, DEFAULT_SIZE), interpolation=cv2.INTER_AREA),
                          cv2.COLOR_BGR2RGB) for f in frames]
        )
        assert np.abs(small.astype(float) - d.video[i]).mean() < 8.0  # lossy, but the same picture

        with wave.open(str(out / row["wav"]), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        np.testing.assert_allclose(pcm / 32767.0, d.audio[i], atol=1e-4)
        assert (out / row["txt"]).read_text(encoding="utf-8").strip() == d.text[i]


def test_export_examples_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    d = make_synthetic(2, seed=0, frames=2, size=16, audio_seconds=0.1)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="ffmpeg"):
        export_examples(d, tmp_path / "x", n=1)


def test_bench_results_section_update_keeps_other_sections(tmp_path):
    import importlib.util

    from fairviz.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("bench_data", REPO_ROOT / "bench" / "bench_data.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = tmp_path / "RESULTS.md"
    bench.update_section("bench_data_generate", "first", results)
    assert results.read_text().startswith("# Benchmarks\n")
    results.write_text(results.read_text() + "\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n")
    bench.update_section("bench_data_generate", "second", results)
    text = results.read_text()
    assert "second" in text and "first" not in text and "keep me" in text
    assert text.count("<!-- bench_data_generate:start -->") == 1


def test_k_groups_with_shares():
    """group_shares: k groups in about the asked proportions, proxies ordered along the group
    codes, a per-group text bank, labels independent of the group; bad shares are refused."""
    kw = dict(frames=2, size=16, audio_seconds=0.1)
    d = make_synthetic(400, seed=1, group_shares=[1, 2, 3, 4], **kw)
    counts = np.bincount(d.group, minlength=4)
    assert counts.sum() == 400 and set(d.group.tolist()) == {0, 1, 2, 3}
    assert np.abs(counts / 400 - [0.1, 0.2, 0.3, 0.4]).max() < 0.05  # binomial sd <= 0.025
    assert d.params["group_shares"] == [0.1, 0.2, 0.3, 0.4]
    # the video appearance proxy (mean red of the background corner) moves monotonically with g
    corner = d.video[:, :, :3, :3, 0].reshape(400, -1).mean(1)
    per_group = [corner[d.group == g].mean() for g in range(4)]
    assert all(a > b for a, b in zip(per_group, per_group[1:]))
    full = make_synthetic(60, seed=1, group_shares=[1, 1, 1], text_shortcut=1.0, **kw)
    for t, g in zip(full.text, full.group):
        assert ["Amberly", "Brennock", "Castelmar"][g] in t
    same = make_synthetic(60, seed=1, group_shares=[1, 1, 1], **kw)
    assert np.array_equal(same.group, full.group) and np.array_equal(same.label, full.label)
    for bad in ([1.0], [1, 0, 2], [1, -1], "ab", [1] * 9):
        with pytest.raises(ValueError, match="group_shares"):
            make_synthetic(10, group_shares=bad, **kw)


def test_binary_default_unchanged_by_the_k_group_path():
    """Without group_shares the data are the binary balanced pairs, as before (pinned values)."""
    d = make_synthetic(6, seed=0, frames=2, size=16, audio_seconds=0.1)
    two = make_synthetic(6, seed=0, frames=2, size=16, audio_seconds=0.1, group_shares=None)
    assert "group_shares" not in d.params
    for key in ARRAYS:
        assert np.array_equal(getattr(d, key), getattr(two, key))
    assert sorted(np.bincount(d.group).tolist()) == [3, 3]
