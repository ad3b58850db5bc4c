"""`python -m fairviz audit FILE.csv|FILE.parquet --score COL --group COL [--label COL] [--json]`

Audits the scores in a table by one group column: exact SPDD (= W1 between the groups' score
distributions for two groups) with a CI, an upper bound and a permutation test, its paper variant
on 50 thresholds, who the gap favours, and with ``--label`` also SPEO (like SPDD), PCC and SRCC
with CIs; plus the NYC Local Law 144 scoring-rate table. ``--json`` prints one JSON object
instead of the table (``schema_version`` 2; keys ``spdd``, ``speo``, ``pcc``, ``srcc`` — the last
three only with ``--label`` — each ``{"value", "ci_low", "ci_high"}``, and ``groups`` with the row
count per group; plus ``n``, ``spdd_grid50``, ``speo_grid50``, ``spdd_parts``, ``level``,
``n_boot``, ``scoring_rates``, ``source``). ``spdd`` and ``speo`` also carry (see
`fairviz.uncertainty` and docs/STATISTICS.md): ``ci_method`` ("test-inversion": ``ci_low`` is 0
unless the permutation test rejects; in schema 1 these were percentile intervals, which never
contain 0), ``upper`` (one-sided upper bound at ``level``), ``p_value`` (permutation test of
"no difference between groups"), ``chance_mean`` / ``chance_p95`` (the distance under shuffled
groups), ``debiased`` (√max(0, value² − chance_mean²)), ``n_perm``; and ``summary``, the sentence
the table prints. Bad input is a one-line ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "audit",
        help="audit a table of scores by group (SPDD, SPEO, PCC, SRCC with bootstrap CIs)",
        description=(
            "Threshold-free fairness audit of the scores in a CSV or Parquet file: exact SPDD "
            "(the area between the groups' selection-rate curves; W1 for two groups), SPEO, PCC "
            "and SRCC with percentile bootstrap intervals (resampling within groups)."
        ),
    )
    parser.add_argument("file", help="CSV or Parquet file with one row per candidate")
    parser.add_argument("--score", required=True, help="column with the scores, numbers in [0, 1]")
    parser.add_argument("--group", required=True, help="column with the group of each row (2 or more groups)")
    parser.add_argument("--label", default=None, help="optional column with the true outcome in [0, 1] (SPEO, PCC, SRCC)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000; 0 = no intervals)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")
    parser.set_defaults(func=run)
    return parser


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4f}"


def _table(result, rates, args) -> str:
    pct = f"{result.level * 100:g}%"
    lines = [
        f"fairviz audit: {args.file}",
        f"  score {args.score!r}, group {args.group!r}" + (f", label {args.label!r}" if args.label else ""),
        f"  {result.n} rows; groups: " + ", ".join(f"{g} ({c})" for g, c in result.group_counts.items()),
        "",
        f"  {'metric':<12} {'value':>8}   {pct + ' CI':<20}",
    ]
    for name in ("spdd", "speo", "pcc", "srcc"):
        mv = getattr(result, name)
        if mv is None:
            continue
        ci = f"[{_fmt(mv.ci_low)}, {_fmt(mv.ci_high)}]" if result.n_boot else "(no bootstrap)"
        lines.append(f"  {name:<12} {_fmt(mv.value):>8}   {ci:<20}")
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
        flag = "  <2% of rows" if row.small_group else ("  below 0.8" if row.impact_ratio < 0.8 else "")
        lines.append(
            f"    {str(row.group):<20} {row.n:>8d} {row.share:>7.3f} {row.scoring_rate:>7.3f} "
            f"{_fmt(row.impact_ratio):>7}{flag}"
        )
    lines += ["", f"  SPDD = ∫₀¹ DP(τ) dτ, DP(τ) = max − min over groups of P(score > τ | group); "
                  f"CIs: {result.n_boot} resamples within groups, seed {args.seed}; for SPDD / SPEO the "
                  "lower end is 0 unless a group-label permutation test rejects (docs/STATISTICS.md)."]
    return "\n".join(lines)


def _summaries(result) -> dict:
    """{"spdd": sentence, "speo": sentence}: what the distances' numbers mean, in words."""
    from fairviz.uncertainty import describe

    return {name: describe(name.upper(), {**getattr(result, name).to_dict(), "level": result.level})
            for name in ("spdd", "speo") if getattr(result, name) is not None}


def run(args: argparse.Namespace) -> int:
    from fairviz import metrics
    from fairviz.tabular import read_table, select_columns

    if args.n_boot < 0:
        raise ValueError("--n-boot must be 0 or more")
    if not 0.0 < args.level < 1.0:
        raise ValueError("--level must be between 0 and 1, e.g. 0.95")
    df = read_table(args.file)
    scores, groups, labels = select_columns(df, args.score, args.group, args.label)
    result = metrics.audit(scores, groups, labels, n_boot=args.n_boot, level=args.level, random_state=args.seed)
    rates = metrics.scoring_rate_table(scores, groups)
    if args.json:
        out = result.to_dict()
        for name, sentence in _summaries(result).items():
            out[name]["summary"] = sentence
        out["scoring_rates"] = [
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
        out["source"] = {"file": str(args.file), "score": args.score, "group": args.group, "label": args.label,
                         "seed": args.seed}
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
    else:
        sys.stdout.write(_table(result, rates, args) + "\n")
    return 0
