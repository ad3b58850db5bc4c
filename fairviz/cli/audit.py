"""`python -m fairviz audit FILE.csv|FILE.parquet --score COL --group COL [--group COL2 ...] [--label COL] [--json]`

Audits the scores in a table by each group column and, with several ``--group``, by their
intersection too (like ``report`` and the app): exact SPDD (= W1 between the groups' score
distributions for two groups) with a bootstrap CI, its paper variant on 50 thresholds, who the
gap favours, and with ``--label`` also SPEO, PCC and SRCC with CIs; plus the NYC Local Law 144
scoring-rate table. ``--json`` prints one JSON object instead of the table: the first attribute's
numbers at the top level (keys ``spdd``, ``speo``, ``pcc``, ``srcc`` — the last three only with
``--label`` — each ``{"value", "ci_low", "ci_high"}``, and ``groups`` with the row count per group;
plus ``n``, ``spdd_grid50``, ``speo_grid50``, ``spdd_parts``, ``level``, ``n_boot``,
``scoring_rates``), ``attributes`` with the same object for every attribute and intersection (by
name), ``score_range`` (null, or ``{"low", "high", "note"}`` when ``--score-range`` rescaled the
scores) and ``source``. ``--score-range LOW HIGH`` rescales scores on [LOW, HIGH] into [0, 1] and
says so in every output. ``--bootstrap auto|exact|little`` (``--subsets S``) picks the bootstrap:
from 200,000 rows on, "auto" runs the bag of little bootstraps (docs/STATISTICS.md); the table
and the JSON (``bootstrap``) say which ran. ``--engine duckdb`` audits where the scores live (see `fairviz.sql`).
Bad input is a one-line ``error: ...`` and exit code 2. From 50,000 rows with intervals, the
attributes and their intersection are audited two at a time in worker processes (the numbers
are those of one at a time).

Only an empty group cell is missing (then the file is refused) unless ``--missing-values
NA,unknown`` names the values that mean missing: those rows are left out, and how many is
always printed (``n_left_out`` in the JSON). ``--max-rows`` (default 10,000,000; the row count is
read before the table is built) and ``--max-groups`` (default 200) bound what one audit may take;
an intersection beyond them is skipped with a note.

``spdd`` and ``speo`` also carry (``schema_version`` 2; see `fairviz.uncertainty` and
docs/STATISTICS.md): ``ci_method`` ("test-inversion": ``ci_low`` is 0 unless the permutation test
rejects; in schema 1 these were percentile intervals, which never contain 0), ``upper`` (one-sided
upper bound at ``level``), ``p_value`` (permutation test of "no difference between groups"),
``chance_mean`` / ``chance_p95`` (the distance under shuffled groups), ``debiased``
(√max(0, value² − chance_mean²)), ``n_perm``; and ``summary``, the sentence the table prints.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd
from tqdm.auto import tqdm

from fairviz import metrics, score_range, sql
from fairviz.cli._common import add_command, add_score_range, add_table_arguments
from fairviz.groups import INTERSECTION_SEPARATOR
from fairviz.metrics import FOUR_FIFTHS
from fairviz.side_by_side import PROCESS_MIN_ROWS, run_side_by_side
from fairviz.tabular import (
    MAX_GROUPS,
    MAX_ROWS,
    TooLargeError,
    check_audit_size,
    drop_missing_groups,
    parse_missing_values,
    read_table,
    select_columns,
)
from fairviz.uncertainty import describe


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = add_command(subparsers, "audit", run,
                         help="audit a table of scores by group (SPDD, SPEO, PCC, SRCC with bootstrap CIs)",
                         description="Threshold-free fairness audit of the scores in a CSV or Parquet file: exact SPDD "
                                     "(the area between the groups' selection-rate curves; W1 for two groups), SPEO, PCC "
                                     "and SRCC with percentile bootstrap intervals (resampling within groups).")
    add_table_arguments(parser, group_help="column with the group of each row (2 or more groups); repeat for "
                                           "several attributes (their intersection is audited too)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000; 0 = no intervals)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")
    parser.add_argument("--bootstrap", choices=metrics.BOOTSTRAPS, default="auto",
                        help="exact: resample all rows; little: the bag of little bootstraps (subsets of about "
                             "n_g^0.7 rows per group, resampled to the full group sizes); auto (default): little "
                             f"from {metrics.LITTLE_MIN_ROWS:,} rows on. Every output says which ran")
    parser.add_argument("--subsets", type=int, default=None,
                        help=f"subsets of the little bootstraps (default {metrics.LittleBootstrap().subsets})")
    add_score_range(parser, "every output says so")
    parser.add_argument("--engine", choices=("numpy", "duckdb"), default="numpy",
                        help="numpy (default: every metric, bootstrap intervals) or duckdb: exact SPDD, DP(τ), "
                             "selection rates and the LL144 table as SQL, read out of core from FILE (a glob of "
                             "Parquet/CSV files is fine, e.g. 'data/*.parquet'); no intervals, one --group, no --label")
    parser.add_argument("--print-sql", action="store_true",
                        help="print the SQL of --engine duckdb for a warehouse (table --table) and exit; FILE "
                             "is read only to list the groups")
    parser.add_argument("--tau", type=float, action="append", default=None, metavar="TAU",
                        help="with --engine duckdb / --print-sql: thresholds for DP(τ) and the selection-rate "
                             "tables (repeat for several; default 0.5)")
    parser.add_argument("--table", default="scores",
                        help="table in the --print-sql output, written as given (e.g. analytics.scores; default "
                             "scores)")
    parser.add_argument("--backticks", action="store_true",
                        help="with --print-sql: quote column names with backticks (Spark SQL, BigQuery) instead of "
                             "double quotes")
    parser.add_argument("--memory-limit", default="2GB",
                        help="with --engine duckdb: DuckDB's memory limit; beyond it, it spills to a temporary "
                             "folder (default 2GB)")
    parser.add_argument("--threads", type=int, default=2, help="with --engine duckdb: DuckDB threads (default 2)")
    _add_limits(parser)
    return parser


def _add_limits(parser) -> None:
    parser.add_argument("--missing-values", default="", metavar="A,B",
                        help="group values that mean 'missing', comma-separated (e.g. NA,unknown; case ignored): "
                             "those rows are left out and counted. Default: only an empty cell is missing")
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS,
                        help=f"refuse files with more rows (default {MAX_ROWS:,}); also allows 5 × this many "
                             "rows × groups")
    parser.add_argument("--max-groups", type=int, default=MAX_GROUPS,
                        help=f"refuse a group column with more groups (default {MAX_GROUPS})")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4f}"


def _flag(small_group: bool, impact_ratio: float) -> str:
    """The note after a group's row of a rate table: a small group, or one under four fifths."""
    if small_group:
        return "  <2% of rows"
    return f"  below {FOUR_FIFTHS:g}" if impact_ratio < FOUR_FIFTHS else ""


def _table(name, result, rates, args) -> str:
    pct = f"{result.level * 100:g}%"
    lines = [
        f"  by {name!r}: {result.n} rows; groups: " + ", ".join(f"{g} ({c})" for g, c in result.group_counts.items()),
        "",
        f"  {'metric':<12} {'value':>8}   {pct + ' CI':<20}",
    ]
    for metric in ("spdd", "speo", "pcc", "srcc"):
        mv = getattr(result, metric)
        if mv is None:
            continue
        ci = f"[{_fmt(mv.ci_low)}, {_fmt(mv.ci_high)}]" if result.n_boot else "(no bootstrap)"
        lines.append(f"  {metric:<12} {_fmt(mv.value):>8}   {ci:<20}")
    if result.bootstrap:
        lines.append(f"  intervals from the {result.bootstrap}")
    lines.append(f"  {'spdd@50':<12} {_fmt(result.spdd_grid50):>8}   (mean DP over τ = 0, 0.02, …, 0.98)")
    lines += [""] + [f"  {sentence}" for sentence in _summaries(result).values()]
    if result.speo_grid50 is not None:
        lines.append(f"  {'speo@50':<12} {_fmt(result.speo_grid50):>8}")
    lines += ["", "  SPDD split by the favoured group (area where its selection rate is the highest):"]
    for g, v in result.spdd_parts.items():
        lines.append(f"    {str(g):<20} {_fmt(v)}")
    lines += ["", "  Scoring rates (share above the overall median score; LL144 style):",
              f"    {'group':<20} {'n':>8} {'share':>7} {'rate':>7} {'impact':>7}"]
    for row in rates.itertuples(index=False):
        lines.append(
            f"    {str(row.group):<20} {row.n:>8d} {row.share:>7.3f} {row.scoring_rate:>7.3f} "
            f"{_fmt(row.impact_ratio):>7}{_flag(row.small_group, row.impact_ratio)}"
        )
    return "\n".join(lines)


def _header(args, n: int) -> list[str]:
    lines = [
        f"fairviz audit: {args.file}",
        f"  score {args.score!r}, group " + " + ".join(repr(g) for g in args.group)
        + (f", label {args.label!r}" if args.label else "") + f"; {n} rows",
    ]
    lines.append(f"  rows left out (missing group): {args.n_left_out}")
    if args.score_range:
        lines.append("  " + score_range.note(*args.score_range))
    return lines


def _footer(args, n_boot: int) -> str:
    return (f"  SPDD = ∫₀¹ DP(τ) dτ, DP(τ) = max − min over groups of P(score > τ | group); "
            f"CIs: {n_boot} resamples within groups, seed {args.seed}; for SPDD / SPEO the lower end is 0 "
            "unless a group-label permutation test rejects (docs/STATISTICS.md).")


def _result_json(result, rates) -> dict:
    """One attribute's JSON object: the audit, its sentences in words and the scoring rates."""
    out = {**result.to_dict(), "scoring_rates": _rates_json(rates)}
    for name, sentence in _summaries(result).items():
        out[name]["summary"] = sentence
    return out


def _rates_json(rates) -> list[dict]:
    return [
        {
            "group": str(r.group),
            "n": int(r.n),
            "share": float(r.share),
            "scoring_rate": float(r.scoring_rate),
            "impact_ratio": float(r.impact_ratio) if math.isfinite(r.impact_ratio) else None,
            "small_group": bool(r.small_group),
        }
        for r in rates.itertuples(index=False)
    ]


def _views(df, args) -> dict:
    """name -> (scores, groups, labels): each ``--group`` column, then their intersection (left
    out, with a note in ``args.notes``, when it has more groups than the limits allow)."""
    names = list(dict.fromkeys(args.group))
    views = {}
    for col in names:
        views[col] = select_columns(df, args.score, col, args.label)
        check_audit_size(len(df), len(pd.unique(views[col][1])), f"group column {col!r}",
                         max_groups=args.max_groups, max_cells=5 * args.max_rows)
    if len(names) > 1:
        x, _, y = views[names[0]]
        joined = df[names[0]].astype(str)
        for col in names[1:]:
            joined = joined + INTERSECTION_SEPARATOR + df[col].astype(str)
        name = INTERSECTION_SEPARATOR.join(names)
        try:
            check_audit_size(len(df), int(joined.nunique()), f"the intersection {name!r}",
                             max_groups=args.max_groups, max_cells=5 * args.max_rows)
            views[name] = (x, joined.to_numpy(), y)
        except TooLargeError as err:
            args.notes.append(f"intersection left out: {err}")
    return views


def _sql_rate_lines(rows) -> list[str]:
    lines = [f"    {'group':<20} {'n':>10} {'share':>7} {'rate':>7} {'impact':>7}"]
    for r in rows.itertuples(index=False):
        lines.append(f"    {str(r.grp):<20} {int(r.n):>10d} {r.share:>7.3f} {r.rate:>7.3f} "
                     f"{_fmt(r.impact_ratio):>7}{_flag(r.small_group, r.impact_ratio)}")
    return lines


def _run_sql(args: argparse.Namespace) -> int:
    if len(args.group) > 1:
        raise ValueError("--engine duckdb and --print-sql take one --group (run once per attribute)")
    if args.label:
        raise ValueError("--engine duckdb and --print-sql do not take --label (SPEO, PCC, SRCC need the numpy engine)")
    rng = tuple(args.score_range) if args.score_range else None
    taus = tuple(args.tau or (0.5,))
    if args.print_sql:
        sys.stdout.write(sql.print_sql(args.file, args.score, args.group[0], taus, score_range=rng, table=args.table,
                                       quote="`" if args.backticks else '"') + "\n")
        return 0
    if args.threads < 1:
        raise ValueError("--threads must be 1 or more")
    res = sql.run_duckdb(args.file, args.score, args.group[0], taus, score_range=rng,
                         memory_limit=args.memory_limit, threads=args.threads,
                         progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    if args.json:
        out = res.to_dict()
        out["source"] = {"file": str(args.file), "score": args.score, "group": args.group[0], "engine": "duckdb"}
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
        return 0
    lines = [f"fairviz audit (DuckDB, exact SQL): {args.file}",
             f"  score {args.score!r}, group {args.group[0]!r}; {res.n} rows; groups: "
             + ", ".join(f"{g} ({c})" for g, c in res.group_counts.items())]
    if rng:
        lines.append("  " + score_range.note(*rng))
    lines += ["", f"  {'spdd':<12} {_fmt(res.spdd):>8}   (exact; no intervals with --engine duckdb)"]
    for t in taus:
        at = res.at(t)
        lines += ["", f"  At τ = {t:g}: DP = {_fmt(at['dp'].iloc[0])}; selection rates:"] + _sql_rate_lines(at)
    lines += ["", f"  Scoring rates (share above the overall median score {res.median:.4f}; LL144 style):"]
    lines += _sql_rate_lines(res.scoring_rates())
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _summaries(result) -> dict:
    """{"spdd": sentence, "speo": sentence}: what the distances' numbers mean, in words."""
    return {name: describe(name.upper(), {**getattr(result, name).to_dict(), "level": result.level})
            for name in ("spdd", "speo") if getattr(result, name) is not None}


def _audit_one(state: tuple, i: int) -> tuple:
    """Audit view ``i``, with a progress bar on stderr (hidden when stderr is not a terminal)
    over its bootstrap resamples, then its permutation tests' shuffles."""
    items, prepared, args = state
    name, p = items[i][0], prepared[i]
    with tqdm(total=None, desc=f"[{i + 1}/{len(items)}] {name}", unit="draw", disable=None,
              file=sys.stderr, position=i) as bar:
        def follow(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = metrics.audit_prepared(p, n_boot=args.n_boot, level=args.level, random_state=args.seed,
                                        progress=follow, bootstrap=args.boot_choice)
        return name, (result, p.scoring_rate_table())


def _audit_views(views: dict, args) -> dict:
    """name -> (AuditResult, LL144 table): each view prepared once (checked, encoded, sorted),
    the group-independent parts (rank orders, PCC, SRCC, SPEO's breakpoints) computed once for
    all. Views run two at a time, the one with most groups first: in forked worker processes
    from `PROCESS_MIN_ROWS` rows on. Each view's numbers do not depend on where it ran."""
    items = list(views.items())
    prepared = [metrics.prepare(*view) for _, view in items]
    if prepared[0].has_labels:  # the rank orders, PCC, SRCC and SPEO's breakpoints do not depend on the grouping
        prepared[0].pcc(), prepared[0].srcc(), prepared[0].speo_breakpoints()
    for p in prepared[1:]:
        p.share_rows(prepared[0])
    largest_first = sorted(range(len(items)), key=lambda i: -len(prepared[i].groups))
    big = args.n_boot > 0 and prepared[0].n >= PROCESS_MIN_ROWS
    done = dict(run_side_by_side(_audit_one, (items, prepared, args), largest_first, processes=big))
    return {name: done[name] for name, _ in items}


def _boot_choice(args):
    """--bootstrap (and --subsets) as `metrics.audit_prepared`'s ``bootstrap``."""
    if args.subsets is None:
        return args.bootstrap
    if args.subsets < 1:
        raise ValueError("--subsets must be 1 or more")
    if args.bootstrap == "exact":
        raise ValueError("--subsets is a setting of the little bootstraps; it does not go with --bootstrap exact")
    return metrics.LittleBootstrap(subsets=args.subsets,
                                   min_rows=metrics.LITTLE_MIN_ROWS if args.bootstrap == "auto" else 0)


def run(args: argparse.Namespace) -> int:
    if args.n_boot < 0:
        raise ValueError("--n-boot must be 0 or more")
    if not 0.0 < args.level < 1.0:
        raise ValueError("--level must be between 0 and 1, e.g. 0.95")
    if args.score_range:
        score_range.check_range(*args.score_range)
    args.boot_choice = _boot_choice(args)
    if args.engine == "duckdb" or args.print_sql:
        return _run_sql(args)
    if args.max_rows < 1 or args.max_groups < 2:
        raise ValueError("--max-rows must be 1 or more and --max-groups 2 or more")
    df = read_table(args.file, max_rows=args.max_rows)
    tokens = parse_missing_values(args.missing_values)
    args.n_left_out, args.notes = 0, []
    for col in dict.fromkeys(args.group) if tokens else ():
        df, left_out = drop_missing_groups(df, col, tokens)
        args.n_left_out += left_out
    if args.score_range:
        df = score_range.rescale_column(df, args.score, *args.score_range)
    results = _audit_views(_views(df, args), args)
    if args.json:
        per = {name: _result_json(result, rates) for name, (result, rates) in results.items()}
        out = dict(next(iter(per.values())))
        out["attributes"] = per
        out["score_range"] = score_range.to_dict(*args.score_range) if args.score_range else None
        out["source"] = {"file": str(args.file), "score": args.score, "group": args.group[0],
                         "groups": list(args.group), "label": args.label, "seed": args.seed}
        out["n_left_out"] = args.n_left_out
        out["notes"] = args.notes
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
    else:
        first = next(iter(results.values()))[0]
        lines = _header(args, first.n)
        for name, (result, rates) in results.items():
            lines += ["", _table(name, result, rates, args)]
        lines += [""] + [f"  {note}" for note in args.notes] + [_footer(args, first.n_boot)]
        sys.stdout.write("\n".join(lines) + "\n")
    return 0
