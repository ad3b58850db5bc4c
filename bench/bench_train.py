"""Training speed: samples/s of every method and the wall time of one default `train`.

    python bench/bench_train.py            # writes bench/RESULTS.md (section bench_train)
    python bench/bench_train.py --epochs 1 # quicker per-method measurement

Budget (issue 4 §6): one default `train` (default synthetic data from the feature cache,
TrainConfig() defaults) in under 90 s on a 2-core CPU; `compare` for six methods and one seed in
under 8 minutes. The per-method figure is training rows processed per second of `fit` (forward,
backward, optimiser, and the per-epoch validation pass), on the default data and model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, publish  # noqa: E402

SECTION = "bench_train"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per method for samples/s (default 2)")
    ap.add_argument("--no-write", action="store_true", help="print only, do not touch bench/RESULTS.md")
    args = ap.parse_args(argv)

    from fairviz.train import METHOD_NAMES, TrainConfig, load_features, train

    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    features = load_features(TrainConfig())
    load_s = time.perf_counter() - t

    rows = []
    for m in METHOD_NAMES:
        cpu0 = time.process_time()
        run = train(TrainConfig(method=m, epochs=args.epochs), features=features)
        cpu = time.process_time() - cpu0
        secs = run.info["train_seconds"]
        n = run.info["n_train"] * args.epochs
        rows.append((m, n / secs, secs / args.epochs, cpu / args.epochs))
        print(f"{m:12s} {n / secs:8.0f} samples/s  {secs / args.epochs:6.1f} s/epoch  (CPU {cpu / args.epochs:.1f} s/epoch)", flush=True)

    cfg = TrainConfig()
    cpu0 = time.process_time()
    t = time.perf_counter()
    default_run = train(cfg)  # includes loading the cached features and the test metrics
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu0
    compare_est = sum(r[2] for r in rows) * cfg.epochs
    print(f"default train: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)

    import torch

    where = f"{machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads)"
    lines = [
        "## Training speed (`bench/bench_train.py`)",
        "",
        f"Default synthetic data ({default_run.info['n']} candidates: {default_run.info['n_train']} train / "
        f"{default_run.info['n_val']} val / {default_run.info['n_test']} test rows), default model "
        f"(d_z = {default_run.model_config.d_z}, "
        f"{sum(v.numel() for v in default_run.state_dict.values()):,} weights), batch {cfg.batch_size}, "
        f"alpha {cfg.alpha:g}, rater-bias mode; {args.epochs} epochs per method.",
        "",
        "| method | training samples/s | s / epoch (wall) | s / epoch (CPU, all threads) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {m} | {sps:,.0f} | {spe:.1f} | {cpe:.1f} |" for m, sps, spe, cpe in rows]
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| one default `train(TrainConfig())` ({cfg.method}, {cfg.epochs} epochs), wall incl. cached features + test metrics | **{wall:.1f} s** (budget 90 s) |",
        f"| the same, CPU time of this process | {cpu:.1f} s |",
        f"| cached feature load | {load_s:.2f} s |",
        f"| `compare` six methods × one seed, estimated from the s/epoch above | {compare_est / 60:.1f} min (budget 8 min) |",
        "",
        f"Machine: {where}; load average before the runs {load_before:.1f}. The machine is "
        "shared with other developers' jobs, so wall times are pessimistic; the CPU column is the "
        "figure to compare across runs.",
    ]
    body = "\n".join(lines)
    publish(SECTION, body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
