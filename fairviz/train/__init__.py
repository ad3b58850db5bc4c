"""Training: the six methods of Kim et al. (2023) and our `fairoffset`, one loop, one `Run` result.

    from fairviz.train import TrainConfig, train
    run = train(TrainConfig(method="ours", alpha=4, lambda_w=0.3, seed=0))
    run.metrics["spdd"]["value"], run.metrics["pcc"]["value"]

Every method shares the data, the split, the bias injection, the seed, the encoders and the
budget (epochs x steps per epoch); the methods differ only in the registry entry `METHODS[name]`:
which extra loss terms are added to the MSE (`loss_terms`, the one place where they are defined),
whether the training rows are re-balanced, and whether a group offset b·S is fitted beside the
score during training (`group_offset`; the offset is never part of the model).

Data protocol (our reading of the paper, documented in docs/RESULTS.md):
1. features of the whole dataset (synthetic by default, cached by `fairviz.data.features`);
2. `balanced_splits` -> train / val / test; val and test are balanced by group within label bands
   and keep the TRUE labels;
3. bias is injected into the TRAIN split only, with strength `alpha`: `bias_mode="label"` replaces
   the training labels by the rater-biased labels Y~ (`inject_label_bias`, the paper's setting);
   `bias_mode="sample"` keeps the true labels but subsamples the training rows so the privileged
   group dominates the high-label band (`inject_bias`). `alpha=1` is unbiased;
4. model selection: the epoch with the best validation criterion (`selection`, default validation
   PCC) is restored before the test split is scored. The criterion reads the true
   validation labels (`val_labels="true"`, an audited validation set) or validation labels biased
   like the training split's (`val_labels="biased"`); with `target_spdd` the restored epoch is the
   best among those whose validation SPDD is at most the target, while the method's weight is
   adjusted during training (`_next_weight`).

Layout: `_config` (TrainConfig and its checks), `_methods` (Method as data, the METHODS table,
`loss_terms`), `_data` (split, bias injection, batches), `_loop` (`fit`, the training loop),
`_evaluate` (predictions, validation, epoch selection, test metrics), `_target` (the target-SPDD
weight), `_result` (`Run`). This module is the public façade and `train`, the entry point.
"""

from __future__ import annotations

from typing import Any, Callable

from fairviz import distributed
from fairviz.data.video_dataset import check_video_shape
from fairviz.methods import BIAS_MODES, VAL_LABELS
from fairviz.train._config import SELECTIONS, TrainConfig
from fairviz.train._data import (
    PreparedData,
    _batches,
    _public_meta,
    balanced_oversample,
    load_features,
    prepared_from_features,
)
from fairviz.train._evaluate import METRIC_KEYS, compute_metrics, predict, spdd_floor
from fairviz.train._loop import TrainingCancelled, _emit, fit, resolve_device
from fairviz.train._methods import METHOD_NAMES, METHODS, LossInputs, Method, loss_terms
from fairviz.train._result import Run
from fairviz.train._target import TARGET_STEP, TARGET_UPDATES_PER_EPOCH

__all__ = [
    "BIAS_MODES", "METHODS", "METHOD_NAMES", "METRIC_KEYS", "SELECTIONS", "TARGET_STEP",
    "TARGET_UPDATES_PER_EPOCH", "VAL_LABELS", "LossInputs", "Method", "PreparedData", "Run",
    "TrainConfig", "TrainingCancelled", "balanced_oversample", "compute_metrics", "fit",
    "load_features", "loss_terms", "predict", "prepared_from_features", "resolve_device",
    "spdd_floor", "train", "_batches", "_public_meta",
]


def train(
    config: TrainConfig | None = None,
    progress: Callable[[dict], Any] | None = None,
    cancel=None,
    *,
    features=None,
) -> Run:
    """Load the data named by `config`, inject its bias, train, select, score the test split.

    `progress(event)` is called after every step (`stage="step"`) and epoch (`stage="epoch"`);
    while features are being built it also gets `stage="data"` events with `done`, `total`,
    `what`. `cancel` is anything with `is_set()`; when it is set, `TrainingCancelled` is raised.
    `features` (a FeatureSet) skips loading, e.g. for tests.
    """
    cfg = config or TrainConfig()
    # under torchrun: join the process group first, so rank 0 builds the feature cache alone
    ctx = distributed.setup(distributed.local_device(resolve_device(cfg.device)))

    def data_progress(done, total, stage):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("training cancelled while preparing the data")
        _emit(progress, {"stage": "data", "done": done, "total": total, "what": stage})

    data_progress_or_none = data_progress if progress or cancel else None
    if not ctx.is_main:  # rank 0 builds the feature caches alone
        distributed.barrier(ctx)
    if features is None:
        features = load_features(cfg, progress=data_progress_or_none)
    check_video_shape(features.video.shape, cfg.frames, cfg.size)  # e.g. features= built at another resolution
    data = prepared_from_features(features, cfg, progress=data_progress_or_none)
    if ctx.is_main:
        distributed.barrier(ctx)
    return fit(cfg, data, progress=progress, cancel=cancel)
