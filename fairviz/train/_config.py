"""`TrainConfig`: everything that defines a training run, and the checks that give a clear
message for a bad value before any data is loaded."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping

from fairviz import kgroups
from fairviz.data.video_dataset import check_video_options
from fairviz.methods import BIAS_MODES, FAIRNESS_ROWS, VAL_LABELS
from fairviz.model.backbones import check_frame_encoder
from fairviz.model.network import ModelConfig
from fairviz.train._methods import METHODS

SELECTIONS = ("val_pcc", "val_mse")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults: one run in well under 90 s on a 2-core CPU."""

    method: str = "ours"  # one of METHODS: vanilla, balancing, adversarial, l2, mmd, ours
    alpha: float = 4.0  # bias strength injected into the training split (1 = no bias)
    bias_mode: str = "label"  # "label": rater-biased labels Y~ (paper) | "sample": who is sampled
    lambda_w: float = 0.3  # lambda_W: weight of the W1 term of `ours`
    lambda_l2: float = 1.0  # weight of the mean-gap term of `l2` (squared distance of group means of Z)
    lambda_mmd: float = 0.15  # weight of the MMD term of `mmd`
    # fairoffset's shape-W1 weight (W1 units, like lambda_w). With its term on the whole training
    # pool, 0.1 cuts SPDD >= 5x in both bias modes with either text encoder on 15 of 16 seed runs,
    # never below vanilla's PCC (docs/RESULTS.md, seeds 0-4); above 1 its training breaks
    lambda_sw: float = 0.2
    mmd_bandwidth: float | None = 0.02  # MMD kernel base bandwidth h (squared score units; None: batch median)
    adv_weight: float = 0.1  # weight of the adversary's cross-entropy (adversarial, ours)
    gamma: float = 10.0  # gradient-reversal schedule lambda(p) = 2/(1+exp(-gamma p)) - 1
    epochs: int = 12  # passes over the training split (same for every method)
    batch_size: int = 64  # group-stratified batches (each holds both groups)
    lr: float = 2e-3  # Adam learning rate of encoders + regressor (cosine-decayed to lr_final_ratio*lr)
    lr_final_ratio: float = 0.1  # learning rate at the last step, relative to lr (1 = constant)
    adv_lr: float | None = None  # Adam learning rate of the adversary (None: same as lr)
    weight_decay: float = 1e-4  # Adam weight decay (L2) of encoders + regressor
    seed: int = 0  # model init, batch order, split and bias injection
    data: str = "synthetic"  # "synthetic" or the path of a manifest CSV (see fairviz.data)
    n_samples: int | None = None  # synthetic candidates (None: the generator's default dataset)
    data_seed: int = 0  # seed of the synthetic dataset itself (fixed across training seeds)
    data_params: dict = field(default_factory=dict)  # generator strengths passed to make_synthetic
    text_model: str | None = None  # local BERT folder (None: the bundled all-MiniLM-L6-v2)
    test_fraction: float | None = None  # balanced_splits arguments (None: its defaults)
    val_fraction: float | None = None
    bias_split: float = 0.5  # label quantile that separates the low and high bands for injection
    balance_bins: int = 10  # label bins within which `balancing` equalises the groups
    selection: str = "val_pcc"  # model selection on the validation split: val_pcc | val_mse
    val_labels: str = "true"  # labels the selection reads: "true" (audited) | "biased" (like training)
    target_spdd: float | None = None  # adjust the method's weight until validation SPDD <= this
    n_boot: int = 200  # bootstrap resamples for the test metrics' confidence intervals
    n_perm: int = 20  # group-label permutations for the finite-sample SPDD floor
    model: dict = field(default_factory=dict)  # ModelConfig overrides, e.g. {"video_hidden": 8}
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    name: str | None = None  # run name (None: derived from method, alpha, mode, lambda_w, seed)
    w1_form: str = "spdd"  # k > 2 groups: W1 term as SPDD ∫(max − min) ("spdd") or W1 to the pooled batch ("pooled")
    # rows the fairness terms read: "labelled" (the training rows), "pool" (every training-split
    # row, labelled or not: what sampling bias dropped still has inputs and S) or "auto" (pool for
    # fairoffset with every S known, else labelled). Same rows unless bias_mode is "sample"
    fairness_rows: str = "auto"
    s_fraction: float = 1.0  # share of training rows whose group S the training may use, in (0, 1]
    dro_alpha: float = 0.2  # dro: the smallest group share the chi-square DRO risk protects, in (0, 1]
    frames: int | None = None  # video frames per clip (None: the synthetic data's 8)
    size: int | None = None  # frame side in pixels, frames are size x size (None: the synthetic data's 32)
    frame_sampling: str = "uniform"  # manifest data: which frames of a clip, see FRAME_SAMPLINGS
    stream: bool | None = None  # memory-map the feature cache, read batch by batch (None: for manifest data)
    frame_encoder: str = "cnn"  # per-frame encoder: "cnn" (from scratch) or a pretrained backbone, see FRAME_ENCODERS

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        if self.bias_mode not in BIAS_MODES:
            raise ValueError(f"bias_mode must be one of {BIAS_MODES}; got {self.bias_mode!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}; got {self.selection!r}")
        if self.val_labels not in VAL_LABELS:
            raise ValueError(f"val_labels must be one of {VAL_LABELS}; got {self.val_labels!r}")
        if self.target_spdd is not None:
            _check_target(self.target_spdd, self.method)
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha >= 1):
            raise ValueError(f"alpha must be a number >= 1 (1 = no bias); got {self.alpha!r}")
        for key in ("lambda_w", "lambda_l2", "lambda_mmd", "lambda_sw", "adv_weight", "gamma", "weight_decay"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be a finite number >= 0; got {value!r}")
        for key in ("epochs", "batch_size", "balance_bins", "n_perm"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1; got {getattr(self, key)!r}")
        if self.mmd_bandwidth is not None and not (math.isfinite(self.mmd_bandwidth) and self.mmd_bandwidth > 0):
            raise ValueError(f"mmd_bandwidth must be > 0 or None (batch median); got {self.mmd_bandwidth!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (a batch must hold both groups)")
        if not (self.lr > 0 and (self.adv_lr is None or self.adv_lr > 0)):
            raise ValueError("learning rates must be > 0")
        if not 0 < self.lr_final_ratio <= 1:
            raise ValueError(f"lr_final_ratio must be in (0, 1]; got {self.lr_final_ratio}")
        if not 0 < self.bias_split < 1:
            raise ValueError(f"bias_split must be in (0, 1); got {self.bias_split}")
        ModelConfig.from_dict(dict(self.model))  # unknown keys fail now, not after loading data
        kgroups.check_config(self)
        _check_fairness_rows(self.fairness_rows, self.method, self.s_fraction)
        if self.s_fraction < 1 and METHODS[self.method].balance_training_rows:
            raise ValueError(f"{self.method} re-balances by group and needs S for every training row (s_fraction 1)")
        check_video_options(self.frames, self.size, self.frame_sampling)
        if self.stream not in (None, True, False):
            raise ValueError(f"stream must be true, false or null (automatic); got {self.stream!r}")
        check_frame_encoder(self.frame_encoder)
        if "frame_encoder" in self.model:
            raise ValueError("set the frame encoder with frame_encoder, not in model")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown train config keys {unknown}; this run is from another version")
        try:
            return cls(**dict(d))
        except TypeError as err:
            raise ValueError(f"bad train config: {err}") from None

    def default_name(self) -> str:
        field_ = METHODS[self.method].weight_field
        tag = {"lambda_w": "lw", "lambda_sw": "lsw", None: ""}.get(field_, "lam")
        lw = f"-{tag}{getattr(self, field_):g}" if field_ else ""
        return f"{self.method}-a{self.alpha:g}-{self.bias_mode}{lw}-s{self.seed}{kgroups.name_suffix(self)}"

    def pool_fairness(self) -> bool:
        """Whether the fairness terms read the whole training split rather than the labelled rows."""
        if self.fairness_rows == "auto":
            return METHODS[self.method].fairness_on_pool and self.s_fraction == 1
        return self.fairness_rows == "pool"

    def method_weight(self) -> float | None:
        """The weight of this method's distribution term (lambda_w / lambda_l2 / lambda_mmd /
        lambda_sw), or None."""
        field_ = METHODS[self.method].weight_field
        return None if field_ is None else float(getattr(self, field_))


def _check_target(target, method: str) -> None:
    """A clear message for a target SPDD that training cannot aim at."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
        raise ValueError(f"target_spdd must be a number in (0, 1); got {target!r}")
    if not 0 < target < 1:
        raise ValueError(
            f"target_spdd must be in (0, 1) (SPDD is a distance between score distributions in [0, 1]); got {target:g}"
        )
    if METHODS[method].weight_field is None:
        raise ValueError(
            f"method {method!r} has no fairness weight to adjust for target_spdd; use one of "
            f"{[m for m in METHODS if METHODS[m].weight_field]}"
        )


def _check_fairness_rows(rows, method: str, s_fraction: float) -> None:
    """A clear message for fairness rows that the method or the group labels cannot use."""
    if rows not in FAIRNESS_ROWS:
        raise ValueError(f"fairness_rows must be one of {FAIRNESS_ROWS}; got {rows!r}")
    if rows != "pool":
        return
    if not METHODS[method].pool_capable:
        raise ValueError(
            f"fairness_rows='pool' needs a fairness term that reads scores and S only; method {method!r} has "
            f"none (use one of {[m for m in METHODS if METHODS[m].pool_capable]})"
        )
    if s_fraction < 1:
        raise ValueError("fairness_rows='pool' needs every training row's group (s_fraction 1)")
