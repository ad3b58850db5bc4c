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
- ``sw``: the shape-W1 term alone (no offset, no balancing);
- ``fo_pool`` / ``fo_lab``: the shipped `fairoffset` with its shape-W1 term on batches of the whole
  training split (`fairness_rows="pool"`, the default since it was measured here) or on the
  labelled rows only (`fairness_rows="labelled"`, the former behaviour; the ``fairoffset`` rows
  recorded before the pool existed are this one). They differ under sampling bias only.

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


# variants that are the shipped fairoffset with one config field set (not a method entry)
CONFIG_VARIANTS = {"fo_pool": {"fairness_rows": "pool"}, "fo_lab": {"fairness_rows": "labelled"}}


def parse_job(job: str) -> dict:
    parts = job.split(":")
    if len(parts) not in (3, 4):
        raise SystemExit(f"error: job {job!r} is not variant:mode:seed[:lambda_sw]")
    if parts[0] in CONFIG_VARIANTS:
        out = {"method": "fairoffset", **CONFIG_VARIANTS[parts[0]]}
    else:
        out = {"method": parts[0]}
    out.update(bias_mode=parts[1], seed=int(parts[2]))
    if len(parts) == 4:
        out["lambda_sw"] = float(parts[3])
    return out


def repaired(pred, theta: float, seed: int) -> dict:
    rmap = postprocess.fit_validation_repair(pred)
    test = postprocess.repaired_test(pred, rmap, theta)
    return postprocess.pipeline_metrics(test["score"], test["label"], test["group"], n_perm=N_PERM, seed=seed)


def run_job(job: str, features, preds_dir: Path | None, text_model: str | None = None) -> dict:
    spec = parse_job(job)
    cfg = T.TrainConfig(alpha=4.0, text_model=text_model, **spec)
    t0 = time.time()
    run = T.train(cfg, features=features)
    pred = run.predictions
    test = run.test_predictions()
    rec = {
        "job": job,
        "encoder": "random-bert" if text_model else "default",
        "variant": job.split(":")[0],
        "fairness_rows": cfg.fairness_rows,
        "mode": cfg.bias_mode,
        "seed": cfg.seed,
        "lambda_sw": cfg.lambda_sw if T.METHODS[cfg.method].weight_field == "lambda_sw" else None,
        "best_epoch": run.info["best_epoch"],
        "val_pcc": run.metrics["val_pcc"],  # of the restored epoch, true validation labels
        "val_spdd": run.metrics["val_spdd"],
        "group_offset": run.info.get("group_offset"),
        "n_train": run.info["n_train"],
        "n_pool": run.info.get("n_pool"),
        "spdd_ci": [run.metrics["spdd"].get("ci_low"), run.metrics["spdd"].get("ci_high")],
        "pcc_ci": [run.metrics["pcc"].get("ci_low"), run.metrics["pcc"].get("ci_high")],
        "train_label_gap": run.info["train_label_mean_gap"],
        "seconds": round(time.time() - t0, 1),
        "trained": postprocess.pipeline_metrics(test["score"], test["label"], test["group"], n_perm=N_PERM,
                                                seed=cfg.seed),
        "repair_0.5": repaired(pred, 0.5, cfg.seed),
        "repair_1": repaired(pred, 1.0, cfg.seed),
    }
    if preds_dir is not None:
        preds_dir.mkdir(parents=True, exist_ok=True)
        tag = "rb_" if text_model else ""
        pred.to_csv(preds_dir / f"{tag}{job.replace(':', '_')}.csv", index=False)
    return rec


def cmd_run(args) -> None:
    torch.set_num_threads(1)
    register_variants()
    features = T.load_features(T.TrainConfig(text_model=args.text_model))
    out = Path(args.out)
    for job in args.jobs:
        rec = run_job(job, features, Path(args.preds) if args.preds else None, args.text_model)
        with out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        t = rec["trained"]
        print(f"{job}: PCC {t['pcc']:.3f} SPDD {t['spdd']:.4f} std {t['score_std']:.3f} ({rec['seconds']} s)",
              flush=True)


def load(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def enc(rec: dict) -> str:
    return rec.get("encoder", "default")


def flat(rec: dict, vanilla: dict | None) -> dict:
    """One CSV row: the run as trained, + repair (θ = 1), and the ratios to vanilla's same seed/mode."""
    t, rp = rec["trained"], rec["repair_1"]
    row = {"encoder": enc(rec)}
    row.update({k: rec.get(k) for k in ("variant", "lambda_sw", "mode", "seed", "best_epoch", "group_offset", "val_pcc")})
    row.update({k: t[k] for k in ("pcc", "spdd", "spdd_floor_p95", "score_std")})
    row.update({f"repair_{k}": rp[k] for k in ("pcc", "spdd", "spdd_floor_p95", "score_std")})
    row["spdd_lo"], row["spdd_hi"] = rec.get("spdd_ci") or (None, None)
    if vanilla is not None:
        row["std_ratio"] = t["score_std"] / vanilla["score_std"]
        row["dpcc"] = t["pcc"] - vanilla["pcc"]
        row["spdd_cut"] = vanilla["spdd"] / t["spdd"]
    return row


def auto_rows(recs: list[dict]) -> list[dict]:
    """`auto`: per mode and seed, whichever of fairoffset (λ 0.3) and fo_bal has the higher
    validation PCC (true labels) - the criterion model selection already uses."""
    out = []
    pool = {}
    for r in recs:
        if r["variant"] in ("fairoffset", "fo_bal") and r["lambda_sw"] == 0.3 and r.get("val_pcc") is not None:
            pool.setdefault((r["mode"], r["seed"]), []).append(r)
    for key in sorted(pool):
        if len(pool[key]) == 2:
            best = max(pool[key], key=lambda r: r["val_pcc"])
            out.append({**best, "variant": f"auto ({best['variant']})"})
    return out


def compare_vanilla() -> dict:
    """Vanilla's test numbers per (mode, seed) from the shipped `compare` tables (an earlier build of
    the same code), for seeds this driver did not retrain vanilla on."""
    import pandas as pd

    out = {}
    for mode in ("label", "sample"):
        path = HERE / f"compare-a4-{mode}.csv"
        if path.is_file():
            t = pd.read_csv(path)
            for _, r in t[t["method"] == "vanilla"].iterrows():
                out[(mode, int(r["seed"]))] = {k: float(r[k]) for k in ("pcc", "spdd", "score_std")}
    return out


def print_md(header: str, align: str, lines) -> None:
    """A markdown table: the header cells and alignment row as written, then one line per row."""
    print(header)
    print(align)
    for line in lines:
        print(line)
    print()


def _lead(r) -> str:
    """The cells every per-run table starts with: encoder, mode, weight, seed, PCC (Δ vanilla)."""
    return f"| {r.encoder} | {r.mode} | {r.lambda_sw:g} | {r.seed} | {r.pcc:.3f} ({r.dpcc:+.3f}) "


def print_seed_table(df) -> None:
    """Per-seed markdown rows of fairoffset at each weight, against vanilla, as trained and + repair."""
    f = df[df["variant"] == "fairoffset"].sort_values(["encoder", "mode", "lambda_sw", "seed"])
    print_md("| encoder | mode | λ_sw | seed | PCC (Δ vanilla) | SPDD (cut) | floor p95 | std × vanilla | b "
             "| + repair: PCC / SPDD / p95 |", "|---|---|---:|---:|---|---|---:|---:|---:|---|",
             (_lead(r) + f"| {r.spdd:.4f} ({r.spdd_cut:.1f}×) | {r.spdd_floor_p95:.4f} | {r.std_ratio:.2f} "
              f"| {r.group_offset:.3f} | {r.repair_pcc:.3f} / {r.repair_spdd:.4f} / {r.repair_spdd_floor_p95:.4f} |"
              for r in f.itertuples(index=False)))


def print_pool_table(df) -> None:
    """Per-seed markdown rows of the fairness term on the pool (fo_pool) with the test SPDD's 95 % CI."""
    f = df[df["variant"] == "fo_pool"].sort_values(["encoder", "mode", "seed", "lambda_sw"])
    print_md("| encoder | mode | λ_sw | seed | PCC (Δ vanilla) | SPDD [95 % CI] | floor p95 | std × vanilla | b |",
             "|---|---|---:|---:|---|---|---:|---:|---:|",
             (_lead(r) + f"| {r.spdd:.4f} [{r.spdd_lo:.4f}, {r.spdd_hi:.4f}] | {r.spdd_floor_p95:.4f} "
              f"| {r.std_ratio:.2f} | {r.group_offset:.3f} |" for r in f.itertuples(index=False)))


def print_knob_table(df) -> None:
    """Per encoder, mode and seed: test SPDD (std × vanilla) at each weight, on the pool (fo_pool) and
    on the labelled rows (fairoffset rows recorded before the pool; λ = 0 is the same for both)."""
    f = df[df["variant"].isin(["fo_pool", "fairoffset"])]
    lams = sorted(f.loc[f["variant"] == "fo_pool", "lambda_sw"].unique())
    print("| encoder | mode | seed | rows | " + " | ".join(f"λ = {x:g}" for x in [0.0, *lams]) + " |")
    print("|---|---|---:|---|" + "---|" * (len(lams) + 1))
    for (encoder, mode, seed), g in f[f["mode"] == "sample"].groupby(["encoder", "mode", "seed"]):
        for variant, rows in (("fo_pool", "pool"), ("fairoffset", "labelled")):
            cells = []
            for lam in [0.0, *lams]:
                hit = g[(g["lambda_sw"] == lam) & (g["variant"] == ("fairoffset" if lam == 0 else variant))]
                r = hit.iloc[-1] if len(hit) else None
                cells.append("–" if r is None else f"{r.spdd:.4f} ({r.std_ratio:.2f}×)")
            print(f"| {encoder} | {mode} | {seed} | {rows} | " + " | ".join(cells) + " |")
    print()


def cmd_table(args) -> None:
    """Per-run rows (CSV beside the JSONL) and a markdown table with the means per variant and mode."""
    import pandas as pd

    recs = load(args.out)
    van = {("default", *k): v for k, v in compare_vanilla().items()}
    van.update({(enc(r), r["mode"], r["seed"]): r["trained"] for r in recs if r["variant"] == "vanilla"})
    rows = [flat(r, van.get((enc(r), r["mode"], r["seed"]))) for r in recs + auto_rows(recs)]
    df = pd.DataFrame(rows)
    df.to_csv(Path(args.out).with_suffix(".csv"), index=False, float_format="%.4f")
    cols = ["pcc", "spdd", "spdd_floor_p95", "score_std", "std_ratio", "dpcc", "spdd_cut",
            "repair_pcc", "repair_spdd", "repair_spdd_floor_p95"]
    df["lambda_sw"] = df["lambda_sw"].fillna(-1)
    g = df.groupby(["encoder", "mode", "variant", "lambda_sw"], sort=True)
    mean = g[cols].mean().round(4)
    mean["seeds"] = g["seed"].apply(lambda s: " ".join(str(int(x)) for x in sorted(s)))
    print_seed_table(df)
    print_pool_table(df)
    print_knob_table(df)
    table = mean.reset_index()
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join("–" if v == -1 else str(v) for v in row) + " |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("jobs", nargs="+")
    r.add_argument("--out", default=str(DEFAULT_OUT))
    r.add_argument("--preds", default=None, help="folder for each run's predictions.csv (scratch, not in git)")
    r.add_argument("--text-model", default=None,
                   help="local BERT folder for the transcripts (docs/results/make_random_bert.py makes the weak one)")
    t = sub.add_parser("table")
    t.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    (cmd_run if args.cmd == "run" else cmd_table)(args)


if __name__ == "__main__":
    sys.exit(main())
