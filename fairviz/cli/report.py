"""`python -m fairviz report FILE --score COL --group COL [--group COL2 ...] [--label COL] --out audit.html`

Writes the self-contained HTML bias-audit report of `fairviz.report.build_report` (plotly
inlined, works offline) atomically: a reader never sees half a file, and a failed run leaves no
file behind. Bad input (missing file or column, non-numeric or out-of-range scores, one group
only) is a one-line ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fairviz import score_range
from fairviz.atomic import write_text
from fairviz.cli._common import add_command, add_score_range, add_table_arguments
from fairviz.tabular import read_table


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = add_command(subparsers, "report", run,
                         help="write a self-contained HTML bias-audit report for a table of scores",
                         description="Audit the scores in a CSV/Parquet file by one or more sensitive attributes (and their "
                                     "intersection): DP(τ) curves, SPDD with bootstrap intervals and permutation tests, NYC "
                                     "Local Law 144 scoring-rate tables, four-fifths checks with significance, and the effect "
                                     "of a full and a partial fair repair. One HTML file that works offline.")
    add_table_arguments(parser, group_help="sensitive-attribute column; repeat for several (their intersection is "
                                           "audited too)")
    parser.add_argument("--out", required=True, help="where to write the HTML report")
    parser.add_argument("--tau", type=float, default=0.5, help="threshold for the four-fifths check (default 0.5)")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for intervals (default 200)")
    parser.add_argument("--n-perm", type=int, default=None,
                        help="permutations per attribute (default: as many as fit a fixed work budget, 50-1000)")
    parser.add_argument("--no-intersections", action="store_true",
                        help="do not audit the intersection of the attributes")
    parser.add_argument("--exclude-small", action="store_true",
                        help="leave groups under 2%% of the rows out of the impact ratios (LL144); counts stay")
    parser.add_argument("--seed", type=int, default=0, help="random seed for bootstrap, permutations, held-out split")
    parser.add_argument("--title", default=None, help="report title")
    add_score_range(parser, "the report says so")
    return parser


def run(args: argparse.Namespace) -> int:
    # plotly, the figures and the templates take ~0.4 s to import: only this command needs them,
    # so every other command (and `--help`) starts without them
    from fairviz.report import build_report  # noqa: PLC0415 - heavy, see above

    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a CSV or Parquet file")
    if args.n_boot < 1:
        raise ValueError("--n-boot must be at least 1")
    if args.n_perm is not None and args.n_perm < 1:
        raise ValueError("--n-perm must be at least 1")
    if args.score_range:
        score_range.check_range(*args.score_range)
    raw = path.read_bytes()
    table = read_table(path)
    if args.score_range:
        table = score_range.rescale_column(table, args.score, *args.score_range)
    html = build_report(
        table,
        score=args.score,
        groups=list(args.group),
        label=args.label,
        source_name=path.name,
        source_bytes=raw,
        title=args.title,
        source=score_range.note(*args.score_range) if args.score_range else None,
        tau=args.tau,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        intersections=not args.no_intersections,
        exclude_small=args.exclude_small,
        random_state=args.seed,
        progress=lambda stage: print(f"… {stage}", file=sys.stderr),
        processes=True,  # this process is the CLI's own: large files test two groupings at a time
    )
    out = write_text(args.out, html)
    print(f"wrote {out} ({len(html.encode('utf-8')) / 1e6:.1f} MB)")
    return 0
