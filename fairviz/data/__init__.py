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
from fairviz.data.synthetic import Interviews, export_examples, make_synthetic

__all__ = [
    "Interviews",
    "balanced_splits",
    "export_examples",
    "inject_bias",
    "inject_label_bias",
    "make_synthetic",
]

# Lazy exports (the generator's defaults, and the feature / torch side): name -> the submodule of fairviz.data that defines it, imported
# on first use so that `import fairviz.data` stays light.
_LAZY: dict[str, str] = {
    # the generator's defaults (light, but listed once, in fairviz.data.synthetic)
    "DEFAULT_AUDIO_SECONDS": "synthetic",
    "DEFAULT_FRAMES": "synthetic",
    "DEFAULT_N_SAMPLES": "synthetic",
    "DEFAULT_SIZE": "synthetic",
    "FeatureSet": "features",
    "extract_features": "features",
    "load_synthetic_features": "features",
    "embed_texts": "features",
    "default_text_model": "features",
    "load_manifest_features": "video_dataset",
    "InterviewDataset": "torch_data",
    "GroupStratifiedBatchSampler": "torch_data",
    "build_manifest": "first_impressions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
