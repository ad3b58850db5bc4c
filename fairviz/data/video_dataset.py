"""Real interview videos listed in a manifest CSV → a cached ``FeatureSet``.

The manifest is a CSV with one row per video:

=============  ==========  ===============================================================
column         required    meaning
=============  ==========  ===============================================================
``video``      yes         path of the clip; a relative path is relative to the CSV's folder
``label``      yes         the score to predict (a number, e.g. in [0, 1])
``group``      yes         the sensitive attribute: any two values (e.g. ``female``/``male``)
``transcript`` no          what is said (empty when missing)
``split``      no          ``train``/``val``/``test`` (``training``/``validation`` accepted)
``id``         no          candidate id (default: the ``video`` value as written)
=============  ==========  ===============================================================

Per video:

- **frames**: OpenCV, ``frames`` frames of the clip (``sampling="uniform"``: at the centres of
  equal stretches of the whole clip; ``"consecutive"``: a run of neighbouring frames from its
  middle), each resized (no crop) to ``size × size``, converted BGR → RGB: uint8
  ``(frames, size, size, 3)``, written to the feature cache as each clip is decoded;
- **audio**: ``ffmpeg`` decodes the first audio stream to 16 kHz mono signed 16-bit PCM on its
  stdout, then MFCC (``fairviz.data.features.compute_mfcc``). A clip without an audio stream
  gets the MFCC of silence and is listed in ``meta["no_audio"]``;
- **text**: the transcript through the frozen text model (``features.embed_texts``).

A video that is missing, that OpenCV cannot decode, or that has fewer frames than ``frames``
is *skipped*: it is logged by name, listed in
``meta["skipped"]`` (``[{"video", "reason"}]``) with the count in ``meta["n_skipped"]``; a
ValueError is raised when nothing is left.

**Groups** become codes {0, 1} (1 = privileged) with ``meta["group_labels"][code]`` = the
original value:

- ``privileged=VALUE``: rows whose group equals VALUE are 1, every other row 0 (so a column with
  more than two values can be compared one-against-the-rest);
- otherwise, values that are already 0/1 keep their meaning; any other two values are sorted and
  the *last* becomes 1 (``female``/``male`` → male = 1); more than two values is a ValueError.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from fairviz.data import features as F
from fairviz.metrics._validate import factorize_groups

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("video", "label", "group")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "dev": "val", "test": "test", "testing": "test"}


#: How frames are picked from a clip: "uniform" spreads them over the whole clip (the centres of
#: equal stretches); "consecutive" takes a run of neighbouring frames from its middle.
FRAME_SAMPLINGS = ("uniform", "consecutive")


class VideoReadError(ValueError):
    """A video that cannot be read (missing file, no decodable frames, ffmpeg failure)."""


def _default_frames_size() -> tuple[int, int]:
    """The synthetic data's frame count and size, so one model fits both sources."""
    try:
        from fairviz.data import synthetic

        return int(synthetic.DEFAULT_FRAMES), int(synthetic.DEFAULT_SIZE)
    except (ImportError, AttributeError):  # pragma: no cover
        return 8, 32


# --------------------------------------------------------------------------------------------
# Reading one video
# --------------------------------------------------------------------------------------------


def check_video_options(frames: int | None, size: int | None, sampling: str = "uniform") -> None:
    """ValueError naming the bad value when frames / size are not whole numbers >= 1 (None is
    allowed: the default) or ``sampling`` is not one of ``FRAME_SAMPLINGS``."""
    for name, value, what in (("frames", frames, "frames per clip"), ("size", size, "frame side in pixels")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1 ({what}); got {value!r}")
    if sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {list(FRAME_SAMPLINGS)}; got {sampling!r}")


def check_video_shape(shape, frames: int | None, size: int | None) -> None:
    """ValueError when video features of ``shape`` ``(n, T, H, W, 3)`` are not ``frames`` frames
    of ``size × size`` (None: any)."""
    _, t, h, w, _ = shape
    if (frames is not None and t != frames) or (size is not None and (h, w) != (size, size)):
        want = f"{frames or t} frames of {size or h}x{size or w}"
        raise ValueError(
            f"the features hold {t} frames of {h}x{w} per clip, but {want} were asked for; "
            f"build features at that resolution or use --frames {t} --size {h}"
        )


def read_frames(path: str | os.PathLike, frames: int, size: int, sampling: str = "uniform") -> np.ndarray:
    """``frames`` RGB frames of the clip, resized (no crop) to ``size × size``.

    ``sampling="uniform"``: frame ``k`` of ``frames`` is the clip's frame at the centre of the
    k-th of ``frames`` equal stretches; ``"consecutive"``: ``frames`` consecutive frames from the
    middle of the clip. Returns uint8 ``(frames, size, size, 3)``. Raises VideoReadError when
    the file is missing, has no decodable frame, or has fewer frames than ``frames``.
    """
    import cv2

    path = Path(path)
    check_video_options(frames, size, sampling)
    if not path.is_file():
        raise VideoReadError("file not found")
    count = 0
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError("OpenCV cannot open it")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count >= frames:
            wanted = frame_indices(count, frames, sampling)
            want = set(wanted.tolist())
            got: dict[int, np.ndarray] = {}
            for i in range(int(wanted.max()) + 1):
                if not cap.grab():
                    break
                if i not in want:
                    continue
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    got[i] = _resize_rgb(frame, size)
            if all(int(i) in got for i in wanted):
                return np.stack([got[int(i)] for i in wanted])
    finally:
        cap.release()
    # Frame count unknown, understated or overstated: decode everything (small copies) and pick.
    cap = cv2.VideoCapture(str(path))
    small = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            small.append(_resize_rgb(frame, size))
    finally:
        cap.release()
    if not small:
        raise VideoReadError("no decodable video frames")
    if len(small) < frames:
        raise VideoReadError(f"the clip has {len(small)} frames, fewer than the {frames} asked for; "
                             f"use {len(small)} frames or fewer")
    return np.stack([small[i] for i in frame_indices(len(small), frames, sampling)])


def frame_indices(count: int, frames: int, sampling: str = "uniform") -> np.ndarray:
    """Which of a clip's ``count`` frames are kept (``count >= frames``), int64 ``(frames,)``."""
    if sampling == "consecutive":
        return (count - frames) // 2 + np.arange(frames, dtype=np.int64)
    return np.minimum(((np.arange(frames) + 0.5) * count / frames).astype(np.int64), count - 1)


def _resize_rgb(frame_bgr: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if frame_bgr.ndim == 2:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    small = cv2.resize(frame_bgr[..., :3], (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def ffmpeg_binary() -> str:
    """The ``ffmpeg`` executable ($FAIRVIZ_FFMPEG or the one on PATH)."""
    exe = os.environ.get("FAIRVIZ_FFMPEG") or shutil.which("ffmpeg")
    if not exe:
        raise ValueError("ffmpeg was not found on PATH; install it (e.g. `apt install ffmpeg`) "
                         "or set FAIRVIZ_FFMPEG to its path")
    return exe


def read_audio(path: str | os.PathLike, sample_rate: int = F.SAMPLE_RATE, *,
               timeout: float = 300.0) -> np.ndarray:
    """The first audio stream of a media file as float32 mono in [-1, 1] at ``sample_rate``.

    ``ffmpeg`` writes signed 16-bit little-endian PCM to its stdout (no temporary files). A file
    without an audio stream gives an empty array. Raises VideoReadError when ffmpeg fails.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoReadError("file not found")
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-map", "0:a:0?", "-ac", "1", "-ar", str(int(sample_rate)),
           "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise VideoReadError(f"ffmpeg took longer than {timeout:.0f} s") from err
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        if "does not contain any stream" in message:
            return np.zeros(0, dtype=np.float32)
        raise VideoReadError(f"ffmpeg could not decode the audio: {message.splitlines()[-1:] or '?'}")
    pcm = np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0)


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def read_manifest(manifest_csv: str | os.PathLike) -> pd.DataFrame:
    """The manifest as a DataFrame, checked, with ``path`` (absolute video path) added.

    ``transcript`` is filled with "" where missing; ``split`` (when present) is normalised to
    train/val/test; ``id`` defaults to the ``video`` value. Raises ValueError for a missing
    column, a missing/non-numeric label, a missing group, a bad split name or duplicate ids.
    """
    manifest_csv = Path(manifest_csv)
    if not manifest_csv.is_file():
        raise FileNotFoundError(f"manifest {str(manifest_csv)!r} does not exist")
    try:
        df = pd.read_csv(manifest_csv, dtype={"video": str, "transcript": str, "split": str, "id": str},
                         keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read manifest {str(manifest_csv)!r} as CSV: {err}") from err
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest {manifest_csv.name} lacks column(s) {missing}; it needs "
                         f"{list(REQUIRED_COLUMNS)} (optional: transcript, split, id)")
    if df.empty:
        raise ValueError(f"manifest {manifest_csv.name} has no rows")
    df = df.reset_index(drop=True)
    if df["video"].isna().any():
        rows = (np.flatnonzero(df["video"].isna().to_numpy()) + 2).tolist()[:5]
        raise ValueError(f"manifest {manifest_csv.name}: empty 'video' on line(s) {rows}")
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = ~np.isfinite(labels.to_numpy(dtype=np.float64))
    if bad.any():
        rows = (np.flatnonzero(bad) + 2).tolist()[:5]
        raise ValueError(f"manifest {manifest_csv.name}: {int(bad.sum())} missing or non-numeric "
                         f"label(s), first on line(s) {rows}")
    df["label"] = labels.astype(np.float64)
    if df["group"].isna().any():
        rows = (np.flatnonzero(df["group"].isna().to_numpy()) + 2).tolist()[:5]
        raise ValueError(f"manifest {manifest_csv.name}: missing group on line(s) {rows}")
    if "transcript" in df.columns:
        df["transcript"] = df["transcript"].fillna("").astype(str)
    else:
        df["transcript"] = ""
    if "split" in df.columns:
        raw = df["split"].fillna("").astype(str).str.strip().str.lower()
        unknown = sorted(set(raw) - set(SPLIT_NAMES))
        if unknown:
            raise ValueError(f"manifest {manifest_csv.name}: unknown split value(s) {unknown}; "
                             "use train, val or test")
        df["split"] = raw.map(SPLIT_NAMES)
    if "id" in df.columns:
        df["id"] = df["id"].fillna("").astype(str)
        df.loc[df["id"] == "", "id"] = df["video"]
    else:
        df["id"] = df["video"].astype(str)
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise ValueError(f"manifest {manifest_csv.name}: duplicate id/video {sorted(set(dup))[:5]}")
    base = manifest_csv.resolve().parent
    df["path"] = [str(p if Path(p).is_absolute() else (base / p)) for p in
                  (os.path.expanduser(v) for v in df["video"].astype(str))]
    return df


def _distinct(values: pd.Series) -> list:
    """The distinct group values, sorted as everywhere in fairviz (the one group encoder)."""
    return list(factorize_groups(values, len(values), need_two=False, unused_categories="drop")[1])


def encode_groups(values: Sequence | pd.Series, privileged: Any = None) -> tuple[np.ndarray, dict]:
    """Group values → int64 codes {0, 1} (1 = privileged) and a description.

    Returns ``(codes, info)`` with ``info = {"group_labels": [label_of_0, label_of_1],
    "group_members": {"0": [...], "1": [...]}, "privileged": label_of_1}``. The rule is in the
    module docstring. Raises ValueError for more than two values without ``privileged``, or a
    ``privileged`` value that does not occur.
    """
    values = pd.Series(values).reset_index(drop=True)
    uniques = _distinct(values)
    if privileged is not None:
        hit = (values == privileged).to_numpy(dtype=bool)
        if not hit.any():  # "1" vs 1, "male" vs "Male" written on the command line
            hit = (values.astype(str).str.lower() == str(privileged).lower()).to_numpy(dtype=bool)
        if not hit.any():
            raise ValueError(f"privileged group {privileged!r} does not occur; the groups are {uniques}")
        ones = _distinct(values[hit])
        zeros = [u for u in uniques if u not in ones]
        codes = hit.astype(np.int64)
    else:
        if len(uniques) > 2:
            raise ValueError(f"the manifest has {len(uniques)} groups {uniques[:10]}; fairviz "
                             "compares two: pass privileged=VALUE to compare that group with all others")
        as_num = pd.to_numeric(pd.Series(uniques), errors="coerce")
        if as_num.notna().all() and set(as_num.tolist()) <= {0.0, 1.0}:
            num = pd.to_numeric(values, errors="coerce").to_numpy()
            codes = (num == 1.0).astype(np.int64)
            ones = [u for u, x in zip(uniques, as_num) if x == 1.0]
            zeros = [u for u, x in zip(uniques, as_num) if x == 0.0]
        else:
            ones = uniques[-1:] if len(uniques) == 2 else []
            zeros = uniques[:1]
            codes = np.isin(values.to_numpy(dtype=object), np.array(ones, dtype=object)).astype(np.int64)
        if len(uniques) < 2:
            log.warning("only one group (%s) in the data: fairness metrics need two", uniques)
    name0 = zeros[0] if len(zeros) == 1 else ("not " + str(ones[0]) if ones else None)
    name1 = ones[0] if len(ones) == 1 else ("|".join(map(str, ones)) if ones else None)
    info = {"group_labels": [name0, name1], "privileged": name1,
            "group_members": {"0": zeros, "1": ones}}
    return codes, F._jsonable(info)


def _video_stamp(path: str) -> list:
    """(path, size, mtime_ns) of a file, or (path, None, None) when it is missing."""
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def manifest_cache_material(df: pd.DataFrame, manifest_csv: Path, *, frames: int, size: int,
                            n_mfcc: int, mfcc_steps: int, privileged: Any, text_model) -> dict:
    """Cache-key material of a manifest: the CSV's bytes and folder, each video's size and
    modification time, the feature parameters and the text model."""
    manifest_csv = Path(manifest_csv).resolve()
    return {
        "source": "manifest",
        "manifest": {"path": str(manifest_csv),
                     "sha256": hashlib.sha256(manifest_csv.read_bytes()).hexdigest()},
        "videos": [_video_stamp(p) for p in df["path"]],
        "features": {"frames": frames, "size": size, "n_mfcc": n_mfcc, "mfcc_steps": mfcc_steps,
                     "sample_rate": F.SAMPLE_RATE, "max_length": F.DEFAULT_MAX_LENGTH,
                     "privileged": None if privileged is None else str(privileged)},
        "text_model": F.text_model_info(text_model),
    }


def _read_one(path: str, frames: int, size: int, sampling: str, n_mfcc: int,
              mfcc_steps: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(frames uint8 (T, S, S, 3), MFCC float32 (steps, n_mfcc), has audio) of one clip."""
    video = read_frames(path, frames, size, sampling)
    audio = read_audio(path)
    mfcc = F.compute_mfcc([audio], F.SAMPLE_RATE, n_mfcc=n_mfcc, steps=mfcc_steps)[0]
    return video, mfcc, audio.size > 0


def _ordered_map(fn, n: int, workers: int) -> Iterator:
    """``fn(i)`` for i in range(n), in order, at most ``2 × workers`` in flight (memory stays
    bounded however slowly the results are consumed)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for i in range(n):
            pending.append(pool.submit(fn, i))
            if len(pending) >= 2 * max(1, workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def load_manifest_features(
    manifest_csv: str | os.PathLike,
    *,
    frames: int | None = None,
    size: int | None = None,
    sampling: str = "uniform",
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = F.DEFAULT_N_MFCC,
    mfcc_steps: int = F.DEFAULT_MFCC_STEPS,
    privileged: Any = None,
    workers: int | None = None,
    progress: F.Progress | None = None,
    refresh: bool = False,
    mmap: bool = True,
) -> F.FeatureSet:
    """Features of the videos in a manifest CSV, preprocessed once and cached.

    Args:
        manifest_csv: the manifest (see the module docstring).
        frames: frames per clip; None = the synthetic data's (``synthetic.DEFAULT_FRAMES``).
        size: frame side in pixels; None = ``synthetic.DEFAULT_SIZE``.
        sampling: which frames (``FRAME_SAMPLINGS``; see ``read_frames``).
        text_model: local text model folder; None = ``features.default_text_model()``.
        n_mfcc, mfcc_steps: MFCC shape.
        privileged: the group value coded 1 (see the module docstring).
        workers: videos decoded at once (threads; OpenCV and ffmpeg run outside the GIL);
            None = min(4, CPU count).
        progress: ``progress(done, total, stage)``, stages "cache", "decode", "text".
        refresh: rebuild even when a sound cache exists.
        mmap: return ``video``, ``mfcc`` and ``text`` memory-mapped from the cache files (the
            default: a real corpus need not fit in memory); False loads them whole.

    The frames are written to the cache as each clip is decoded, so building needs memory for
    a few clips, not for the corpus. Returns a FeatureSet of the readable videos in manifest
    order; ``split`` from the manifest (or None); ``meta`` has ``frames``, ``size``,
    ``sampling``, ``group_labels``, ``skipped``, ``n_skipped``, ``no_audio``, ``manifest``,
    ``cache_path``, ``cache_hit``.

    Raises:
        ValueError: bad frames / size / sampling, a malformed manifest (see ``read_manifest``),
            bad groups, or no readable video at all (the message lists the first failures; a
            clip with fewer frames than ``frames`` is skipped with that reason).
    """
    d_frames, d_size = _default_frames_size()
    check_video_options(frames, size, sampling)
    frames = d_frames if frames is None else int(frames)
    size = d_size if size is None else int(size)
    manifest_csv = Path(manifest_csv)
    df = read_manifest(manifest_csv)
    codes, group_info = encode_groups(df["group"], privileged)
    material = manifest_cache_material(df, manifest_csv, frames=frames, size=size, n_mfcc=n_mfcc,
                                       mfcc_steps=mfcc_steps, privileged=privileged,
                                       text_model=text_model)
    material["features"]["sampling"] = sampling

    def build(writer: F.FeatureWriter) -> F.FeatureSet:
        n = len(df)
        video_out = writer.rows("video", np.uint8, (frames, size, size, 3), max_rows=n)
        mfcc, keep, skipped, no_audio = [], [], [], []

        def job(i: int):
            try:
                return _read_one(df["path"].iat[i], frames, size, sampling, n_mfcc, mfcc_steps)
            except VideoReadError as err:
                return err

        if progress is not None:
            progress(0, n, "decode")
        for i, res in enumerate(_ordered_map(job, n, workers or min(4, os.cpu_count() or 1))):
            name = str(df["video"].iat[i])
            if isinstance(res, Exception):
                skipped.append({"video": name, "reason": str(res)})
                log.warning("skipping video %s: %s", name, res)
            else:
                video_out.append(res[0][None])
                mfcc.append(res[1])
                keep.append(i)
                if not res[2]:
                    no_audio.append(name)
            if progress is not None:
                progress(i + 1, n, "decode")
        if skipped:
            log.warning("skipped %d of %d videos (missing, unreadable or too short)", len(skipped), n)
        if not keep:
            listed = "; ".join(f"{s['video']}: {s['reason']}" for s in skipped[:5])
            raise ValueError(f"none of the {n} videos in {manifest_csv.name} could be read ({listed})")
        mfcc = np.stack(mfcc)
        info = material["text_model"]
        text = F.embed_texts(df["transcript"].iloc[keep].tolist(), info["path"], progress=progress)
        split = df["split"].iloc[keep].to_numpy(dtype=str) if "split" in df.columns else None
        meta = {
            "source": "manifest",
            "manifest": str(manifest_csv.resolve()),
            "n": len(keep),
            "frames": frames,
            "size": size,
            "sampling": sampling,
            **group_info,
            "skipped": skipped,
            "n_skipped": len(skipped),
            "no_audio": no_audio,
            **F._feature_meta(n_mfcc, mfcc_steps, info, text.shape[1], mfcc),
        }
        return F.FeatureSet(
            video=writer.finish("video"),
            mfcc=mfcc,
            text=text,
            label=df["label"].to_numpy(dtype=np.float32)[keep],
            group=codes[keep],
            ids=df["id"].iloc[keep].tolist(),
            split=split,
            meta=meta,
        )

    features = F.cached_features("manifest", material, build, refresh=refresh, progress=progress,
                                 mmap=mmap)
    # the key holds the resolution, so this only fails for a cache folder edited by hand
    check_video_shape(features.video.shape, frames, size)
    if features.meta.get("cache_hit") and features.meta.get("n_skipped"):
        log.warning("cached features skip %d video(s) of the manifest (missing, unreadable or too "
                    "short): %s", features.meta["n_skipped"],
                    ", ".join(s["video"] for s in features.meta["skipped"][:5]))
    return features
