"""`python -m fairviz ship-models --out models` (what `make models` runs).

Rebuilds the runs the app shows on first start, all at alpha = 4 in rater-bias mode, seed 0, on
the default synthetic data:

- ``a4-<method>`` for the six methods (vanilla, balancing, adversarial, l2, mmd, ours);
- ``sweep-a4-lw<value>`` for the `ours` lambda_W sweep 0, 0.1, 0.3, 1, 3, 10.

Each run folder is replaced atomically; a ``README.md`` listing the runs and their test metrics is
written next to them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fairviz.cli.train import METHOD_CHOICES, TqdmProgress, set_threads

SWEEP_LAMBDA_WS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)


def shipped_configs(alpha: float = 4.0, seed: int = 0, lambda_ws=SWEEP_LAMBDA_WS, **cfg) -> list:
    """The TrainConfigs of the shipped runs, named ``a4-<method>`` and ``sweep-a4-lw<value>``."""
    from fairviz.train import TrainConfig

    a = f"a{alpha:g}"
    out = [TrainConfig(method=m, alpha=alpha, seed=seed, bias_mode="label", name=f"{a}-{m}", **cfg) for m in METHOD_CHOICES]
    out += [
        TrainConfig(method="ours", alpha=alpha, seed=seed, bias_mode="label", lambda_w=float(lw),
                    name=f"sweep-{a}-lw{lw:g}", **cfg)
        for lw in lambda_ws
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
                   help="lambda_W values of the ours sweep (default 0 0.1 0.3 1 3 10)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: TrainConfig's)")
    p.add_argument("--only", nargs="+", default=None, help="rebuild only these run names")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fairviz.atomic import write_text
    from fairviz.cli.train import summary_lines
    from fairviz.runs import list_runs, save_run
    from fairviz.train import load_features, train

    set_threads(args)
    extra = {"epochs": args.epochs} if args.epochs else {}
    configs = shipped_configs(args.alpha, args.seed, args.lambda_ws, **extra)
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in configs})
        if unknown:
            raise ValueError(f"unknown shipped run name(s) {unknown}; known: {[c.name for c in configs]}")
        configs = [c for c in configs if c.name in set(args.only)]
    out = Path(args.out)
    t0 = time.perf_counter()
    features = load_features(configs[0])
    for i, cfg in enumerate(configs):
        bar = None if args.no_progress else TqdmProgress(desc=f"[{i + 1}/{len(configs)}] {cfg.name}", leave=False)
        try:
            result = train(cfg, progress=bar, features=features)
        finally:
            if bar is not None:
                bar.close()
        path = save_run(result, out / cfg.name, overwrite=True)
        print("\n".join(summary_lines(result, path)), flush=True)
    write_text(out / "README.md", _readme(list_runs(out), args))
    print(f"{len(configs)} runs in {time.perf_counter() - t0:.0f} s under {out}", file=sys.stderr)
    return 0


def _readme(infos, args) -> str:
    def v(m, k):
        x = m.get(k)
        return f"{x['value']:.3f}" if isinstance(x, dict) and x.get("value") is not None else "–"

    lines = [
        "# Shipped runs",
        "",
        "Made by `make models` (`python -m fairviz ship-models --out models`): the six methods and the",
        f"`ours` λ_W sweep at α = {args.alpha:g}, rater-bias mode (the paper's Ỹ), seed {args.seed}, default",
        "synthetic data. Metrics are on the test split with true labels; the SPDD floor is the mean SPDD",
        "of the same scores with the group labels permuted (what equal distributions would still show).",
        "",
        "| run | method | λ_W | PCC | SRCC | SPDD | SPDD floor | SPEO | score std |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {m: i for i, m in enumerate(METHOD_CHOICES)}
    for r in sorted(infos, key=lambda r: (r.name.startswith("sweep-"), order.get(r.method, 99), r.lambda_w, r.name)):
        m = r.metrics
        floor = (m.get("spdd_floor") or {}).get("mean")
        lines.append(
            f"| {r.name} | {r.method} | {format(r.lambda_w, 'g') if r.method == 'ours' else '–'} | {v(m, 'pcc')} | {v(m, 'srcc')} | {v(m, 'spdd')} | "
            f"{'–' if floor is None else f'{floor:.3f}'} | {v(m, 'speo')} | "
            f"{'–' if m.get('score_std') is None else format(m['score_std'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"
