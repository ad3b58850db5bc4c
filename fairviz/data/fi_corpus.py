"""A generated corpus in the ChaLearn First Impressions V2 layout, to try the recipe end to end
(and to benchmark it) without the real data, which needs the ChaLearn licence.

    from fairviz.data.fi_corpus import make_fi_corpus
    make_fi_corpus("/tmp/fi", 200)        # 200 clips of 15 s, 456×256, 30 fps, AAC audio

The folder holds what ``fairviz.data.first_impressions.build_manifest`` reads: the clips in
sub-folders (``train-1/training80_01/<id>.mp4`` …), ``annotation_{training,validation,test}.pkl``
(protocol-2 pickles of ``{trait: {"<id>.mp4": value}}``), ``transcription_*.pkl`` and the
``eth_gender_annotations_{dev,test}.csv`` files. Splits are 3 : 1 : 1.

Each clip is ffmpeg's moving ``testsrc2`` pattern with its hue set by the clip's ``interview``
score, and a sine tone whose pitch depends on gender (a group proxy, as in the paper's
setting); the transcript names the score's band. ``unique`` clips are encoded and the others are
hard links to them (with the same score and demographics), so a corpus of thousands of clips is
made in minutes; every file is still decoded on its own when features are built.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

from fairviz.data.video_clips import ffmpeg_binary

TRAITS = ("extraversion", "neuroticism", "agreeableness", "conscientiousness", "interview", "openness")
_PARTS = ("training", "training", "training", "validation", "test")  # split of clip i: _PARTS[i % 5]
_FOLDER = {"training": "train", "validation": "val", "test": "test"}
_PER_FOLDER = 80  # clips per sub-folder, as in the real data


def _video_codec(ffmpeg: str) -> list[str]:
    """H.264 (what First Impressions uses) when this ffmpeg has it, else MPEG-4 part 2."""
    out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True,
                         check=False).stdout
    if "libx264" in out:
        return ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    return ["-c:v", "mpeg4", "-q:v", "5"]


def _encode(path: Path, ffmpeg: str, codec: list[str], *, seconds: float, width: int, height: int,
            fps: int, hue: float, tone: float | None) -> None:
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if tone is not None:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={tone:.1f}:sample_rate=44100:duration={seconds}"]
    cmd += ["-vf", f"hue=h={hue:.1f}", *codec]
    if tone is not None:
        cmd += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    subprocess.run([*cmd, str(path)], check=True, capture_output=True)


def make_fi_corpus(
    root: str | os.PathLike,
    n: int,
    *,
    seconds: float = 15.0,
    width: int = 456,
    height: int = 256,
    fps: int = 30,
    audio: bool = True,
    unique: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` clips and the annotation files in the First Impressions layout under ``root``.

    Args:
        seconds, width, height, fps: clip length and picture (the real data: 15 s, 456×256, 30).
        audio: mux an AAC tone into every clip.
        unique: clips actually encoded (None: all ``n``); clip ``i`` is a hard link (a copy where
            links are not possible) to clip ``i % unique`` and shares its score and groups.
        seed: the scores, other traits and ethnicities (genders alternate, so every split holds
            both).
        progress: ``progress(done, n)`` after each clip.

    Returns ``root``. Needs ``ffmpeg`` on PATH (``FAIRVIZ_FFMPEG`` overrides).
    """
    if n < 5:
        raise ValueError(f"n must be >= 5 (one clip per split at least); got {n}")
    root = Path(root)
    ffmpeg = ffmpeg_binary()
    codec = _video_codec(ffmpeg)
    unique = n if unique is None else max(5, min(int(unique), n))
    score, gender, ethnicity, traits = _draw_people(unique, seed)
    ann = {part: {t: {} for t in TRAITS} for part in _FOLDER}
    text = {part: {} for part in _FOLDER}
    demo = {"dev": [], "test": []}
    encoded: dict[int, Path] = {}
    for i in range(n):
        j = i % unique
        part = _PARTS[i % len(_PARTS)]
        vid = f"fi{i:09d}.{i % 1000:03d}.mp4"
        folder = root / f"{_FOLDER[part]}-1" / f"{part}80_{i // _PER_FOLDER + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / vid
        if j == i:
            _encode(path, ffmpeg, codec, seconds=seconds, width=width, height=height, fps=fps,
                    hue=300.0 * score[j], tone=(220.0 if gender[j] == 1 else 330.0) if audio else None)
            encoded[j] = path
        else:
            _link(encoded[j], path)
        for k, trait in enumerate(TRAITS):
            ann[part][trait][vid] = float(score[j] if trait == "interview" else traits[j, k])
        band = ("weak", "fair", "good", "strong")[min(3, int(score[j] * 4))]
        text[part][vid] = f"I think my answer was {band}. I worked on project number {j}."
        demo["test" if part == "test" else "dev"].append(f"{vid};{vid[:11]};{ethnicity[j]};{gender[j]}\n")
        if progress is not None:
            progress(i + 1, n)
    _write_annotations(root, ann, text, demo)
    return root


def _draw_people(unique: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per encoded clip: the interview score (unique,), gender (1 = male, 2 = female; alternating
    so both are in every split), ethnicity (1..3) and the six trait values (unique, 6)."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.05, 0.95, unique).round(6)
    gender = 1 + np.arange(unique) // len(_PARTS) % 2
    ethnicity = rng.integers(1, 4, unique)
    traits = rng.uniform(0, 1, (unique, len(TRAITS))).round(6)
    return score, gender, ethnicity, traits


def _link(source: Path, path: Path) -> None:
    """``path`` as a hard link to ``source`` (a copy where links are not possible)."""
    path.unlink(missing_ok=True)
    try:
        os.link(source, path)
    except OSError:
        shutil.copyfile(source, path)


def _write_annotations(root: Path, ann: dict, text: dict, demo: dict) -> None:
    """The annotation and transcript pickles per split, and the demographics CSVs, as the real
    data ships them (protocol-2 pickles of ``{trait: {video: value}}`` and ``{video: text}``)."""
    for part in _FOLDER:
        with open(root / f"annotation_{part}.pkl", "wb") as fh:
            pickle.dump(ann[part], fh, protocol=2)
        with open(root / f"transcription_{part}.pkl", "wb") as fh:
            pickle.dump(text[part], fh, protocol=2)
    for name, lines in demo.items():
        (root / f"eth_gender_annotations_{name}.csv").write_text(
            "VideoName;YouTubeID;Ethnicity;Gender\n" + "".join(lines), encoding="utf-8")
