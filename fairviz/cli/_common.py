"""Argument-parser pieces the sub-commands share: registering a command, and the options of the
commands that read a table of scores (``audit``, ``report``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def add_command(subparsers, name: str, run: Callable[[argparse.Namespace], int], *, help: str,
                description: str, **kwargs) -> argparse.ArgumentParser:
    """Register the sub-command ``name``: its parser (``help`` in the command list, ``description``
    in its own ``--help``; other keyword arguments go to `add_parser`), run by ``run(args) -> exit code``."""
    parser = subparsers.add_parser(name, help=help, description=description, **kwargs)
    parser.set_defaults(func=run)
    return parser


def add_table_arguments(parser: argparse.ArgumentParser, *, group_help: str) -> None:
    """FILE, ``--score``, ``--group`` (repeatable) and ``--label``: the columns of a table to audit."""
    parser.add_argument("file", help="CSV or Parquet file with one row per candidate")
    parser.add_argument("--score", required=True, help="column with the scores, numbers in [0, 1]")
    parser.add_argument("--group", required=True, action="append", metavar="COL", help=group_help)
    parser.add_argument("--label", default=None,
                        help="optional column with the true outcome in [0, 1] (SPEO, PCC, SRCC)")


def add_score_range(parser: argparse.ArgumentParser, said: str) -> None:
    """``--score-range LOW HIGH``: scores on another scale, rescaled into [0, 1]; ``said``: where the
    output says so (e.g. "the report says so")."""
    parser.add_argument("--score-range", nargs=2, type=float, metavar=("LOW", "HIGH"), default=None,
                        help="the scores lie on [LOW, HIGH] (e.g. 0 100): rescale them into [0, 1] as "
                             f"(score - LOW) / (HIGH - LOW); {said}")


def fmt_num(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals for a table or summary line; "—" when it is not finite."""
    return f"{x:.{digits}f}" if math.isfinite(x) else "—"
