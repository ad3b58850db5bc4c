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
  the *last* becomes 1 (``female``/``male`` → male = 1); more than two values is a ValueError,
  unless ``all_groups=True`` (what training asks for): then k > 2 values become the codes
  0..k-1 in sort order, ``group_labels`` lists all k and no group is called privileged (for two
  values ``all_groups`` changes nothing).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from fairviz.data import features as F
from fairviz.data import synthetic
from fairviz.data.manifest_build import ManifestBuild, warn_cached_skips
from fairviz.data.video_clips import (
    FRAME_SAMPLINGS,
    VideoReadError,
    check_video_options,
    check_video_shape,
    ffmpeg_binary,
    frame_indices,
    read_audio,
    read_frames,
)
from fairviz.jsonsafe import jsonable
from fairviz.metrics._validate import factorize_groups

__all__ = [
    "FRAME_SAMPLINGS",
    "REQUIRED_COLUMNS",
    "SPLIT_NAMES",
    "VideoReadError",
    "check_video_options",
    "check_video_shape",
    "encode_groups",
    "ffmpeg_binary",
    "frame_indices",
    "load_manifest_features",
    "manifest_cache_material",
    "read_audio",
    "read_frames",
    "read_manifest",
]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("video", "label", "group")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "dev": "val", "test": "test", "testing": "test"}


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


def encode_groups(values: Sequence | pd.Series, privileged: Any = None, *,
                  all_groups: bool = False) -> tuple[np.ndarray, dict]:
    """Group values → int64 codes {0, 1} (1 = privileged), or 0..k-1 (``all_groups``), and a description.

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
    elif len(uniques) > 2 and all_groups:
        return _all_group_codes(values, uniques)
    else:
        if len(uniques) > 2:
            raise ValueError(f"the manifest has {len(uniques)} groups {uniques[:10]}; this step "
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
    return codes, jsonable(info, strict=True)


def _all_group_codes(values: pd.Series, uniques: list) -> tuple[np.ndarray, dict]:
    """k > 2 group values → codes 0..k-1 in sort order (the one group encoder's order)."""
    codes = factorize_groups(values, len(values), need_two=False, unused_categories="drop")[0]
    info = {"group_labels": uniques, "privileged": None,
            "group_members": {str(i): [u] for i, u in enumerate(uniques)}}
    return codes.astype(np.int64), jsonable(info, strict=True)


def _video_stamp(path: str) -> list:
    """(path, size, mtime_ns) of a file, or (path, None, None) when it is missing."""
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def manifest_cache_material(df: pd.DataFrame, manifest_csv: Path, *, frames: int, size: int,
                            n_mfcc: int, mfcc_steps: int, privileged: Any, text_model,
                            k_groups: bool = False) -> dict:
    """Cache-key material of a manifest: the CSV's bytes and folder, each video's size and
    modification time, the feature parameters and the text model (and ``all_groups`` where the
    group column's k > 2 values are kept: only there does it change the codes)."""
    manifest_csv = Path(manifest_csv).resolve()
    material = {
        "source": "manifest",
        "manifest": {"path": str(manifest_csv),
                     "sha256": hashlib.sha256(manifest_csv.read_bytes()).hexdigest()},
        "videos": [_video_stamp(p) for p in df["path"]],
        "features": {"frames": frames, "size": size, "n_mfcc": n_mfcc, "mfcc_steps": mfcc_steps,
                     "sample_rate": F.SAMPLE_RATE, "max_length": F.DEFAULT_MAX_LENGTH,
                     "privileged": None if privileged is None else str(privileged)},
        "text_model": F.text_model_info(text_model),
    }
    if k_groups:
        material["features"]["all_groups"] = True
    return material


def load_manifest_features(
    manifest_csv: str | os.PathLike,
    *,
    frames: int | None = None,
    size: int | None = None,
    sampling: str = "uniform",
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = F.DEFAULT_N_MFCC,
    mfcc_steps: int = F.DEFAULT_MFCC_STEPS,
    privileged: Any = None, all_groups: bool = False,
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
        n_mfcc, mfcc_steps: MFCC shape. privileged, all_groups: see the module docstring.
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
    check_video_options(frames, size, sampling)
    # the synthetic data's resolution by default, so one model fits both sources
    frames = int(synthetic.DEFAULT_FRAMES) if frames is None else int(frames)
    size = int(synthetic.DEFAULT_SIZE) if size is None else int(size)
    manifest_csv = Path(manifest_csv)
    df = read_manifest(manifest_csv)
    codes, group_info = encode_groups(df["group"], privileged, all_groups=all_groups)
    material = manifest_cache_material(df, manifest_csv, frames=frames, size=size, n_mfcc=n_mfcc,
                                       mfcc_steps=mfcc_steps, privileged=privileged, text_model=text_model,
                                       k_groups=len(group_info["group_labels"]) > 2)
    material["features"]["sampling"] = sampling
    build = ManifestBuild(df, manifest_csv, codes, group_info, material["text_model"], frames, size, sampling,
                          n_mfcc, mfcc_steps, workers or min(4, os.cpu_count() or 1), progress).build
    features = F.cached_features("manifest", material, build, refresh=refresh, progress=progress, mmap=mmap)
    # the key holds the resolution, so this only fails for a cache folder edited by hand
    check_video_shape(features.video.shape, frames, size)
    warn_cached_skips(features)
    return features
