"""The Train page's form: its choices in words, its starting values, and the `TrainConfig` its
values make (no Streamlit here). Imports `fairviz.train`, hence torch: for the Train page only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairviz import kgroups
from fairviz.data import DEFAULT_FRAMES, DEFAULT_SIZE
from fairviz.methods import FAIRNESS_ROWS, VAL_LABELS
from fairviz.model.backbones import FRAME_ENCODERS
from fairviz.train import METHODS, TrainConfig

WEIGHT_LABELS = {
    "lambda_w": "λ_W: weight of the Wasserstein term",
    "lambda_l2": "λ: weight of the mean-gap (L2) term",
    "lambda_mmd": "λ: weight of the MMD term",
    "lambda_sw": "λ: weight of the scale-free W1 term",
}
VAL_LABEL_TEXT = dict(zip(VAL_LABELS, ("an audited validation set (true labels)",
                                       "validation labels biased like training")))
FAIRNESS_ROWS_TEXT = dict(zip(FAIRNESS_ROWS, (
    "the method's choice (all training-split rows for fairoffset)",
    "the labelled training rows only",
    "all training-split rows, labelled or not",
), strict=True))
FRAME_ENCODER_TEXT = dict(zip(FRAME_ENCODERS, (
    "small CNN trained from scratch",
    "EfficientNet-Lite0, ImageNet-pretrained, frozen (features cached)",
    "EfficientNet-Lite0, ImageNet-pretrained, fine-tuned",
), strict=True))
SOURCES = {
    "synthetic": "Built-in synthetic interviews",
    "manifest": "Real videos: a manifest CSV (video, label, group[, transcript, split])",
    "first_impressions": "ChaLearn First Impressions V2 folder",
}


def form_defaults() -> tuple[dict, dict]:
    """(widget key → starting value, widget key → allowed values) of the Train form."""
    d = TrainConfig()
    defaults = {
        "fv_train_source": "synthetic", "fv_train_path": "", "fv_train_method": "ours", "fv_train_bias": "label",
        "fv_train_alpha": float(d.alpha), "fv_train_epochs": int(d.epochs), "fv_train_seed": int(d.seed),
        "fv_train_name": "", "fv_train_bs": int(d.batch_size), "fv_train_lr": float(d.lr), "fv_train_n": 0,
        "fv_train_adv": float(d.adv_weight), "fv_train_target": 0.0, "fv_train_sel": d.val_labels,
        "fv_train_attr": "binary", "fv_train_sfrac": 1.0, "fv_train_w1form": d.w1_form,
        "fv_train_frames": DEFAULT_FRAMES, "fv_train_size": DEFAULT_SIZE, "fv_train_fenc": d.frame_encoder,
        "fv_train_fairrows": d.fairness_rows,
    }
    options = {"fv_train_method": list(METHODS), "fv_train_source": list(SOURCES), "fv_train_sel": list(VAL_LABEL_TEXT),
               "fv_train_attr": list(kgroups.SYNTHETIC_ATTRIBUTES), "fv_train_sfrac": list(kgroups.S_FRACTIONS),
               "fv_train_w1form": list(kgroups.W1_FORMS), "fv_train_fenc": list(FRAME_ENCODERS),
               "fv_train_fairrows": list(FAIRNESS_ROWS_TEXT)}
    return defaults, options


def weight_default(field: str) -> float:
    """`TrainConfig`'s default of the weight ``field`` (e.g. ``lambda_w``)."""
    return float(getattr(TrainConfig(), field))


def uses_s(method: str) -> bool:
    """True when the training of ``method`` reads the group S of its rows (so a share of rows
    with a known S applies): not for dro and arl, nor for balancing, which only resamples."""
    spec = METHODS[method]
    return spec.needs_s and not spec.balance_training_rows


def train_config(v: Mapping[str, Any], data: str) -> TrainConfig:
    """The `TrainConfig` of the form's values ``v`` (keys: source, method, alpha, bias_mode, weight,
    adv_weight, epochs, batch_size, lr, seed, n_samples, target, val_labels, attr, w1_form,
    s_fraction, frames, size, frame_encoder and fairness_rows (optional)) and the resolved ``data`` source. Options that do not apply are
    left at their defaults: the weight for a method without one, the synthetic size for real
    videos, frames and size for synthetic data, the share of known S for methods that do not read it,
    the fairness rows for methods without a term that could read unlabelled rows."""
    field = METHODS[v["method"]].weight_field
    synthetic = v["source"] == "synthetic"
    return TrainConfig(
        method=v["method"], alpha=float(v["alpha"]), bias_mode=v["bias_mode"],
        **({field: float(v["weight"])} if field else {}),
        adv_weight=float(v["adv_weight"]), epochs=int(v["epochs"]), batch_size=int(v["batch_size"]), lr=float(v["lr"]),
        seed=int(v["seed"]), data=data, n_samples=int(v["n_samples"]) or None if synthetic else None,
        target_spdd=float(v["target"]) if field and v["target"] > 0 else None, val_labels=v["val_labels"],
        data_params=dict(kgroups.SYNTHETIC_ATTRIBUTES[v["attr"]][1]), w1_form=v["w1_form"],
        s_fraction=float(v["s_fraction"]) if uses_s(v["method"]) else 1.0,
        **({} if synthetic else {"frames": int(v["frames"]), "size": int(v["size"])}),
        frame_encoder=v.get("frame_encoder", "cnn"),
        fairness_rows=v.get("fairness_rows", "auto") if METHODS[v["method"]].pool_capable else "auto",
    )
