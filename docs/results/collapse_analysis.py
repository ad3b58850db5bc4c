"""Why the W1 term of `ours` collapses the scores: its gradient along the score scale, measured.

    python docs/results/collapse_analysis.py RUN_DIR [RUN_DIR ...] [--text-model DIR] [--csv OUT]

For each saved run, the training rows are scored by the run's network and, for every
group-stratified training batch of one epoch (the batches training uses), the score is written as
s_c = m + c·(s − m) (m the batch mean, c the scale) and autograd gives at c = 1

- dMSE/dc against the training (rater-biased) labels, and
- dW1/dc, the W1 term per unit weight: exactly the batch W1 (W1 is linear in the scale), and
- dW1/dc with the group labels permuted: the part of the batch W1 that no fairness can remove
  (two samples of 32 from one distribution still differ by about σ/√32).

Shrinking the scales (c → 0) trades MSE for W1. The MSE slope at c = 0 is −2·cov(ỹ, s − m): if
λ_W · E[W1_batch] exceeds it for the model's own score direction, c = 0 (a constant score) is a
local minimum of MSE + λ_W·W1 along the scale, and the critical weight is
λ_crit = 2·cov(ỹ, s − m) / E[W1_batch]. The scale-free term of `fairoffset` has derivative 0
along c by construction (reported as a check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def analyse(run_dir, text_model=None) -> dict:
    import torch  # heavy

    from fairviz.losses import scaled_wasserstein_loss, wasserstein_loss
    from fairviz.runs import load_run
    from fairviz.train import _batches, load_features, predict, prepared_from_features

    run = load_run(run_dir)
    cfg = run.config
    if text_model is not None:
        cfg.text_model = text_model
    data = prepared_from_features(load_features(cfg), cfg)
    net = run.model()
    scores, _ = predict(net, data, data.train_idx, "cpu")
    y = torch.as_tensor(data.train_label)
    s_all = torch.as_tensor(scores)
    g_all = torch.as_tensor(data.group[data.train_idx])
    rng = np.random.default_rng(0)
    rows = []
    for pos in _batches(data.group[data.train_idx], np.arange(len(data.train_idx)), len(data.train_idx), cfg, 0,
                        cfg.batch_size):
        pos = torch.as_tensor(pos)
        sc, g, yb = s_all[pos], g_all[pos], y[pos]
        m = sc.mean()
        c = torch.ones((), dtype=torch.float64, requires_grad=True)
        q = m + c * (sc - m)
        (d_mse,) = torch.autograd.grad(torch.mean((q - yb) ** 2), c, retain_graph=True)
        (d_w1,) = torch.autograd.grad(wasserstein_loss(q, g), c, retain_graph=True)
        (d_sw1,) = torch.autograd.grad(scaled_wasserstein_loss(q, g, eps=0.0), c)
        perm = torch.as_tensor(rng.permutation(g.numpy()))
        rows.append({
            "d_mse": float(d_mse), "d_w1": float(d_w1), "d_sw1": float(d_sw1),
            "w1_perm": float(wasserstein_loss(sc, perm)),
            "cov": float(torch.mean((sc - m) * (yb - yb.mean()))), "std": float(sc.std(unbiased=False)),
        })
    b = pd.DataFrame(rows).mean()
    lam = cfg.method_weight() if cfg.method_weight() is not None else 0.0
    test = run.test_predictions()
    return {
        "run": Path(run_dir).name, "method": cfg.method, "weight": lam,
        "test_pcc": run.metrics["pcc"]["value"], "test_spdd": run.metrics["spdd"]["value"],
        "test_std": float(np.std(test["score"])),
        "train_batch_std": b["std"], "dMSE/dc": b["d_mse"], "dW1/dc": b["d_w1"], "dSW1/dc": b["d_sw1"],
        "W1_batch_floor": b["w1_perm"], "floor_share": b["w1_perm"] / b["d_w1"] if b["d_w1"] else np.nan,
        "lambda_crit": 2 * b["cov"] / b["d_w1"] if b["d_w1"] else np.nan,
        "lambda_crit_fair": 2 * b["cov"] / b["w1_perm"] if b["w1_perm"] else np.nan,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--text-model", default=None)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args(argv)
    table = pd.DataFrame([analyse(r, a.text_model) for r in a.runs])
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    if a.csv:
        table.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
