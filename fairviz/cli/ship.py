"""`python -m fairviz ship-models --out models` (what `make models` runs).

Rebuilds the runs the app shows on first start, all at alpha = 4 in rater-bias mode, seed 0, on
the default synthetic data:

- ``a4-<method>`` for the six methods (vanilla, balancing, adversarial, l2, mmd, ours);
- ``a4-<method>`` includes ``a4-fairoffset``, the collapse-free method at its default weight;
- ``sweep-a4-lw<value>`` for the `ours` lambda_W sweep 0, 0.1, 0.3, 0.5, 0.7, 1, 3, 10,
  plus up to 4 adaptive values where PCC, SPDD or the score spread still jump between neighbours;
- ``fsweep-a4-lsw<value>`` for the `fairoffset` lambda_sw knob at 0.01, 0.03, 0.1, 0.3 (with
  ``a4-fairoffset`` at its default 0.2: its safe range; from 1 on a weak text encoder's scores
  collapse, from 3 on the default encoder's).

Every run folder also holds ``repair.json``, the barycenter repair fitted on its validation split,
so the app shows each method + repair (the theta curves) next to the trained methods. Each run
folder is replaced atomically; a ``README.md`` listing the runs, their repaired pipelines and their
test metrics is written next to them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fairviz.atomic import write_text
from fairviz.cli._common import fmt_num
from fairviz.cli.train import TqdmProgress, set_threads, summary_lines
from fairviz.jsonsafe import dumps
from fairviz.methods import ALL_METHODS, COMPARED_METHODS
from fairviz.postprocess import load_repair, pipeline_metrics, repair_label, repaired_test
from fairviz.runs import METRICS_FILE, list_runs, read_predictions, save_run
from fairviz.sweeps import SweepPlan, sweep_run_name

# dense below 1, where the W1 term collapses the scores; `--adaptive` refines where it still jumps
SWEEP_LAMBDA_WS = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 3.0, 10.0)
ADAPTIVE_RUNS = 4
FAIROFFSET_LAMBDA_SWS = (0.01, 0.03, 0.1, 0.3)  # + a4-fairoffset at 0.2; past 0.3 a weak encoder collapses


def shipped_configs(alpha: float = 4.0, seed: int = 0, lambda_ws=SWEEP_LAMBDA_WS, **cfg) -> list:
    """The TrainConfigs of the shipped runs, named ``a4-<method>``, ``sweep-a4-lw<value>`` and (with
    the default ours sweep) ``fsweep-a4-lsw<value>``."""
    from fairviz.train import TrainConfig  # noqa: PLC0415 - imports torch: only when building the runs

    a = f"a{alpha:g}"
    out = [TrainConfig(method=m, alpha=alpha, seed=seed, bias_mode="label", name=f"{a}-{m}", **cfg)
           for m in COMPARED_METHODS]
    out += [
        TrainConfig(method="ours", alpha=alpha, seed=seed, bias_mode="label", lambda_w=float(lw),
                    name=sweep_run_name(f"sweep-{a}", lw), **cfg)
        for lw in lambda_ws
    ]
    out += [
        TrainConfig(method="fairoffset", alpha=alpha, seed=seed, bias_mode="label", lambda_sw=float(v),
                    name=f"fsweep-{a}-lsw{v:g}", **cfg)
        for v in (FAIROFFSET_LAMBDA_SWS if tuple(lambda_ws) == SWEEP_LAMBDA_WS else ())
    ]
    return out


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ship-models",
        help="rebuild the runs shipped in models/ (six methods + the ours lambda_W sweep at alpha 4)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="models", help="folder for the run folders (default models)")
    p.add_argument("--alpha", type=float, default=4.0, help="bias strength (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--lambda-ws", type=float, nargs="+", default=list(SWEEP_LAMBDA_WS),
                   help=f"lambda_W values of the ours sweep (default {' '.join(f'{v:g}' for v in SWEEP_LAMBDA_WS)})")
    p.add_argument("--adaptive", type=int, default=ADAPTIVE_RUNS,
                   help=f"extra sweep runs where the curve jumps (default {ADAPTIVE_RUNS})")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: TrainConfig's)")
    p.add_argument("--only", nargs="+", default=None, help="rebuild only these run names")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--refresh-metrics", action="store_true",
                   help="train nothing: recompute every run's stored test metrics under --out from its "
                        "predictions.csv (same resamples and seed), e.g. after the metrics code changed")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    # both import torch: only when building the runs
    from fairviz.experiments import sweep_table  # noqa: PLC0415
    from fairviz.train import load_features  # noqa: PLC0415

    if args.refresh_metrics:
        return _refresh_metrics(Path(args.out), args)
    set_threads(args)
    extra = {"epochs": args.epochs} if args.epochs else {}
    configs = shipped_configs(args.alpha, args.seed, args.lambda_ws, **extra)
    sweep_base = next((c for c in configs if c.name.startswith("sweep-")), None)
    # the ours sweep's adaptive runs go where its curve still jumps (not with --only)
    plan = SweepPlan.of("ours", args.lambda_ws, 0 if args.only else max(0, int(args.adaptive)))
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in configs})
        if unknown:
            raise ValueError(f"unknown shipped run name(s) {unknown}; known: {[c.name for c in configs]}")
        configs = [c for c in configs if c.name in set(args.only)]
    out = Path(args.out)
    t0 = time.perf_counter()
    features = load_features(configs[0])
    sweep = []
    for i, cfg in enumerate(configs):
        sweep += _train_save(cfg, features, out, f"[{i + 1}/{len(configs)}]", args)
    left, n_runs = plan.adaptive, len(configs)
    while left > 0 and sweep_base is not None:
        new = plan.refine(sweep_table(sweep), left)
        if not new:
            break
        for lw in new:
            cfg = plan.config(sweep_base, lw, sweep_run_name(f"sweep-a{args.alpha:g}", lw))
            sweep += _train_save(cfg, features, out, "[adaptive]", args)
        left -= len(new)
        n_runs += len(new)
    write_text(out / "README.md", _readme(list_runs(out), args))
    print(f"{n_runs} runs in {time.perf_counter() - t0:.0f} s under {out}", file=sys.stderr)
    return 0


def _refresh_metrics(out: Path, args) -> int:
    """Rewrite each run's ``metrics.json`` with the test metrics recomputed from its stored test
    predictions (its own ``n_boot`` and ``random_state``); every other stored key is kept."""
    from fairviz.train import compute_metrics  # noqa: PLC0415 - imports torch: only for this mode

    runs = list_runs(out)
    if not runs:
        raise ValueError(f"no run folders under {out}")
    for info in runs:
        path = info.path / METRICS_FILE
        stored = json.loads(path.read_text(encoding="utf-8"))
        if not {"n_boot", "random_state"} <= stored.keys():
            raise ValueError(f"{path} does not name its n_boot and random_state; retrain {info.name} instead")
        test = read_predictions(info.path).query("split == 'test'")
        again = compute_metrics(test["score"].to_numpy(), test["group"].to_numpy(), test["label"].to_numpy(),
                                stored["n_boot"], random_state=stored["random_state"])
        write_text(path, dumps({**stored, **again}, indent=2) + "\n")
        print(f"{info.name}: metrics recomputed", flush=True)
    write_text(out / "README.md", _readme(list_runs(out), args))
    return 0


def _train_save(cfg, features, out: Path, tag: str, args) -> list:
    """Train one shipped config and save it (replacing the folder); returns [run] for a run of
    the ours sweep, else []."""
    from fairviz.train import train  # noqa: PLC0415 - imports torch: only when building the runs

    bar = None if args.no_progress else TqdmProgress(desc=f"{tag} {cfg.name}", leave=False)
    try:
        result = train(cfg, progress=bar, features=features)
    finally:
        if bar is not None:
            bar.close()
    path = save_run(result, out / cfg.name, overwrite=True)
    print("\n".join(summary_lines(result, path)), flush=True)
    return [result] if cfg.name.startswith("sweep-") else []


def _readme(infos, args) -> str:
    lines = [
        "# Shipped runs",
        "",
        "Made by `make models` (`python -m fairviz ship-models --out models`): the six methods and the",
        f"`ours` λ_W sweep at α = {args.alpha:g}, rater-bias mode (the paper's Ỹ), seed {args.seed}, default",
        "synthetic data. Metrics are on the test split with true labels; the SPDD floor is the mean SPDD",
        "of the same scores with the group labels permuted (what equal distributions would still show).",
        "",
        "| run | method | weight | PCC | SRCC | SPDD | SPDD floor | SPEO | score std |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    for r in sorted(infos, key=lambda r: (r.name.startswith("sweep-"), order.get(r.method, 99), r.lambda_w, r.name)):
        m = r.run_metrics
        lines.append(
            f"| {r.name} | {r.method} | {'—' if r.weight is None else format(r.weight, 'g')} | "
            f"{fmt_num(m.get('pcc'))} | {fmt_num(m.get('srcc'))} | {fmt_num(m.get('spdd'))} | "
            f"{fmt_num(m.get('spdd_floor', 'mean'))} | {fmt_num(m.get('speo'))} | {fmt_num(m.get('score_std'))} |"
        )
    return "\n".join(lines + _repair_lines(infos)) + "\n"


def _repair_lines(infos) -> list[str]:
    """The README table of each non-sweep run + the barycenter repair (theta = 1) fitted on its
    validation rows, with the 95th percentile of the permutation floor (1000 permutations)."""
    lines = [
        "",
        "Post-processed: each run + the barycenter repair fitted on its validation rows only (`repair.json`",
        "in the folder; runs saved without one are refitted from their stored validation rows, the same",
        "map), applied at full strength θ = 1 to its test rows. Floor p95: the 95th percentile of the SPDD",
        "of the same scores with permuted group labels (1000 permutations).",
        "",
        "| pipeline | PCC | SPDD | SPDD floor p95 | within floor | score std |",
        "|---|---:|---:|---:|:---:|---:|",
    ]
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    for r in sorted((i for i in infos if not i.name.startswith("sweep-")), key=lambda r: (order.get(r.method, 99), r.name)):
        try:
            preds = read_predictions(r.path)
            test = repaired_test(preds, load_repair(r.path, preds), 1.0)
        except ValueError:  # no validation split: nothing to fit the repair on
            continue
        m = pipeline_metrics(test["score"], test["label"], test["group"], n_perm=1000, seed=r.seed)
        lines.append(f"| {repair_label(r.method)} (`{r.name}`) | {m['pcc']:.3f} | {m['spdd']:.4f} | "
                     f"{m['spdd_floor_p95']:.4f} | {'yes' if m['spdd'] <= m['spdd_floor_p95'] else 'no'} | "
                     f"{m['score_std']:.3f} |")
    return lines
