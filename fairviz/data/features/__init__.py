"""Model-ready features for interview data, and their on-disk cache.

Three modalities per candidate:

- **video**: the raw frames, uint8 ``(n, T, H, W, 3)`` RGB (the video CNN is trained, so no
  pre-computed video features);
- **audio**: MFCC sequences with a fixed number of time steps, float32 ``(n, steps, n_mfcc)``,
  from 16 kHz mono audio (``torchaudio.transforms.MFCC``: 25 ms windows, 10 ms hop, 40 mel
  bands, dB scale; the ``steps`` frames are averages over equal stretches of the clip);
- **text**: one vector per transcript from a frozen pre-trained BERT, float32 ``(n, d)``: mean of
  the last hidden states over the real (non-padding) tokens, as sentence-transformers does, then
  L2-normalised when the model folder's ``modules.json`` lists a Normalize step (it does for the
  default ``all-MiniLM-L6-v2``, d = 384).

Preprocessing runs once per dataset: ``load_synthetic_features`` (and
``fairviz.data.video_dataset.load_manifest_features``) keep the result in
``fairviz.paths.cache_dir()/features/<source>-<key>/``, a folder holding one ``.npy`` file per
array (plain numpy arrays, read with ``allow_pickle=False``) and ``meta.json`` (the key material,
each array's shape, dtype, size and CRC-32, the FeatureSet's ``meta``); the layout is
``fairviz.data.feature_store``. Large arrays can be streamed into the cache as they are computed
and read back memory-mapped (``mmap=True``), so a corpus larger than RAM trains batch by batch.
The folder is built under a temporary name and renamed into place only when complete, so an
interrupted run never leaves a cache that later loads. A cache whose files are missing,
truncated or corrupted (CRC, size, shape or key mismatch) is reported and rebuilt.

The cache key is the SHA-256 of a JSON document holding: the data source and every generator
argument (defaults filled in) plus a hash of the generator's source code, the feature parameters
(``n_mfcc``, ``mfcc_steps``, ...), the text model (its resolved folder, its ``_name_or_path`` and
a hash of its config/tokenizer files and weight-file sizes), and ``FEATURE_FORMAT_VERSION``.

torch and transformers are imported inside the functions that need them, so loading a cached
feature set does not pay for them.

Layout: `_featureset` (the container and constants), `_text`, `_audio`, `_extract` (interviews →
features), `_cache` (the on-disk cache), `_frames` (frozen pretrained frame features, cached), `_synthetic` (the synthetic data set, cached).
"""

from __future__ import annotations

import importlib

from fairviz.data import feature_store as store
from fairviz.data.feature_store import CacheError
from fairviz.data.features._audio import DEFAULT_MFCC_STEPS, DEFAULT_N_MFCC, SAMPLE_RATE, compute_mfcc
from fairviz.data.features._cache import (
    FeatureWriter,
    cache_key,
    cached_features,
    feature_cache_path,
    load_feature_cache,
    save_feature_cache,
)
from fairviz.data.features._extract import extract_features
from fairviz.data.features._featureset import ARRAY_FIELDS, FEATURE_FORMAT_VERSION, FeatureSet, Progress
from fairviz.data.features._frames import FRAME_FEATURE_VERSION, cached_frame_features, frame_cache_material
from fairviz.data.features._synthetic import load_synthetic_features, synthetic_cache_material
from fairviz.data.features._text import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_LENGTH,
    default_text_model,
    embed_texts,
    resolve_text_model,
    text_model_info,
)

__all__ = [
    "ARRAY_FIELDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MFCC_STEPS",
    "DEFAULT_N_MFCC",
    "FEATURE_FORMAT_VERSION",
    "FRAME_FEATURE_VERSION",
    "SAMPLE_RATE",
    "CacheError",
    "FeatureSet",
    "FeatureWriter",
    "Progress",
    "cache_key",
    "cached_frame_features",
    "cached_features",
    "compute_mfcc",
    "default_text_model",
    "embed_texts",
    "extract_features",
    "feature_cache_path",
    "frame_cache_material",
    "load_feature_cache",
    "load_synthetic_features",
    "resolve_text_model",
    "save_feature_cache",
    "store",
    "synthetic_cache_material",
    "text_model_info",
]

# Names that live in sibling modules (torch_data imports torch), importable from here too, lazily.
_ELSEWHERE = {"InterviewDataset": "torch_data", "GroupStratifiedBatchSampler": "torch_data",
              "load_manifest_features": "video_dataset"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(f"fairviz.data.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
