"""Interviews (raw video, audio, transcripts) → a FeatureSet, not cached."""

from __future__ import annotations

import os

import numpy as np

from fairviz.data.features._audio import DEFAULT_MFCC_STEPS, DEFAULT_N_MFCC, SAMPLE_RATE, compute_mfcc
from fairviz.data.features._cache import _jsonable
from fairviz.data.features._featureset import FEATURE_FORMAT_VERSION, FeatureSet, Progress
from fairviz.data.features._text import DEFAULT_BATCH_SIZE, embed_texts, text_model_info


def extract_features(
    interviews,
    *,
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = DEFAULT_N_MFCC,
    mfcc_steps: int = DEFAULT_MFCC_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> FeatureSet:
    """Features of an ``Interviews`` (or any object with its fields), not cached.

    Reads ``video`` (n, T, H, W, 3) uint8, ``audio`` (n, samples) float32 at ``sample_rate``,
    ``text`` list[str], ``label`` (n,), ``group`` (n,) {0,1} with 1 = privileged, ``ids``, and
    optionally ``params`` (dict) and ``split``. Stages reported to ``progress``: "text", "audio".
    """
    n = len(interviews.ids)
    info = text_model_info(text_model)
    text = embed_texts(interviews.text, info["path"], batch_size=batch_size, progress=progress)
    sr = int(getattr(interviews, "sample_rate", SAMPLE_RATE))
    mfcc = compute_mfcc(np.asarray(interviews.audio, dtype=np.float32), sr, n_mfcc=n_mfcc,
                        steps=mfcc_steps, progress=progress)
    split = getattr(interviews, "split", None)
    meta = {
        "source": "synthetic",
        "params": _jsonable(getattr(interviews, "params", {}) or {}),
        "n": n,
        "group_labels": list(range(max(2, int(np.max(interviews.group)) + 1))),
        "privileged": max(1, int(np.max(interviews.group))),
        **feature_meta(n_mfcc, mfcc_steps, info, text.shape[1], mfcc),
    }
    return FeatureSet(
        video=np.asarray(interviews.video, dtype=np.uint8),
        mfcc=mfcc,
        text=text,
        label=np.asarray(interviews.label, dtype=np.float32),
        group=np.asarray(interviews.group, dtype=np.int64),
        ids=list(interviews.ids),
        split=None if split is None else np.asarray(split, dtype=str),
        meta=meta,
    )


def feature_meta(n_mfcc: int, mfcc_steps: int, info: dict, text_dim: int,
                  mfcc: np.ndarray) -> dict:
    """Feature-side metadata shared by every source (mfcc mean/std per coefficient included)."""
    if len(mfcc):
        flat = mfcc.reshape(-1, mfcc.shape[-1]).astype(np.float64)
        mean, std = flat.mean(0), flat.std(0)
    else:
        mean = std = np.zeros(mfcc.shape[-1])
    return {
        "sample_rate": SAMPLE_RATE,
        "n_mfcc": n_mfcc,
        "mfcc_steps": mfcc_steps,
        "mfcc_mean": [float(v) for v in mean],
        "mfcc_std": [float(v) for v in std],
        "text_model": info,
        "text_dim": int(text_dim),
        "format_version": FEATURE_FORMAT_VERSION,
    }
