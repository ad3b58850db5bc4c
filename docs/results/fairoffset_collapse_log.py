"""Why fairoffset collapses at λ_sw = 1 with a weak text encoder: per-epoch diagnostics, and the
three changes of its shape-W1 term that were tried against it (none shipped; docs/RESULTS.md,
"Why λ = 1 collapses with the weak encoder").

    python docs/results/fairoffset_collapse_log.py [--variant V] [--text-model DIR] --out FILE.jsonl JOB [JOB ...]

JOBs as in `fairoffset_variants.py` (``variant:mode:seed[:lambda_sw]``). Variants of the term,
patched in-process (the package is not modified):

- ``base``: the shipped term;
- ``debias``: minus the same term on one random size-preserving relabelling of the batch (a
  permutation baseline: expected difference 0 for every shape when the groups match);
- ``warm``: weight × ¼, ½, ¾ in epochs 1-3, then full;
- ``big``: the term on a pool batch 4× the labelled batch (also under rater bias).

Each run appends the driver's record plus ``diag``: per epoch the validation score std, the share
of validation scores within 0.01 of their median, validation PCC / SPDD, the mean batch term
(``sw1``) and the MSE. One torch thread; deterministic by seed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from fairviz import kgroups
from fairviz import train as T
from fairviz.train import _data, _evaluate, _loop

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("fairoffset_variants", HERE / "fairoffset_variants.py")
drv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drv)

WARM_EPOCHS = 3
BIG = 4
state: dict = {}


def patch(variant: str) -> None:
    """Replace the term, and wrap validation and training to log the diagnostics."""
    term, validate, train = kgroups.shape_w1_term, _loop.validate, T.train

    def shape_term(score, s, n_groups, form="spdd"):
        v = term(score, s, n_groups, form)
        if variant == "debias":
            perm = torch.randperm(s.shape[0], generator=state["gen"]).to(s.device)
            v = v - term(score, s[perm], n_groups, form)
        if variant == "warm":
            v = v * min(1.0, (state["epoch"] + 1) / (WARM_EPOCHS + 1))
        return v

    def logged_validate(net, data, device, cfg):
        val = validate(net, data, device, cfg)
        scores, _ = _evaluate.predict(net, data, data.val_idx, device)
        state["diag"].append({"epoch": state["epoch"] + 1, "val_std": float(np.std(scores)),
                              "near_median": float(np.mean(np.abs(scores - np.median(scores)) < 0.01)),
                              "val_pcc": val.pcc, "val_spdd": val.spdd})
        state["epoch"] += 1
        return val

    def logged_train(cfg, **kw):
        run = train(cfg, **kw)
        for d, h in zip(state["diag"], run.history):
            d.update(sw1=h.get("sw1"), mse=h.get("mse"))
        return run

    kgroups.shape_w1_term, _loop.validate, T.train = shape_term, logged_validate, logged_train
    if variant == "big":
        pool_batches = _loop._pool_batches
        _loop._pool_batches = lambda g, n, cfg, epoch, size: pool_batches(g, n, cfg, epoch, size * BIG)
        _data.PreparedData.unlabelled_pool = property(lambda self: self.pool_idx is not None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=("base", "debias", "warm", "big"), default="base")
    p.add_argument("--text-model", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("jobs", nargs="+")
    args = p.parse_args()
    torch.set_num_threads(1)
    drv.register_variants()
    patch(args.variant)
    features = T.load_features(T.TrainConfig(text_model=args.text_model))
    for job in args.jobs:
        state.update(gen=torch.Generator().manual_seed(drv.parse_job(job)["seed"]), epoch=0, diag=[])
        rec = drv.run_job(job, features, None, args.text_model)
        rec.update(term_variant=args.variant, diag=state["diag"])
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        t = rec["trained"]
        print(f"{args.variant} {job}: PCC {t['pcc']:.3f} SPDD {t['spdd']:.4f} std {t['score_std']:.3f}", flush=True)


if __name__ == "__main__":
    main()
