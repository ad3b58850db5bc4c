"""The data of one run: the split, the training bias, the rows model selection reads, and the
batches of each epoch.

`prepared_from_features` follows the data protocol of the package docstring: split (or the
data's own `split` column), inject the bias into the training split only, keep the true labels
for validation and test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fairviz import kgroups
from fairviz.data import balanced_splits, inject_bias, inject_label_bias, loader
from fairviz.data import features as feats
from fairviz.data.features import GroupStratifiedBatchSampler
from fairviz.jsonsafe import jsonable
from fairviz.model import backbones
from fairviz.train._config import TrainConfig


@dataclass
class PreparedData:
    """Model inputs of the whole dataset (CPU tensors) plus the split and the training labels."""

    video: np.ndarray  # uint8 (n, T, H, W, 3) or frozen frame features (n, T, dim); in memory or memory-mapped
    mfcc: torch.Tensor  # float32 (n, steps, n_mfcc)
    text: torch.Tensor  # float32 (n, d)
    label: np.ndarray  # float64 (n,) TRUE labels
    group: np.ndarray  # int64 (n,)
    train_idx: np.ndarray  # rows used for training (after sample-bias injection)
    train_label: np.ndarray  # float64 (len(train_idx),) training targets (Y~ in label-bias mode)
    val_idx: np.ndarray
    test_idx: np.ndarray
    info: dict = field(default_factory=dict)
    # model selection reads these validation rows (positions into val_idx) with these labels:
    # all rows and the true labels, or (val_labels="biased") the training split's bias applied
    sel_pos: np.ndarray | None = None
    sel_label: np.ndarray | None = None
    # every row of the training split, labelled or not: a sample of the population the model
    # will score. Sample-bias injection drops rows from train_idx but not from here (their
    # inputs and S remain known); None means the same rows as train_idx
    pool_idx: np.ndarray | None = None

    @property
    def unlabelled_pool(self) -> bool:
        """True when the pool holds training-split rows that the labelled rows do not."""
        return self.pool_idx is not None and len(np.setdiff1d(self.pool_idx, self.train_idx)) > 0

    def batch(self, idx, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video float (B, T, 3, H, W) in [0, 1], mfcc (B, steps, n_mfcc), text (B, d)) on `device`."""
        return loader.to_device(loader.host_batch(self.video, self.mfcc, self.text, idx), device)


def prepared_from_features(features, cfg: TrainConfig, splits: dict | None = None, progress=None) -> PreparedData:
    """Split `features` (a FeatureSet) and inject the training bias of `cfg`. With a frozen
    pretrained frame encoder the model reads the frames' cached backbone features, not the frames
    (built on first use; `progress(done, total, what)` follows that)."""
    label = np.asarray(features.label, dtype=np.float64)
    group = np.asarray(features.group, dtype=np.int64)
    kgroups.check_groups(group, {})  # two or more groups, coded 0..k-1
    if splits is None:
        splits = _splits(features, label, group, cfg)
    train_idx = np.asarray(splits["train"], dtype=np.int64)
    val_idx = np.asarray(splits["val"], dtype=np.int64)
    test_idx = np.asarray(splits["test"], dtype=np.int64)
    pool_idx = train_idx
    train_idx, train_label = _biased_training_rows(label, group, train_idx, cfg)
    for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        if len(np.unique(group[idx])) < 2:
            raise ValueError(f"the {name} split holds one group only; use more samples")
    sel_pos, sel_label = _selection_rows(label[val_idx], group[val_idx], cfg)
    kgroups.check_groups(group, {"train": train_idx, "val": val_idx, "test": test_idx})
    info = {
        "n": int(len(label)),
        "n_train": int(len(train_idx)),
        "n_pool": int(len(pool_idx)),
        "n_val": int(len(val_idx)),
        "n_test": int(len(test_idx)),
        "features_meta": _public_meta(jsonable(getattr(features, "meta", {}) or {}, max_array=64)),
        "video_shape": [int(d) for d in features.video.shape[1:]],  # (T, H, W, 3) model input
    }
    return PreparedData(
        video=_video_input(features, cfg, progress),
        mfcc=torch.from_numpy(np.array(features.mfcc, dtype=np.float32)),
        text=torch.from_numpy(np.array(features.text, dtype=np.float32)),
        label=label,
        group=group,
        train_idx=train_idx,
        train_label=train_label,
        val_idx=val_idx,
        test_idx=test_idx,
        info=info,
        sel_pos=sel_pos,
        sel_label=sel_label,
        pool_idx=pool_idx,
    )


def _video_input(features, cfg: TrainConfig, progress) -> np.ndarray:
    """The model's video input: the frames uint8 (n, T, H, W, 3), or with a frozen pretrained
    frame encoder their cached backbone features float16 (n, T, dim)."""
    if not backbones.is_frozen(cfg.frame_encoder):
        return features.video
    return feats.cached_frame_features(features, cfg.frame_encoder, progress=progress)


def _splits(features, label: np.ndarray, group: np.ndarray, cfg: TrainConfig) -> dict:
    """{"train", "val", "test"} row indices: the data's own `split` column, or `balanced_splits`."""
    if getattr(features, "split", None) is not None:
        split = np.asarray(features.split).astype(str)
        splits = {k: np.flatnonzero(split == k) for k in ("train", "val", "test")}
        if any(len(v) == 0 for v in splits.values()):
            raise ValueError("the data's `split` column must name train, val and test rows")
        return splits
    kw = {}
    if cfg.test_fraction is not None:
        kw["test_fraction"] = cfg.test_fraction
    if cfg.val_fraction is not None:
        kw["val_fraction"] = cfg.val_fraction
    return balanced_splits(label, group, seed=cfg.seed, **kw)


def _biased_training_rows(label: np.ndarray, group: np.ndarray, train_idx: np.ndarray, cfg: TrainConfig):
    """(training rows, their float64 targets) after the bias injection of `cfg` (alpha 1: none).

    Label mode keeps the rows and replaces their labels by Y~; sample mode keeps the true
    labels of a biased subsample of the rows.
    """
    train_label = label[train_idx]
    if cfg.alpha == 1:
        return train_idx, train_label
    if cfg.bias_mode == "label":
        biased = inject_label_bias(train_label, group[train_idx], cfg.alpha, split=cfg.bias_split, seed=cfg.seed)
        return train_idx, np.asarray(biased, dtype=np.float64)
    keep = np.asarray(inject_bias(train_label, group[train_idx], cfg.alpha, split=cfg.bias_split, seed=cfg.seed))
    train_idx = train_idx[keep]
    return train_idx, label[train_idx]


def _selection_rows(val_label: np.ndarray, val_group: np.ndarray, cfg: TrainConfig):
    """(positions into the validation rows, their labels) that model selection reads.

    "true": every validation row with its true label. "biased": the validation rows as biased
    raters would deliver them - the same injection as the training split (same alpha, mode and
    band split): rater-biased labels in label mode, a biased subsample in sample mode.
    """
    pos = np.arange(len(val_label))
    if cfg.val_labels == "true" or cfg.alpha == 1:
        return pos, val_label
    if cfg.bias_mode == "label":
        biased = inject_label_bias(val_label, val_group, cfg.alpha, split=cfg.bias_split, seed=cfg.seed + 1)
        return pos, np.asarray(biased, dtype=np.float64)
    keep = np.asarray(inject_bias(val_label, val_group, cfg.alpha, split=cfg.bias_split, seed=cfg.seed + 1))
    return pos[keep], val_label[keep]


def load_features(cfg: TrainConfig, progress=None):
    """The FeatureSet named by `cfg.data` (cached on disk by fairviz.data.features)."""
    if cfg.data == "synthetic":
        kw = dict(cfg.data_params)
        if cfg.n_samples is not None:
            kw["n_samples"] = cfg.n_samples
        kw.update({k: getattr(cfg, k) for k in ("frames", "size") if getattr(cfg, k) is not None})
        return feats.load_synthetic_features(
            seed=cfg.data_seed, text_model=cfg.text_model, progress=progress, mmap=bool(cfg.stream), **kw
        )
    return feats.load_manifest_features(
        cfg.data, frames=cfg.frames, size=cfg.size, sampling=cfg.frame_sampling,
        text_model=cfg.text_model, progress=progress, mmap=cfg.stream is not False,
        all_groups=True,  # training handles k groups; a two-valued column is coded as before
    )


def balanced_oversample(labels, groups, n_bins: int = 10, *, seed: int = 0) -> np.ndarray:
    """Row indices (with repeats) in which the groups are equally frequent within each label bin.

    Bins are label quantiles (deciles for n_bins=10), so every bin holds data. Within a bin each
    smaller group is oversampled with replacement up to the largest group's count; a group absent
    from a bin cannot be created and is left absent.
    """
    labels = np.asarray(labels, dtype=np.float64)
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    edges = np.unique(np.quantile(labels, np.linspace(0, 1, n_bins + 1)[1:-1]))
    bins = np.searchsorted(edges, labels, side="right")
    out = []
    for b in np.unique(bins):
        rows = np.flatnonzero(bins == b)
        members = [rows[groups[rows] == g] for g in np.unique(groups[rows])]
        target = max(len(m) for m in members)
        for m in members:
            out.append(m)
            if len(m) < target:
                out.append(rng.choice(m, target - len(m), replace=True))
    return np.sort(np.concatenate(out))


def _batches(
    train_groups: np.ndarray, pool: np.ndarray, n_rows: int, cfg: TrainConfig, epoch: int, batch_size: int
):
    """Index batches (positions into the training rows) for one epoch, group-stratified.

    `pool` lists training positions (with repeats for `balancing`); each epoch draws `n_rows` of
    them so every method gets the same number of steps. Under torchrun `batch_size` is the
    global batch (cfg.batch_size x world size), which the processes then split between them.
    """
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    chosen = pool if len(pool) == n_rows else rng.choice(pool, n_rows, replace=False)
    drop_last = len(chosen) > batch_size  # a batch of 1 would break BatchNorm
    sampler = GroupStratifiedBatchSampler(
        train_groups[chosen], batch_size, seed=int(rng.integers(2**31)), drop_last=drop_last
    )
    return [chosen[np.asarray(b, dtype=np.int64)] for b in sampler]


def _pool_batches(pool_groups: np.ndarray, n_batches: int, cfg: TrainConfig, epoch: int, batch_size: int):
    """`n_batches` group-stratified index batches (positions into the pool) of up to `batch_size`
    rows for one epoch. Own random stream, so the labelled batches of `_batches` are unchanged."""
    rng = np.random.default_rng([cfg.seed, epoch, 11])
    out: list[np.ndarray] = []
    while len(out) < n_batches:  # the pool holds at least as many rows as the labelled set
        drop_last = len(pool_groups) > batch_size
        sampler = GroupStratifiedBatchSampler(pool_groups, batch_size, seed=int(rng.integers(2**31)),
                                              drop_last=drop_last)
        out.extend(np.asarray(b, dtype=np.int64) for b in sampler)
    return out[:n_batches]


def _public_meta(meta):
    """`meta` without local file-system paths (cache folders, model folders) and cache state, so a
    saved run names no path on the machine that trained it."""
    if isinstance(meta, dict):
        return {
            k: _public_meta(v)
            for k, v in meta.items()
            if not (k == "path" or k.endswith("_path") or k == "cache_hit")
        }
    if isinstance(meta, list):
        return [_public_meta(v) for v in meta]
    return meta
