"""The k = 4 and no-S experiments of docs/RESULTS.md ("Beyond two groups, beyond known groups").

    PYTHONPATH=. python docs/results/kgroups_experiment.py OUT.csv 0,1,2 [sweep]

"sweep": the lambda_W sweep of ours (both k-group W1 forms) instead of the method comparison;
"check": vanilla and the setting the sweep picked on seed 0 (ours, pooled, lambda_W 0.1), for
fresh seeds; "semi": that setting with S known for 10 % of the training rows; "fairoffset": the
k-group fairoffset at TrainConfig's default lambda_sw (0.01 now; the first runs were made when it
was 0.3), both W1 forms ("fairoffset-pooled", "fairoffset-spdd": one form); "offset": fairoffset
with lambda_sw 0 (the offsets alone); "nos": the methods without S (dro, arl); "vanilla": vanilla
alone (to re-check that older rows still hold for the current code); "fairoffset-semi": fairoffset
at its defaults with S known for 10 % of the training rows.

Synthetic data with 4 groups of shares 10/20/30/40 % (group 0 the smallest and least favoured),
rater bias alpha = 4, every other TrainConfig field at its default except the split fractions
(test 0.2, val 0.1, so that the 10 % group keeps training rows). One torch thread per run. A row
per run is appended to OUT.csv as soon as the run ends.
"""

import sys
import time
from pathlib import Path

import pandas as pd
import torch

from fairviz.kgroups import kgroup_summary
from fairviz.train import TrainConfig, load_features, train

BASE = dict(alpha=4.0, bias_mode="label", data_params={"group_shares": [0.1, 0.2, 0.3, 0.4]},
            test_fraction=0.2, val_fraction=0.1, n_boot=20)
RUNS = [("vanilla", {}), ("ours", {}), ("ours", {"w1_form": "pooled"}), ("mmd", {}), ("l2", {}),
        ("adversarial", {}), ("dro", {}), ("arl", {}), ("ours", {"s_fraction": 0.1})]
CHECK = [("vanilla", {}), ("ours", {"lambda_w": 0.1, "w1_form": "pooled"})]
SEMI = [("ours", {"lambda_w": 0.1, "w1_form": "pooled", "s_fraction": 0.1})]
FAIROFFSET_SEMI = [("fairoffset", {"s_fraction": 0.1})]
FAIROFFSET = [("fairoffset", {"w1_form": form}) for form in ("pooled", "spdd")]
OFFSET = [("fairoffset", {"lambda_sw": 0.0})]
NOS = [("dro", {}), ("arl", {})]
VANILLA = [("vanilla", {})]
SWEEP = [("ours", {"lambda_w": lw, "w1_form": form}) for lw in (0.1, 0.03) for form in ("spdd", "pooled")]


def main() -> None:
    out, seeds = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
    runs = {"sweep": SWEEP, "check": CHECK, "semi": SEMI, "fairoffset": FAIROFFSET, "fairoffset-pooled": FAIROFFSET[:1],
             "fairoffset-spdd": FAIROFFSET[1:],
             "offset": OFFSET, "nos": NOS, "vanilla": VANILLA,
             "fairoffset-semi": FAIROFFSET_SEMI}.get((sys.argv[3:] or [""])[0], RUNS)
    torch.set_num_threads(1)
    features = load_features(TrainConfig(**BASE))
    for seed in seeds:
        for method, extra in runs:
            cfg = TrainConfig(method=method, seed=seed, **BASE, **extra)
            t0 = time.time()
            run = train(cfg, features=features)
            test = run.test_predictions()
            s = kgroup_summary(test["score"], test["group"], test["label"], tau=0.5, smallest=0)
            rec = {"name": run.name, "method": method, "lambda_w": cfg.lambda_w, "w1_form": cfg.w1_form,
                   "lambda_sw": cfg.lambda_sw, "group_offset": run.info.get("group_offset"),
                   "s_fraction": cfg.s_fraction,
                   "seed": seed, "spdd": s["spdd"], "pcc": s["pcc"], "worst_group_pcc": s["worst_group_pcc"],
                   "small_gap": s["small_gap"], "dp_tau": s["dp_tau"], "score_std": s["score_std"],
                   **{f"rate{g}": r for g, r in s["rates"].items()},
                   **{f"pcc{g}": r for g, r in s["group_pcc"].items()},
                   "spdd_floor": run.metrics["spdd_floor"]["mean"], "best_epoch": run.metrics["best_epoch"],
                   "n_test": len(test), "n_train": run.info["n_train"], "seconds": time.time() - t0}
            pd.DataFrame([rec]).to_csv(out, mode="a", header=not out.exists(), index=False)
            print(f"{run.name}: SPDD {rec['spdd']:.3f} PCC {rec['pcc']:.3f} worst {rec['worst_group_pcc']:.3f} "
                  f"gap {rec['small_gap']:+.3f} ({rec['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
