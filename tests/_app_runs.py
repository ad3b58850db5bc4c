"""Run folders for the app tests, made in a second: real `fairviz.runs.save_run` folders holding
synthetic predictions (no training). Shared by tests/test_app.py, tests/test_browser.py and
bench/bench_app.py.

The runs mimic what `make models` ships: the six methods at α = 4 (rater bias, seed 0; `ours`
with λ_W = 1) and an `ours` λ_W sweep. The score gap between the groups shrinks with λ_W and is
smallest for `ours`, so the pages have something to show.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

#: (method, λ_W, group gap in score, accuracy) of the fake runs
FAKE_RUNS = [
    ("vanilla", 1.0, 0.14, 0.60),
    ("balancing", 1.0, 0.05, 0.62),
    ("adversarial", 1.0, 0.09, 0.61),
    ("l2", 1.0, 0.12, 0.60),
    ("mmd", 1.0, 0.10, 0.61),
    ("ours", 1.0, 0.02, 0.65),
    ("ours", 0.0, 0.13, 0.60),
    ("ours", 0.3, 0.06, 0.63),
    ("ours", 3.0, 0.01, 0.45),
]


def make_fake_run(method: str, lambda_w: float, gap: float, acc: float, *, n_test: int = 600, n_val: int = 200,
                  seed: int = 0, n_boot: int = 50):
    """A `fairviz.train.Run` with synthetic scores: score ≈ acc·label + gap·group + noise."""
    from fairviz.model.network import FairMultimodalNet, ModelConfig
    from fairviz.train import Run, TrainConfig, compute_metrics

    rng = np.random.default_rng(zlib.crc32(f"{method}-{lambda_w:g}".encode()))
    cfg = TrainConfig(method=method, alpha=4.0, lambda_w=float(lambda_w), seed=seed, epochs=3, n_boot=n_boot)
    mcfg = ModelConfig()
    net = FairMultimodalNet(mcfg)
    n = n_test + n_val
    group = np.arange(n) % 2
    label = np.clip(rng.normal(0.5, 0.15, n), 0, 1)
    score = np.clip(0.2 + acc * label * 0.6 + gap * group + rng.normal(0, 0.08, n), 0, 1)
    split = np.array(["val"] * n_val + ["test"] * n_test)
    preds = pd.DataFrame({"score": score, "label": label, "group": group, "split": split})
    test = preds[preds["split"] == "test"]
    z = rng.normal(size=(n_test, mcfg.d_z)).astype(np.float32)
    z[:, 0] += 4 * gap * test["group"].to_numpy()
    metrics = compute_metrics(test["score"].to_numpy(), test["group"].to_numpy(), test["label"].to_numpy(), cfg)
    metrics["spdd_floor"] = {"mean": 0.01, "p95": 0.02, "n_perm": 5}
    history = [{"epoch": e, "loss": 0.1 / e, "mse": 0.08 / e, "val_pcc": 0.3 + 0.05 * e, "val_spdd": gap / e}
               for e in range(1, 4)]
    return Run(name=cfg.default_name(), config=cfg, history=history, predictions=preds, z=z, metrics=metrics,
               state_dict={k: v.detach().clone() for k, v in net.state_dict().items()}, model_config=mcfg,
               info={"fake": True})


def make_fake_models(root: str | Path, runs=FAKE_RUNS) -> list[str]:
    """Write the fake runs into ``root`` (created); returns their folder names."""
    from fairviz.runs import save_run

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for method, lw, gap, acc in runs:
        run = make_fake_run(method, lw, gap, acc)
        path = save_run(run, root / run.name)
        names.append(path.name)
    return names
