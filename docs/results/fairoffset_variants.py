"""Variants of `fairoffset` measured in both bias modes, each run also followed by the repair.

    python docs/results/fairoffset_variants.py run JOB [JOB ...] [--out FILE.jsonl] [--preds DIR]
    python docs/results/fairoffset_variants.py table [--out FILE.jsonl]

A JOB is ``variant:mode:seed[:lambda_sw]`` (mode ``label`` = rater bias, ``sample`` = sampling
bias; α = 4, default synthetic data). Variants (registered in-process in `fairviz.train.METHODS`
as copies of the shipped `fairoffset` entry with one or two fields changed; the package itself is
not modified):

- ``vanilla``, ``fairoffset``: the shipped methods;
- ``fo_bal``: fairoffset trained on the `balancing` method's rows (oversampled so the groups are
  equally frequent within each of 10 label bins), ``balance_training_rows=True``;
- ``sw_bal``: the same rows and the shape-W1 term, no group offset;
- ``sw``: the shape-W1 term alone (no offset, no balancing).

Each run appends one JSON line to ``--out`` as soon as it finishes: the test metrics as trained,
the SPDD permutation floor (mean, p95 over 1000 permutations), the score std, the learned offset,
and the same numbers after the barycenter repair fitted on the run's validation rows at θ = 0.5
and 1 (`fairviz.postprocess`). Features are loaded once per process; one torch thread; every
number is deterministic by seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from fairviz import postprocess
from fairviz import train as T

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "fairoffset_variants.jsonl"
N_PERM = 1000  # permutations for the SPDD floor (the shipped runs' README uses 1000)


def register_variants() -> None:
    """Add the variant entries to `fairviz.train.METHODS` (TrainConfig validates against it)."""
    base = T.METHODS["fairoffset"]
    variants = {
        "fo_bal": dict(balance_training_rows=True),
        "sw_bal": dict(balance_training_rows=True, group_offset=False),
        "sw": dict(group_offset=False),
    }
    for name, change in variants.items():
        T.METHODS[name] = dataclasses.replace(base, name=name, compared=False, **change)


def parse_job(job: str) -> dict:
    parts = job.split(":")
    if len(parts) not in (3, 4):
        raise SystemExit(f"error: job {job!r} is not variant:mode:seed[:lambda_sw]")
    out = {"method": parts[0], "bias_mode": parts[1], "seed": int(parts[2])}
    if len(parts) == 4:
        out["lambda_sw"] = float(parts[3])
    return out


def repaired(pred, theta: float, seed: int) -> dict:
    rmap = postprocess.fit_validation_repair(pred)
    test = postprocess.repaired_test(pred, rmap, theta)
    return postprocess.pipeline_metrics(test["score"], test["label"], test["group"], n_perm=N_PERM, seed=seed)


def run_job(job: str, features, preds_dir: Path | None) -> dict:
    spec = parse_job(job)
    cfg = T.TrainConfig(alpha=4.0, **spec)
    t0 = time.time()
    run = T.train(cfg, features=features)
    pred = run.predictions
    test = run.test_predictions()
    rec = {
        "job": job,
        "variant": cfg.method,
        "mode": cfg.bias_mode,
        "seed": cfg.seed,
        "lambda_sw": cfg.lambda_sw if T.METHODS[cfg.method].weight_field == "lambda_sw" else None,
        "best_epoch": run.info["best_epoch"],
        "val_pcc": run.metrics["val_pcc"],  # of the restored epoch, true validation labels
        "val_spdd": run.metrics["val_spdd"],
        "group_offset": run.info.get("group_offset"),
        "n_train": run.info["n_train"],
        "train_label_gap": run.info["train_label_mean_gap"],
        "seconds": round(time.time() - t0, 1),
        "trained": postprocess.pipeline_metrics(test["score"], test["label"], test["group"], n_perm=N_PERM,
                                                seed=cfg.seed),
        "repair_0.5": repaired(pred, 0.5, cfg.seed),
        "repair_1": repaired(pred, 1.0, cfg.seed),
    }
    if preds_dir is not None:
        preds_dir.mkdir(parents=True, exist_ok=True)
        pred.to_csv(preds_dir / f"{job.replace(':', '_')}.csv", index=False)
    return rec


def cmd_run(args) -> None:
    torch.set_num_threads(1)
    register_variants()
    features = T.load_features(T.TrainConfig())
    out = Path(args.out)
    for job in args.jobs:
        rec = run_job(job, features, Path(args.preds) if args.preds else None)
        with out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        t = rec["trained"]
        print(f"{job}: PCC {t['pcc']:.3f} SPDD {t['spdd']:.4f} std {t['score_std']:.3f} ({rec['seconds']} s)",
              flush=True)


def load(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_table(args) -> None:
    """One markdown row per run: as trained and + repair, with vanilla's seed/mode as reference."""
    recs = load(args.out)
    van = {(r["mode"], r["seed"]): r["trained"] for r in recs if r["variant"] == "vanilla"}
    print("| variant | λ | mode | seed | PCC | SPDD | floor p95 | std (× vanilla) | b | ΔPCC | SPDD cut "
          "| + repair PCC / SPDD / p95 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in recs:
        t, v, rp = r["trained"], van.get((r["mode"], r["seed"])), r["repair_1"]
        ratio = f"{t['score_std']:.3f} ({t['score_std'] / v['score_std']:.2f})" if v else f"{t['score_std']:.3f}"
        dp = f"{t['pcc'] - v['pcc']:+.3f}" if v else "–"
        cut = f"{v['spdd'] / t['spdd']:.1f}×" if v else "–"
        b = "–" if r["group_offset"] is None else f"{r['group_offset']:.3f}"
        lam = "–" if r["lambda_sw"] is None else f"{r['lambda_sw']:g}"
        print(f"| {r['variant']} | {lam} | {r['mode']} | {r['seed']} | {t['pcc']:.3f} | {t['spdd']:.4f} "
              f"| {t['spdd_floor_p95']:.4f} | {ratio} | {b} | {dp} | {cut} "
              f"| {rp['pcc']:.3f} / {rp['spdd']:.4f} / {rp['spdd_floor_p95']:.4f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("jobs", nargs="+")
    r.add_argument("--out", default=str(DEFAULT_OUT))
    r.add_argument("--preds", default=None, help="folder for each run's predictions.csv (scratch, not in git)")
    t = sub.add_parser("table")
    t.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    (cmd_run if args.cmd == "run" else cmd_table)(args)


if __name__ == "__main__":
    sys.exit(main())
