"""`python -m fairviz monitor STATE [--add FILE | --replay FILE --time-column T] --score COL --group COL`

Keeps a fairness monitor in the state file STATE (created on first use): adds a batch of
decisions (``--add``) or replays a time-stamped history (``--replay``), saves the state
atomically, and prints each monitored gap (SPDD, and DP(τ) for each ``--tau``) with its
anytime-valid confidence sequence and whether H0 "gap ≤ ε" is rejected. Without ``--add`` or
``--replay`` it only prints the state. ``--json`` prints one JSON object instead.

Exit codes: 0 while H0 stands; 1 once it has been rejected for any gap (and on every later run of
the same state, so a cron job or CI step keeps failing); 2 on bad input (one ``error: ...`` line),
and the state file is then left as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from fairviz import monitor
from fairviz.cli._common import add_command
from fairviz.tabular import read_table, select_columns

EXIT_ALARM = 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = add_command(subparsers, "monitor", run,
                         help="monitor a stream of decisions: anytime-valid alarms when a fairness gap exceeds ε",
                         description="Add a batch of scored decisions to a monitor state (or replay a time-stamped history) and "
                                     "test H0 'the gap is at most ε' for SPDD and the selection-rate gap at each --tau, with "
                                     "confidence sequences valid at every update (exit 1 once H0 is rejected).")
    parser.add_argument("state", help="the state file (JSON; created on first use)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--add", metavar="FILE", help="CSV or Parquet file with a batch of decisions to add")
    src.add_argument("--replay", metavar="FILE", help="CSV or Parquet history to replay in time order")
    parser.add_argument("--score", help="column with the scores, numbers in [0, 1]")
    parser.add_argument("--group", help="column with the group of each row")
    parser.add_argument("--label", help="optional column with the true outcome in [0, 1]; empty cells = not known "
                                        "yet (used by --eo-tau only)")
    parser.add_argument("--labels-only", action="store_true", help="with --add: these rows were added before "
                                                                   "without labels; count their labels only")
    parser.add_argument("--time-column", help="column with the time of each row (required with --replay; with "
                                              "--add it stamps the update with the batch's latest time)")
    parser.add_argument("--groups", nargs="+", metavar="G", help="every group to monitor (new state; default: the "
                                                                 "groups in the first file)")
    parser.add_argument("--epsilon", type=float, help="tolerated gap ε in H0 'gap ≤ ε' (new state; default 0.05)")
    parser.add_argument("--alpha", type=float, help="chance of any false alarm, ever (new state; default 0.05)")
    parser.add_argument("--tau", type=float, action="append", help="also monitor the selection-rate gap at this "
                                                                   "threshold (repeatable; new state)")
    parser.add_argument("--eo-tau", type=float, action="append", help="also monitor the equal-opportunity gap "
                        "P(score > τ | label > τ) at this threshold, on labelled rows (repeatable; new state)")
    parser.add_argument("--bits", type=int, help="score grid of 2^bits cells (new state; default 16)")
    parser.add_argument("--max-looks", type=int, default=200, help="updates of a --replay (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def _settings(args) -> dict:
    return {"groups": args.groups, "epsilon": args.epsilon, "alpha": args.alpha,
            "taus": tuple(args.tau) if args.tau else None, "bits": args.bits,
            "eo_taus": tuple(args.eo_tau) if args.eo_tau else None}


def _new_state(args, groups_in_file):
    given = {k: v for k, v in _settings(args).items() if v is not None}
    if "groups" not in given:
        names = list(dict.fromkeys(str(g) for g in groups_in_file))
        if len(names) < 2:
            raise ValueError(f"the first file holds only group {names[0]!r}; list every group to monitor with "
                             "--groups (a state's groups are fixed when it is created)")
        given["groups"] = names
    return monitor.MonitorState(monitor.MonitorConfig(**given))


def _update(args, state):
    """The state after this run's input (a new state if the file does not exist yet)."""
    path = args.add or args.replay
    if path is None:
        return state
    if not args.score or not args.group:
        raise ValueError("--score and --group are required with --add or --replay")
    if args.labels_only and (args.replay or state is None):
        raise ValueError("--labels-only adds labels of rows already in an existing state: use it with --add")
    df = read_table(path)
    if args.replay:
        if not args.time_column:
            raise ValueError("--replay needs --time-column (the column with each decision's time)")
        if args.max_looks < 1:
            raise ValueError("--max-looks must be 1 or more")
        if state is None:
            _, groups, _ = select_columns(df, args.score, args.group, min_groups=1)
            state = _new_state(args, groups)
        return _replay(df, args, state)
    scores, groups, labels = select_columns(df, args.score, args.group, args.label, min_groups=1,
                                            labels_may_be_missing=True)
    stamp = monitor.time_values(df, args.time_column).max() if args.time_column else None
    if state is None:
        state = _new_state(args, groups)
    state.update(scores, groups, labels, time=stamp, labels_only=args.labels_only)
    return state


def _replay(df, args, state):
    with tqdm(total=None, desc="replay", unit="look", disable=None, file=sys.stderr) as bar:
        def progress(i, total):
            bar.total = total
            bar.update(1)

        return monitor.replay(df, args.score, args.group, args.time_column, label=args.label, state=state,
                              max_looks=args.max_looks, progress=progress)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def _table(state, gaps, path) -> str:
    cfg = state.config
    level = f"{(1 - cfg.alpha) * 100:g}%"
    lines = [
        f"fairviz monitor: {path}",
        f"  {state.n:,} decisions in {state.updates} update(s); groups: "
        + ", ".join(f"{g} ({c:,})" for g, c in state.group_counts.items()),
        f"  H0: gap ≤ ε = {cfg.epsilon:g}; {level} confidence sequences, valid at every update and for all "
        "gaps together",
        "",
        f"  {'gap':<10} {'value':>8}   {level + ' CS':<20} H0",
    ]
    for g in gaps:
        first = state.alarms.get(g.name)
        if first:
            where = f"update {first['update']}, decision {first['n']:,}" + (f", time {first['time']}" if first["time"] else "")
            verdict = f"REJECTED (first at {where})"
        else:
            verdict = "not rejected"
        lines.append(f"  {g.name:<10} {_fmt(g.value):>8}   [{g.low:.4f}, {g.high:.4f}]{'':<3} {verdict}")
    for i, tau in enumerate(cfg.eo_taus):
        lines.append(f"  EO({tau:g}) uses the labelled rows with label > {tau:g}: "
                     + ", ".join(f"{g} ({int(c):,})" for g, c in zip(cfg.groups, state.qualified[:, i])))
    if any(n == 0 for n in state.group_counts.values()):
        lines.append("  (groups without rows yet cannot raise the lower ends; the upper ends stay wide)")
    lines += ["", f"  SPDD on a grid of 2^{cfg.bits} score cells (within {cfg.grid_error:.1e} of the exact value)."]
    lines.append("  ALARM: H0 rejected; exit code 1." if state.rejected else "  No alarm; exit code 0.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = Path(args.state)
    state = None
    if path.exists():
        state = monitor.load(path)
        monitor.check_settings(state, path.name, **_settings(args))
    elif not (args.add or args.replay):
        raise FileNotFoundError(f"no such state file: {path} (give --add or --replay to create it)")
    state = _update(args, state)
    if args.add or args.replay:
        monitor.save(state, path)
    gaps = state.gaps()
    if args.json:
        out = {"state": str(path), "n": state.n, "updates": state.updates, "groups": state.group_counts,
               "epsilon": state.config.epsilon, "alpha": state.config.alpha, "grid_error": state.config.grid_error,
               "gaps": [g.to_dict() for g in gaps], "alarms": state.alarms, "rejected": state.rejected,
               "eo_rows": {f"EO({t:g})": dict(zip(state.config.groups, map(int, state.qualified[:, i])))
                           for i, t in enumerate(state.config.eo_taus)}}
        sys.stdout.write(json.dumps(out, allow_nan=False, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_table(state, gaps, path) + "\n")
    return EXIT_ALARM if state.rejected else 0
