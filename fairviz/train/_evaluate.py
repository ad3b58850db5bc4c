"""Scoring a network: predictions, the validation numbers of each epoch, the epoch model
selection restores, and the stored test metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fairviz.metrics import audit, pcc, spdd
from fairviz.model.network import FairMultimodalNet
from fairviz.train._config import TrainConfig
from fairviz.train._data import PreparedData


@torch.no_grad()
def predict(net: FairMultimodalNet, data: PreparedData, idx, device, batch_size: int | None = None):
    """Scores (n,) float64 and Z (n, d_z) float32 for rows `idx`, in eval mode.

    `batch_size` None: 256 clips a pass, fewer for large clips (about 4 M video pixels a pass, so
    the frame CNN's activations stay near 0.5 GB: 30 frames of 112x112 go 11 at a time).
    """
    if batch_size is None:
        per_clip = int(np.prod(data.video.shape[1:4]))  # T*H*W pixels (T*dim for frame features)
        batch_size = max(1, min(256, (1 << 22) // max(1, per_clip)))
    net.eval()
    scores, zs = [], []
    idx = np.asarray(idx)
    for start in range(0, len(idx), batch_size):
        s, z = net(*data.batch(idx[start : start + batch_size], device))
        scores.append(s.double().cpu().numpy())
        zs.append(z.float().cpu().numpy())
    if not scores:
        return np.zeros(0), np.zeros((0, net.cfg.d_z), dtype=np.float32)
    return np.concatenate(scores), np.concatenate(zs)


def spdd_floor(scores, groups, *, n_perm: int = 20, seed: int = 0) -> dict:
    """SPDD of the same scores with the group labels permuted: the finite-sample floor.

    Two samples from one distribution still differ by ~sigma/sqrt(n); an SPDD near this floor is
    as fair as this test split can show. Returns {"mean", "p95", "n_perm"}.
    """
    rng = np.random.default_rng(seed)
    groups = np.asarray(groups)
    vals = np.array([spdd(scores, rng.permutation(groups)) for _ in range(n_perm)])
    return {"mean": float(vals.mean()), "p95": float(np.quantile(vals, 0.95)), "n_perm": int(n_perm)}


METRIC_KEYS = ("n_boot", "random_state")  # the audit arguments stored next to the metrics


def compute_metrics(scores, groups, labels, cfg_or_n_boot=200, random_state: int | None = None) -> dict:
    """The stored test metrics: `audit(...).to_dict()` plus its arguments.

    `python -m fairviz audit --json` gives the same shape; recomputing from a run's
    predictions.csv with the stored `n_boot` and `random_state` gives identical numbers.
    """
    if isinstance(cfg_or_n_boot, TrainConfig):
        n_boot, rs = cfg_or_n_boot.n_boot, cfg_or_n_boot.seed
    else:
        n_boot, rs = int(cfg_or_n_boot), 0
    if random_state is not None:
        rs = random_state
    out = audit(scores, groups, labels, n_boot=n_boot, random_state=rs).to_dict()
    out["n_boot"] = n_boot
    out["random_state"] = rs
    return out


@dataclass(frozen=True)
class Validation:
    """The validation numbers of one epoch."""

    pcc: float  # PCC against the true validation labels
    mse: float  # MSE against the true validation labels
    spdd: float  # SPDD between the groups' validation scores
    selection_pcc: float | None  # PCC on the rows and labels selection reads (val_labels != "true")
    criterion: float  # what model selection maximises (val_pcc, or -MSE for val_mse)


def validate(net: FairMultimodalNet, data: PreparedData, device, cfg: TrainConfig) -> Validation:
    """Score the validation rows and compute what the history records and selection reads."""
    val_scores, _ = predict(net, data, data.val_idx, device)
    y_val, g_val = data.label[data.val_idx], data.group[data.val_idx]
    val_pcc = _safe(pcc, val_scores, y_val)
    val_mse = float(np.mean((val_scores - y_val) ** 2))
    val_spdd = float(spdd(val_scores, g_val))
    sel_scores, sel_label = _selection_view(val_scores, y_val, data)
    sel_pcc = _safe(pcc, sel_scores, sel_label) if cfg.val_labels != "true" else None
    if cfg.selection == "val_pcc":
        crit = val_pcc if sel_pcc is None else sel_pcc
    else:
        crit = -float(np.mean((sel_scores - sel_label) ** 2))
    return Validation(val_pcc, val_mse, val_spdd, sel_pcc, crit)


def _selection_view(val_scores: np.ndarray, y_val: np.ndarray, data: PreparedData):
    """(scores, labels) of the validation rows model selection reads (see `_selection_rows`)."""
    if data.sel_pos is None:
        return val_scores, y_val
    return val_scores[data.sel_pos], data.sel_label


def _safe(fn, *args) -> float:
    try:
        value = float(fn(*args))
    except ValueError:
        return float("nan")
    return value


class _BestEpoch:
    """The epoch to restore: the best validation criterion; with a target SPDD, the best among
    the epochs whose validation SPDD is at most the target (the fairest epoch when none is)."""

    def __init__(self, target: float | None):
        self.target = target
        self.key = None  # ((meets target, criterion or -SPDD), ...) compared as tuples
        self.state, self.epoch = None, -1

    def offer(self, crit: float, val_spdd: float, epoch: int, state_fn) -> None:
        crit = -math.inf if math.isnan(crit) else crit
        if self.target is None:
            key = (True, crit)
        else:
            ok = val_spdd <= self.target
            key = (ok, crit if ok else -val_spdd)
        if self.key is None or key > self.key:
            self.key, self.state, self.epoch = key, state_fn(), epoch

    def info(self, history: list, *, group_offset: bool) -> dict:
        """What the run's info records about the restored epoch: its group offset (methods that
        fit one) and what the target controller reached (runs with a target)."""
        out = {}
        if group_offset:
            out["group_offset"] = history[self.epoch - 1]["group_offset"]
        if self.target is not None:
            out["target_spdd"] = self.report(history)
        return out

    def report(self, history: list) -> dict:
        """What the target controller reached (stored in the run's info)."""
        chosen = history[self.epoch - 1]
        return {
            "target": self.target,
            "reached": bool(self.key[0]),
            "weight": chosen["weight"],  # the weight the restored epoch was trained with
            "val_spdd": chosen["val_spdd"],
            "weights": [h["weight"] for h in history],
        }
