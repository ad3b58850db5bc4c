"""Frozen frame features: every frame of a FeatureSet through a pretrained backbone once, cached.

With a frozen pretrained frame encoder (``fairviz.model.backbones``) training never needs the
frames themselves, only each frame's pooled backbone feature. ``cached_frame_features`` computes
them once per (frames, backbone) and keeps them in
``cache_dir()/features/frames-<backbone>-<key>/frames.npy``: float16 ``(n, T, dim)`` (half the
space of float32; the model reads them as float32, and features computed on the fly are rounded
the same way), written clip chunk by clip chunk and read back memory-mapped, with the feature
store's size / shape / CRC-32 checks. The key is the SHA-256 of the frames' bytes (so any
change of data, resolution, sampling or row order is a new entry), the backbone, the SHA-256
of its weight file and ``FRAME_FEATURE_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from fairviz.atomic import staged_dir
from fairviz.data import feature_store as store
from fairviz.data.feature_store import CacheError
from fairviz.data.features._featureset import FeatureSet, Progress
from fairviz.paths import cache_dir

log = logging.getLogger("fairviz.data.features")

#: Bump when the meaning of cached frame features changes; old entries are then ignored.
FRAME_FEATURE_VERSION = 1
_PIXELS_PER_PASS = 1 << 21  # frames x height x width through the backbone at a time (~0.3 GB)


def _frames_digest(video: np.ndarray) -> str:
    """SHA-256 of the frames' shape and bytes, read chunk by chunk (memory maps stay small)."""
    h = hashlib.sha256(repr((video.shape, video.dtype.str)).encode())
    step = max(1, (64 << 20) // max(1, video[:1].nbytes))
    for start in range(0, len(video), step):
        rows = store.take_rows(video, np.arange(start, min(len(video), start + step)))
        h.update(np.ascontiguousarray(rows).data)
    return h.hexdigest()


def frame_cache_material(features: FeatureSet, encoder: str) -> dict:
    """What identifies the frozen features of ``features`` under backbone ``encoder``."""
    from fairviz.model import backbones  # noqa: PLC0415 - imports torch; the features package does not

    name = backbones.backbone_of(encoder)
    if name is None or not backbones.is_frozen(encoder):
        raise ValueError(f"frame encoder {encoder!r} does not use cached frame features")
    return {"format": FRAME_FEATURE_VERSION, "frames_sha256": _frames_digest(features.video),
            "backbone": name, "weights_sha256": backbones.BACKBONES[name].sha256}


def cached_frame_features(features: FeatureSet, encoder: str, *, progress: Progress | None = None,
                          refresh: bool = False) -> np.ndarray:
    """float16 ``(n, T, dim)`` frozen features of ``features.video`` (uint8 ``(n, T, H, W, 3)``)
    under the frozen frame encoder ``encoder``, memory-mapped from the cache (built on a miss)."""
    material = frame_cache_material(features, encoder)
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    path = cache_dir() / "features" / f"frames-{material['backbone']}-{key[:24]}"
    if path.exists() and not refresh:
        try:
            return _read(path, key)
        except CacheError as err:
            log.warning("frame feature cache %s is damaged (%s); rebuilding it", path, err)
    with staged_dir(path, replace=True) as tmp:
        spec = _build(tmp / "frames.npy", features.video, material["backbone"], progress)
        doc = {"format": FRAME_FEATURE_VERSION, "key": key, "material": material, "arrays": {"frames": spec},
               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=1, sort_keys=True))
            fh.flush()
            os.fsync(fh.fileno())
    return _read(path, key)


def _read(path: Path, key: str) -> np.ndarray:
    doc = store.read_meta(path)
    if doc.get("format") != FRAME_FEATURE_VERSION or doc.get("key") != key or set(doc["arrays"]) != {"frames"}:
        raise CacheError("format version or key does not match")
    return store.read_arrays(path, doc["arrays"], mmap=True)["frames"]


def _build(target: Path, video: np.ndarray, backbone_name: str, progress: Progress | None) -> dict:
    """Write the features of every clip of ``video`` to ``target``; its ``meta.json`` entry."""
    import torch  # noqa: PLC0415 - heavy, and only needed when features are built

    from fairviz.model import backbones  # noqa: PLC0415 - imports torch

    backbone = backbones.FrameBackbone(backbone_name)
    n, t, h, w = video.shape[:4]
    clips = max(1, _PIXELS_PER_PASS // max(1, t * h * w))
    writer = store.RowWriter(target, np.float16, (t, backbone.dim), max_rows=max(n, 1))
    try:
        for start in range(0, n, clips):
            rows = store.take_rows(video, np.arange(start, min(n, start + clips)))
            writer.append(backbones.frozen_features(backbone, torch.from_numpy(rows)).numpy())
            if progress is not None:
                progress(min(n, start + clips), n, "frame features")
    except BaseException:
        writer.abort()
        raise
    return writer.close()
