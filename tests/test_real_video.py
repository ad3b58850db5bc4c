"""Real-video loaders: the generic manifest and the ChaLearn First Impressions V2 layout.

The fixture is built here, in exactly the FI layout: short mp4 clips written with OpenCV, an AAC
audio track muxed in with ffmpeg, videos in sub-folders, Python-2 style annotation pickles
(latin-1 byte strings), and the semicolon-separated gender/ethnicity CSVs.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairviz.data import features as F
from fairviz.data.first_impressions import build_manifest
from fairviz.data.video_dataset import (
    VideoReadError,
    encode_groups,
    load_manifest_features,
    read_audio,
    read_frames,
    read_manifest,
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

FPS = 10
N_FRAMES = 12
W, H = 48, 40
TRAITS = ("extraversion", "neuroticism", "agreeableness", "conscientiousness", "interview", "openness")


def frame_color(k: int, seed: int) -> tuple[int, int, int]:
    """RGB of frame k of clip `seed`: red encodes the frame index, blue the clip."""
    return (20 * k % 256, 128, (40 * seed + 30) % 256)


def make_clip(path: Path, seed: int, *, audio: bool = True, tone: float = 440.0) -> None:
    """A 1.2 s clip: solid-colour frames (see frame_color), a sine tone as AAC when `audio`."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    silent = path.with_name(path.stem + ".silent.mp4")
    writer = cv2.VideoWriter(str(silent), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    assert writer.isOpened()
    for k in range(N_FRAMES):
        r, g, b = frame_color(k, seed)
        writer.write(np.full((H, W, 3), (b, g, r), dtype=np.uint8))  # OpenCV writes BGR
    writer.release()
    if not audio:
        silent.rename(path)
        return
    wav = path.with_suffix(".wav")
    t = np.arange(int(16000 * N_FRAMES / FPS)) / 16000
    pcm = (0.4 * np.sin(2 * np.pi * tone * t) * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(silent), "-i", str(wav),
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", str(path)],
                   check=True)
    silent.unlink()
    wav.unlink()


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle as Python 2 writes it: str as latin-1 byte strings (BINSTRING)."""
    out = bytearray(b"\x80\x02")

    def put(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                put(k)
                put(v)
            out.extend(b"u")
        elif isinstance(o, str):
            raw = o.encode("latin1")
            out.extend((b"U" + bytes([len(raw)])) if len(raw) < 256 else (b"T" + struct.pack("<I", len(raw))))
            out.extend(raw)
        elif isinstance(o, float):
            out.extend(b"G" + struct.pack(">d", o))
        else:  # pragma: no cover
            raise TypeError(type(o))

    put(obj)
    out.extend(b".")
    return bytes(out)


# id -> (split file, sub-folder, seed, gender 1/2, ethnicity, audio?, tone)
CLIPS = {
    "aaaaaaaaaaa.000.mp4": ("training", "train-1/training80_01", 0, 1, 2, True, 300.0),
    "bbbbbbbbbbb.001.mp4": ("training", "train-1/training80_02", 1, 2, 1, True, 500.0),
    "ccccccccccc.002.mp4": ("training", "train-2/training80_03", 2, 2, 3, True, 700.0),
    "ddddddddddd.003.mp4": ("validation", "val-1/validation80_01", 3, 1, 2, True, 900.0),
    "eeeeeeeeeee.004.mp4": ("test", "test-1/test80_01", 4, 2, 2, False, 0.0),  # no audio track
}
CORRUPT = "fffffffffff.005.mp4"  # exists, but is not a video
GHOST = "ggggggggggg.006.mp4"  # annotated, no file


def interview_score(i: int) -> float:
    return round(0.15 + 0.1 * i, 6)


@pytest.fixture(scope="module")
def fi_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first_impressions")
    for vid, (_, folder, seed, _, _, audio, tone) in CLIPS.items():
        make_clip(root / folder / vid, seed, audio=audio, tone=tone)
    (root / "test-1" / "test80_01" / CORRUPT).write_bytes(b"\x00\x00\x00\x18ftypmp42 not really")
    split_of = {vid: spec[0] for vid, spec in CLIPS.items()}
    split_of[CORRUPT] = "test"
    split_of[GHOST] = "training"
    ids = list(split_of)
    for part in ("training", "validation", "test"):
        vids = [v for v in ids if split_of[v] == part]
        ann = {t: {v: (interview_score(ids.index(v)) if t == "interview" else 0.5 + 0.01 * j)
                   for v in vids} for j, t in enumerate(TRAITS)}
        text = {v: f"Bonjour, je suis {v[:3]}, café crème. I led a team of {ids.index(v) + 2}."
                for v in vids}
        if part == "training":  # as Python 2 wrote them
            (root / f"annotation_{part}.pkl").write_bytes(py2_pickle(ann))
            (root / f"transcription_{part}.pkl").write_bytes(py2_pickle(text))
        else:  # protocol 2 from Python 3 reads the same way
            with open(root / f"annotation_{part}.pkl", "wb") as fh:
                pickle.dump(ann, fh, protocol=2)
            with open(root / f"transcription_{part}.pkl", "wb") as fh:
                pickle.dump(text, fh, protocol=2)
    demo = {v: (spec[3], spec[4]) for v, spec in CLIPS.items()}
    demo[CORRUPT] = (1, 1)
    demo[GHOST] = (2, 2)
    header = "VideoName;YouTubeID;Ethnicity;Gender\n"
    dev = [v for v in ids if split_of[v] != "test"]
    test = [v for v in ids if split_of[v] == "test"]
    for name, vids in (("dev", dev), ("test", test)):
        lines = "".join(f"{v};{v[:11]};{demo[v][1]};{demo[v][0]}\n" for v in vids)
        (root / f"eth_gender_annotations_{name}.csv").write_text(header + lines)
    return root


def test_py2_pickle_needs_latin1(fi_root):
    raw = (fi_root / "transcription_training.pkl").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)  # what a plain Python 3 load does with Python 2 byte strings
    assert "café" in pickle.loads(raw, encoding="latin1")["aaaaaaaaaaa.000.mp4"]


def test_first_impressions_manifest(fi_root, tmp_path, caplog):
    out = tmp_path / "lists" / "manifest.csv"
    with caplog.at_level(logging.WARNING):
        df = build_manifest(fi_root, out)
    assert GHOST in caplog.text
    assert df.attrs["skipped"] == [{"video": GHOST, "reason": "video file not found under root"}]
    assert list(df.columns[:6]) == ["video", "label", "group", "transcript", "split", "id"]
    assert set(df["id"]) == set(CLIPS) | {CORRUPT}
    row = df.set_index("id").loc["ccccccccccc.002.mp4"]
    assert row["split"] == "train" and row["group"] == "female" and row["ethnicity"] == "african-american"
    assert row["label"] == pytest.approx(interview_score(2))
    assert "café crème" in row["transcript"]
    assert not Path(row["video"]).is_absolute()  # relative to the CSV's folder
    assert (out.parent / row["video"]).resolve() == (fi_root / "train-2/training80_03/ccccccccccc.002.mp4").resolve()
    assert df.set_index("id").loc["ddddddddddd.003.mp4", "split"] == "val"
    assert df.set_index("id").loc["ddddddddddd.003.mp4", "group"] == "male"
    assert list(df["split"]) == sorted(df["split"], key=["train", "val", "test"].index)
    written = pd.read_csv(out, keep_default_na=False)
    assert list(written["id"]) == list(df["id"])
    eth = build_manifest(fi_root, group="ethnicity")
    assert set(eth["group"]) == {"asian", "caucasian", "african-american"}
    assert Path(eth["video"].iloc[0]).is_absolute()
    with pytest.raises(ValueError, match="annotation"):
        build_manifest(tmp_path)


def test_fi_round_trips_into_the_manifest_tensors(fi_root, tmp_path, caplog):
    fi_csv = tmp_path / "fi.csv"
    fi_df = build_manifest(fi_root, fi_csv)
    with caplog.at_level(logging.WARNING):
        fs = load_manifest_features(fi_csv, frames=6, size=24, mfcc_steps=10)
    # The corrupt clip is skipped and reported by name; the silent one is kept as silence.
    assert fs.meta["n_skipped"] == 1 and fs.meta["skipped"][0]["video"].endswith(CORRUPT)
    assert CORRUPT in caplog.text
    assert [v.endswith("eeeeeeeeeee.004.mp4") for v in fs.meta["no_audio"]] == [True]
    assert len(fs) == len(CLIPS)
    assert fs.meta["group_labels"] == ["female", "male"] and fs.meta["privileged"] == "male"

    # The same videos written by hand as a generic manifest (absolute paths, 0/1 groups).
    rows = fi_df[fi_df["id"] != CORRUPT]
    generic = pd.DataFrame({
        "video": [str((fi_csv.parent / v).resolve()) for v in rows["video"]],
        "label": rows["label"],
        "group": (rows["group"] == "male").astype(int),
        "transcript": rows["transcript"],
        "split": rows["split"].map({"train": "training", "val": "validation", "test": "test"}),
    })
    generic_csv = tmp_path / "elsewhere" / "generic.csv"
    generic_csv.parent.mkdir()
    generic.to_csv(generic_csv, index=False)
    ref = load_manifest_features(generic_csv, frames=6, size=24, mfcc_steps=10)
    for name in ("video", "mfcc", "text", "label", "group"):
        np.testing.assert_array_equal(getattr(fs, name), getattr(ref, name), err_msg=name)
    np.testing.assert_array_equal(fs.split, ref.split)
    assert fs.ids == list(rows["id"])

    from fairviz.data.torch_data import InterviewDataset

    a, b = InterviewDataset(fs), InterviewDataset(ref)
    for i in range(len(fs)):
        for k in ("video", "mfcc", "text", "label", "group"):
            assert (a[i][k] == b[i][k]).all()

    # Frames: evenly spaced (centres of 6 equal stretches of 12 frames = 1, 3, 5, ...), RGB.
    for i, vid in enumerate(fs.ids):
        seed = CLIPS[vid][2]
        for j, k in enumerate([1, 3, 5, 7, 9, 11]):
            got = fs.video[i, j].reshape(-1, 3).mean(0)
            np.testing.assert_allclose(got, frame_color(k, seed), atol=6)
    # Audio: the tone is in the MFCC (clips differ), silence is flat.
    assert np.abs(fs.mfcc[0] - fs.mfcc[1]).max() > 1.0
    silent = fs.ids.index("eeeeeeeeeee.004.mp4")
    assert np.all(np.isfinite(fs.mfcc[silent])) and np.ptp(fs.mfcc[silent], axis=0).max() < 1e-3

    # A second load is a cache hit with the same arrays.
    again = load_manifest_features(fi_csv, frames=6, size=24, mfcc_steps=10)
    assert again.meta["cache_hit"] is True and again.meta["n_skipped"] == 1
    np.testing.assert_array_equal(again.video, fs.video)


def test_read_audio_and_frames_directly(fi_root):
    clip = fi_root / "train-1/training80_02/bbbbbbbbbbb.001.mp4"
    audio = read_audio(clip)
    assert audio.dtype == np.float32 and abs(len(audio) - 16000 * N_FRAMES / FPS) < 0.1 * 16000
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 500.0) < 5.0
    assert read_audio(fi_root / "test-1/test80_01/eeeeeeeeeee.004.mp4").size == 0
    frames = read_frames(clip, 6, 8)  # frames 1, 3, 5, 7, 9, 11: the centres of 6 stretches
    assert frames.shape == (6, 8, 8, 3) and frames.dtype == np.uint8
    for k, j in enumerate((1, 3, 5, 7, 9, 11)):
        np.testing.assert_allclose(frames[k].reshape(-1, 3).mean(0), frame_color(j, 1), atol=6)
    middle = read_frames(clip, 4, 8, "consecutive")  # frames 4..7
    for k in range(4):
        np.testing.assert_allclose(middle[k].reshape(-1, 3).mean(0), frame_color(4 + k, 1), atol=6)
    assert read_frames(clip, N_FRAMES, 8).shape[0] == N_FRAMES  # every frame
    with pytest.raises(VideoReadError, match=f"has {N_FRAMES} frames, fewer than the 24 asked for"):
        read_frames(clip, 24, 8)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="frames must be a whole number >= 1"):
            read_frames(clip, bad, 8)
        with pytest.raises(ValueError, match="size must be a whole number >= 1"):
            read_frames(clip, 4, bad)
    with pytest.raises(ValueError, match="frame sampling must be one of"):
        read_frames(clip, 4, 8, "random")


def test_missing_and_corrupt_videos_are_skipped_by_name(fi_root, tmp_path, caplog):
    good = fi_root / "train-1/training80_01/aaaaaaaaaaa.000.mp4"
    shutil.copy(good, tmp_path / "good.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"garbage" * 100)
    pd.DataFrame({"video": ["good.mp4", "missing.mp4", "broken.mp4"], "label": [0.5, 0.6, 0.7],
                  "group": ["a", "b", "b"]}).to_csv(tmp_path / "m.csv", index=False)
    with caplog.at_level(logging.WARNING):
        fs = load_manifest_features(tmp_path / "m.csv", frames=2, size=8, mfcc_steps=4)
    assert fs.ids == ["good.mp4"] and fs.meta["n_skipped"] == 2
    assert {s["video"] for s in fs.meta["skipped"]} == {"missing.mp4", "broken.mp4"}
    assert "missing.mp4" in caplog.text and "broken.mp4" in caplog.text and "2 of 3" in caplog.text
    assert fs.meta["group_labels"] == ["a", "b"] and fs.group.tolist() == [0]
    assert fs.split is None and fs.text.shape == (1, 384)

    pd.DataFrame({"video": ["missing.mp4", "broken.mp4"], "label": [0.5, 0.6],
                  "group": [0, 1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="none of the 2 videos.*missing.mp4.*broken.mp4"):
        load_manifest_features(tmp_path / "bad.csv", frames=2, size=8)


def test_manifest_cache_follows_the_files(fi_root, tmp_path):
    shutil.copy(fi_root / "train-1/training80_01/aaaaaaaaaaa.000.mp4", tmp_path / "v.mp4")
    csv = tmp_path / "m.csv"
    pd.DataFrame({"video": ["v.mp4"], "label": [0.5], "group": [1]}).to_csv(csv, index=False)
    first = load_manifest_features(csv, frames=2, size=8, mfcc_steps=4)
    assert load_manifest_features(csv, frames=2, size=8, mfcc_steps=4).meta["cache_hit"] is True
    assert load_manifest_features(csv, frames=3, size=8, mfcc_steps=4).meta["cache_hit"] is False
    shutil.copy(fi_root / "train-1/training80_02/bbbbbbbbbbb.001.mp4", tmp_path / "v.mp4")
    changed = load_manifest_features(csv, frames=2, size=8, mfcc_steps=4)
    assert changed.meta["cache_hit"] is False
    assert not np.array_equal(changed.video, first.video)


def test_encode_groups():
    codes, info = encode_groups(["male", "female", "male"])
    assert codes.tolist() == [1, 0, 1] and info["group_labels"] == ["female", "male"]
    codes, info = encode_groups(["male", "female"], privileged="female")
    assert codes.tolist() == [0, 1] and info["privileged"] == "female"
    codes, info = encode_groups([1, 0, 0])
    assert codes.tolist() == [1, 0, 0] and info["group_labels"] == [0, 1]
    codes, _ = encode_groups(["1", "0"])
    assert codes.tolist() == [1, 0]
    codes, info = encode_groups(["asian", "caucasian", "african-american"], privileged="caucasian")
    assert codes.tolist() == [0, 1, 0] and info["group_labels"] == ["not caucasian", "caucasian"]
    assert info["group_members"]["0"] == ["african-american", "asian"]
    codes, _ = encode_groups([2, 1, 2], privileged="2")  # as typed on the command line
    assert codes.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="privileged=VALUE"):
        encode_groups(["a", "b", "c"])
    with pytest.raises(ValueError, match="does not occur"):
        encode_groups(["a", "b"], privileged="z")


def test_encode_groups_keeps_k_groups_when_asked():
    codes, info = encode_groups(["b", "a", "c", "a"], all_groups=True)
    assert codes.tolist() == [1, 0, 2, 0] and codes.dtype == np.int64
    assert info["group_labels"] == ["a", "b", "c"] and info["privileged"] is None
    assert info["group_members"] == {"0": ["a"], "1": ["b"], "2": ["c"]}
    for two in (["male", "female", "male"], [1, 0, 0], ["1", "0"]):  # two values: coded as before
        plain, plain_info = encode_groups(two)
        k, k_info = encode_groups(two, all_groups=True)
        assert k.tolist() == plain.tolist() and k_info == plain_info
    codes, _ = encode_groups(["b", "a", "c"], privileged="c", all_groups=True)  # privileged wins
    assert codes.tolist() == [0, 0, 1]


def test_manifest_with_k_groups_trains_as_k_groups(fi_root, tmp_path, capsys):
    from fairviz.cli import main
    from fairviz.train import TrainConfig, load_features

    for i, vid in enumerate(list(CLIPS)[:4]):
        shutil.copy(fi_root / CLIPS[vid][1] / vid, tmp_path / f"v{i}.mp4")
    csv = tmp_path / "m.csv"
    pd.DataFrame({"video": [f"v{i}.mp4" for i in range(4)], "label": [0.2, 0.4, 0.6, 0.8],
                  "group": ["white", "black", "asian", "black"]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="privileged=VALUE"):
        load_manifest_features(csv, frames=2, size=8, mfcc_steps=4)
    fs = load_manifest_features(csv, frames=2, size=8, mfcc_steps=4, all_groups=True)
    assert fs.group.tolist() == [2, 1, 0, 1] and fs.meta["group_labels"] == ["asian", "black", "white"]
    two = load_manifest_features(csv, frames=2, size=8, mfcc_steps=4, privileged="white")
    assert two.group.tolist() == [1, 0, 0, 0] and two.meta["cache_hit"] is False  # another cache entry
    feats = load_features(TrainConfig(method="ours", data=str(csv), frames=2, size=8))
    assert feats.group.tolist() == [2, 1, 0, 1] and feats.meta["group_labels"] == ["asian", "black", "white"]
    assert main(["data", "manifest", str(csv), "--frames", "2", "--size", "8", "--all-groups", "--quiet"]) == 0
    assert "0 = asian, 1 = black, 2 = white" in capsys.readouterr().out


def test_manifest_validation(tmp_path):
    def write(df):
        df.to_csv(tmp_path / "m.csv", index=False)
        return tmp_path / "m.csv"

    with pytest.raises(ValueError, match=r"lacks column\(s\) \['group'\]"):
        read_manifest(write(pd.DataFrame({"video": ["a.mp4"], "label": [1.0]})))
    with pytest.raises(ValueError, match="non-numeric label.*line"):
        read_manifest(write(pd.DataFrame({"video": ["a.mp4"], "label": ["high"], "group": [1]})))
    with pytest.raises(ValueError, match="unknown split"):
        read_manifest(write(pd.DataFrame({"video": ["a.mp4"], "label": [1], "group": [1],
                                          "split": ["holdout"]})))
    with pytest.raises(ValueError, match="duplicate"):
        read_manifest(write(pd.DataFrame({"video": ["a.mp4", "a.mp4"], "label": [1, 0], "group": [1, 0]})))
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "nope.csv")
    df = read_manifest(write(pd.DataFrame({"video": ["sub/a.mp4"], "label": [1], "group": [1]})))
    assert df["path"][0] == str(tmp_path.resolve() / "sub/a.mp4") and df["transcript"][0] == ""


def test_synthetic_export_round_trip(tmp_path):
    """export_examples' mp4 files read back close to the generated frames (RGB, order, size)."""
    from fairviz.data.synthetic import export_examples, make_synthetic

    iv = make_synthetic(2, seed=0, frames=4, size=32, audio_seconds=1.0)
    export_examples(iv, tmp_path, n=2)
    fs = load_manifest_features(tmp_path / "manifest.csv", frames=4, size=32, mfcc_steps=10)
    assert fs.meta["n_skipped"] == 0 and fs.video.shape == (2, 4, 32, 32, 3)
    err = np.abs(fs.video.astype(float) - iv.video.astype(float)).mean()
    assert err < 12, err
    direct = F.compute_mfcc(iv.audio, steps=10)
    assert np.corrcoef(direct.ravel(), fs.mfcc.ravel())[0, 1] > 0.9
    np.testing.assert_array_equal(fs.label, iv.label.astype(np.float32))


def test_cli_first_impressions_and_manifest(fi_root, tmp_path, capsys):
    from fairviz.cli import main

    out = tmp_path / "fi.csv"
    assert main(["data", "first-impressions", str(fi_root), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert out.is_file() and "6 videos" in captured.out and GHOST in captured.err
    assert main(["data", "manifest", str(out), "--frames", "2", "--size", "8", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert CORRUPT in captured.err and "5 candidates" in captured.out and "cache:" in captured.out
    assert main(["data", "manifest", str(tmp_path / "none.csv")]) == 2
