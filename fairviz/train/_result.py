"""`Run`: a trained model and everything measured on it, built once training has restored the
selected epoch (saving and loading runs is `fairviz.runs`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from fairviz import __version__
from fairviz.model.network import FairMultimodalNet, ModelConfig
from fairviz.train._config import TrainConfig
from fairviz.train._evaluate import compute_metrics, predict, spdd_floor


@dataclass
class Run:
    """A trained model and everything measured on it."""

    name: str
    config: TrainConfig
    history: list  # per epoch: epoch, loss terms, val_pcc, val_spdd, ...
    predictions: pd.DataFrame  # score, label (true), group, split ("val" / "test")
    z: np.ndarray  # (n_test, d_z) Z of the test rows, in the order of the test predictions
    metrics: dict  # audit(...).to_dict() on the test split + extras
    state_dict: dict  # model weights (CPU tensors)
    model_config: ModelConfig = field(default_factory=ModelConfig)
    info: dict = field(default_factory=dict)  # sizes, timings, best epoch, versions

    @property
    def method(self) -> str:
        return self.config.method

    def test_predictions(self) -> pd.DataFrame:
        return self.predictions[self.predictions["split"] == "test"].reset_index(drop=True)

    def model(self) -> FairMultimodalNet:
        """A fresh network with this run's weights, in eval mode."""
        net = FairMultimodalNet(self.model_config)
        net.load_state_dict(self.state_dict)
        return net.eval()


def build_run(cfg, net, mcfg, data, device, history, best_epoch) -> Run:
    """The `Run` of a trained `net`: its validation and test predictions, test metrics and weights."""
    val_scores, _ = predict(net, data, data.val_idx, device)
    test_scores, test_z = predict(net, data, data.test_idx, device)
    # scores are stored as float64 copies of the float32 outputs, clipped against rounding
    val_scores = np.clip(val_scores, 0.0, 1.0)
    test_scores = np.clip(test_scores, 0.0, 1.0)
    preds = pd.concat(
        [
            pd.DataFrame(
                {
                    "score": sc,
                    "label": data.label[idx],
                    "group": data.group[idx],
                    "split": split,
                }
            )
            for sc, idx, split in ((val_scores, data.val_idx, "val"), (test_scores, data.test_idx, "test"))
        ],
        ignore_index=True,
    )
    metrics = compute_metrics(test_scores, data.group[data.test_idx], data.label[data.test_idx], cfg)
    best = history[best_epoch - 1] if history else {}
    metrics["val_pcc"] = best.get("val_pcc")
    metrics["val_spdd"] = best.get("val_spdd")
    metrics["best_epoch"] = best_epoch
    metrics["score_std"] = float(np.std(test_scores))  # spread of the test scores (collapse check)
    metrics["spdd_floor"] = spdd_floor(
        test_scores, data.group[data.test_idx], n_perm=cfg.n_perm, seed=cfg.seed
    )
    info = {
        **data.info,
        "best_epoch": best_epoch,
        "fairviz_version": __version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),  # float sums differ across thread counts
        "train_label_mean_gap": _mean_gap(data.train_label, data.group[data.train_idx]),
    }
    return Run(
        name=cfg.name or cfg.default_name(),
        config=cfg,
        history=history,
        predictions=preds,
        z=test_z,
        metrics=metrics,
        state_dict={k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
        model_config=mcfg,
        info=info,
    )


def _mean_gap(labels, groups) -> float:
    labels, groups = np.asarray(labels), np.asarray(groups)
    return float(labels[groups == 1].mean() - labels[groups == 0].mean())
