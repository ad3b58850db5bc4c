"""`python -m fairviz compare --alpha 4 --seeds 0 1 2 [--out DIR]` and
`python -m fairviz sweep --method ours --alpha 4 --lambda-w 0 0.1 0.3 1 3 10 [--out-root models]`.

compare trains every method (or `--methods`) for every seed on the same data and prints the
paper's table, mean ± std over seeds of PCC, SRCC, SPDD and SPEO (test split, true labels), with
the SPDD permutation floor, and a row ``<method> + repair`` per method: its runs post-processed
by the barycenter repair fitted on their validation split (`--repair-strength`, `--no-repair`);
it writes ``compare-a<alpha>-<mode>.csv`` (one row per run and per repaired run),
``...-summary.csv`` and ``...md`` into `--out`. sweep trains one run per value of the method's
weight and saves each under `--out-root`; `--adaptive K` adds up to K runs where the curve jumps;
it prints the sweep table and the theta curve of the lowest-weight run + repair.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fairviz.atomic import write_text
from fairviz.cli.train import DEFAULTS, TqdmProgress, add_train_options, config_kwargs, set_threads
from fairviz.methods import ALL_METHODS, weight_warning
from fairviz.paths import models_dir
from fairviz.postprocess import DEFAULT_THETAS, repair_curve
from fairviz.repair import check_strength
from fairviz.sweeps import sweep_run_name


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train all methods over several seeds and print the paper's table (mean ± std)",
        description=(
            "Every method on the same data, split, bias injection, encoders and budget; one run per "
            "(method, seed). Prints and writes the table of PCC, SRCC, SPDD, SPEO as mean ± std."
        ),
    )
    add_train_options(p, method=False, seed=False)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=list(ALL_METHODS),
                   help="methods to compare (default: all)")
    p.add_argument("--lambda-w", type=float, default=None,
                   help=f"lambda_W, weight of the W1 term of ours (default {DEFAULTS['lambda_w']:g})")
    p.add_argument("--out", default=None, help="folder for the CSV and Markdown tables (default: current folder)")
    p.add_argument("--name", default=None, help="file name stem of the tables (default compare-a<alpha>-<mode>)")
    p.add_argument("--save-runs", default=None, metavar="DIR", help="also save every run folder under DIR")
    p.add_argument("--repair-strength", type=float, default=1.0, metavar="THETA",
                   help="also report every run post-processed by the barycenter repair fitted on its validation "
                        "split, at this strength in [0, 1] (rows '<method> + repair'; default 1)")
    p.add_argument("--no-repair", action="store_true", help="no '<method> + repair' rows")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_compare)

    s = subparsers.add_parser(
        "sweep",
        help="train one run per lambda_W value and save each",
        description="One run per value of --lambda-w (same data, seed and budget); prints PCC / SPDD / score spread.",
    )
    add_train_options(s)
    s.set_defaults(method=DEFAULTS["method"])
    s.add_argument("--lambda-w", type=float, nargs="+", required=True,
                   help="values of the method's weight (lambda_W for ours, lambda_l2 / lambda_mmd / lambda_sw for l2 / mmd / fairoffset), e.g. 0 0.1 0.3 1 3 10")
    s.add_argument("--out-root", default=None, help="folder for the run folders (default: models/)")
    s.add_argument("--prefix", default=None, help="run name prefix (default sweep-a<alpha>); runs are <prefix>-lw<value>")
    s.add_argument("--overwrite", action="store_true", help="replace existing run folders of the same names")
    s.add_argument("--adaptive", type=int, default=0, metavar="K",
                   help="up to K more runs where PCC, SPDD or the score spread jump between neighbouring values (default 0)")
    s.add_argument("--repair-thetas", type=float, nargs="+", default=None, metavar="THETA",
                   help="repair strengths of the theta curve printed for the lowest-weight run (default 0 0.1 ... 1)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=run_sweep)


def run_compare(args) -> int:
    from fairviz.experiments import compare_runs, format_table, summarize  # noqa: PLC0415 - imports torch

    repair = None if args.no_repair else _strength(args.repair_strength, "--repair-strength")
    set_threads(args)
    kw = config_kwargs(args)
    kw.pop("seed", None)
    kw.pop("method", None)
    out = Path(args.out) if args.out else Path.cwd()
    stem = args.name or f"compare-a{args.alpha:g}-{args.bias_mode}"
    partial = out / f"{stem}.partial.csv"

    def on_run(run, rows):  # keep what is done if a long comparison is interrupted
        write_text(partial, rows.to_csv(index=False))
        if args.no_progress:
            r = rows.iloc[-1]
            print(f"[{len(rows)}] {r['name']}: PCC {r['pcc']:.3f} SPDD {r['spdd']:.4f} "
                  f"(floor {r['spdd_floor']:.4f}) std {r['score_std']:.3f}", file=sys.stderr, flush=True)

    bar = None if args.no_progress else TqdmProgress(leave=False)
    try:
        per_run = compare_runs(args.alpha, args.seeds, args.methods, out_root=args.save_runs, progress=bar,
                               on_run=on_run, repair_strength=repair, **{k: v for k, v in kw.items() if k != "alpha"})
    finally:
        if bar is not None:
            bar.close()
    table = summarize(per_run)
    write_text(out / f"{stem}.csv", per_run.to_csv(index=False))
    partial.unlink(missing_ok=True)
    write_text(out / f"{stem}-summary.csv", format_table(table, fmt="csv"))
    md = (
        f"alpha = {args.alpha:g}, bias mode = {args.bias_mode}, seeds = {' '.join(map(str, args.seeds))}; "
        "test split, true labels; mean ± std over seeds\n\n" + format_table(table)
    )
    write_text(out / f"{stem}.md", md)
    print(md, end="")
    print(f"\nwrote {out / stem}.csv, {stem}-summary.csv, {stem}.md", file=sys.stderr)
    return 0


def _strength(value: float, option: str) -> float:
    try:
        return check_strength(value)
    except ValueError:
        raise ValueError(f"{option} must be in [0, 1] (0 = scores as trained, 1 = fully repaired); got {value:g}") from None


def run_sweep(args) -> int:
    from fairviz.experiments import sweep, sweep_table  # noqa: PLC0415 - imports torch

    thetas = [_strength(t, "--repair-thetas") for t in (args.repair_thetas or DEFAULT_THETAS)]
    if args.adaptive < 0:
        raise ValueError(f"--adaptive must be >= 0; got {args.adaptive}")
    set_threads(args)
    kw = config_kwargs(args)
    for k in ("method", "alpha", "lambda_w", "lambda_l2", "lambda_mmd", "lambda_sw"):
        kw.pop(k, None)
    warning = weight_warning(args.method, max(args.lambda_w, default=None))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    root = Path(args.out_root) if args.out_root else models_dir()
    prefix = args.prefix or f"sweep-a{args.alpha:g}"
    names = [sweep_run_name(prefix, lw) for lw in args.lambda_w]
    taken = [n for n in names if (root / n).exists()]
    if taken and not args.overwrite:
        raise ValueError(f"run folder(s) {taken} already exist under {root}; pass --overwrite or another --prefix")
    bar = None if args.no_progress else TqdmProgress(leave=False)
    try:
        runs = sweep(args.method, args.alpha, args.lambda_w, out_root=root, overwrite=args.overwrite,
                     names=lambda lw: sweep_run_name(prefix, lw), progress=bar, adaptive=args.adaptive, **kw)
    finally:
        if bar is not None:
            bar.close()
    fmt = {"float_format": lambda x: f"{x:.4f}", "index": False}
    print(sweep_table(runs).to_string(**fmt))
    base = runs[0]  # the lowest weight: the least constrained model, the one repair suits best
    curve = repair_curve(base.predictions, thetas, n_perm=base.config.n_perm, seed=base.config.seed,
                         run=f"run {base.name!r}")
    print(f"\ntheta curve: {base.name} + barycenter repair fitted on its validation split")
    print(curve.to_string(**fmt))
    print(f"saved {len(runs)} runs under {root}", file=sys.stderr)
    return 0
