"""`python -m fairviz <command>`: one module per command in this package.

Each command module defines `add_parser(subparsers)`, which registers its sub-parser and sets
`func` to a callable `(args) -> int`. Bad input (ValueError, FileNotFoundError) becomes a one-line
`error: ...` on stderr and exit code 2, never a traceback; so is running out of memory.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Command modules, in the order `--help` lists them.
COMMAND_MODULES = ("audit", "report", "data", "train", "experiments", "ship", "monitor")

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairviz",
        description="Fair multimodal interview scoring and threshold-free fairness audits.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"fairviz.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("error: out of memory: the data is too large for this machine; sample or split it, or use "
              "a machine with more memory (see --max-rows)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
