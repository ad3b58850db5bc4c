"""Interview data: the synthetic generator, bias injection, balanced splits, features.

Importing ``fairviz.data`` is light (numpy only; OpenCV and pandas load when first used). The
feature / torch side (``FeatureSet``, ``load_synthetic_features``, ``InterviewDataset``, …) is
loaded lazily on first attribute access, so ``import fairviz.data`` never imports torch or
transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

from fairviz.data.bias import inject_bias, inject_label_bias
from fairviz.data.splits import balanced_splits
from fairviz.data.synthetic import (
    DEFAULT_AUDIO_SECONDS,
    DEFAULT_FRAMES,
    DEFAULT_N_SAMPLES,
    DEFAULT_SIZE,
    Interviews,
    export_examples,
    make_synthetic,
)

__all__ = [
    "DEFAULT_AUDIO_SECONDS",
    "DEFAULT_FRAMES",
    "DEFAULT_N_SAMPLES",
    "DEFAULT_SIZE",
    "Interviews",
    "balanced_splits",
    "export_examples",
    "inject_bias",
    "inject_label_bias",
    "make_synthetic",
]

# ---------------------------------------------------------------------------------------------
# Lazy exports (feature / torch side). name -> submodules of fairviz.data to look in, in order.
# Features developer: add names here; nothing in this table is imported until it is used.
# ---------------------------------------------------------------------------------------------
_LAZY: dict[str, tuple[str, ...]] = {
    "FeatureSet": ("features",),
    "extract_features": ("features",),
    "load_synthetic_features": ("features",),
    "embed_texts": ("features",),
    "default_text_model": ("features",),
    "load_manifest_features": ("features", "video_dataset"),
    "InterviewDataset": ("torch_data", "features"),
    "GroupStratifiedBatchSampler": ("torch_data", "features"),
    "build_manifest": ("first_impressions",),
}


def __getattr__(name: str) -> Any:
    modules = _LAZY.get(name)
    if modules is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for mod in modules:
        try:
            module = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{mod}":
                continue
            raise
        if hasattr(module, name):
            value = getattr(module, name)
            globals()[name] = value  # later look-ups skip this function
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (looked in {modules})")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
