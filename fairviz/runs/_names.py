"""Run folder names: safe to use as one path component, unique under a models folder."""

from __future__ import annotations

import re
from pathlib import Path

from fairviz.paths import models_dir

MAX_NAME_LENGTH = 100


def sanitize_run_name(name: str) -> str:
    """A safe folder name: only ``[A-Za-z0-9._-]``, no leading dot or dash, at most 100 chars.

    Path separators and other characters become ``-``; ``../x`` becomes ``x``. Raises ValueError
    when nothing usable is left.
    """
    if not isinstance(name, str):
        raise ValueError(f"run name must be a string; got {type(name).__name__}")
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip())
    out = re.sub(r"-{2,}", "-", out)
    out = re.sub(r"\.{2,}", ".", out)
    out = out.lstrip(".-").rstrip("-")[:MAX_NAME_LENGTH].rstrip("-")
    if not out or out.startswith("tmp-"):
        raise ValueError(
            f"run name {name!r} has no usable characters; use letters, digits, '.', '_' or '-'"
        )
    return out


def unique_run_name(root, base: str) -> str:
    """`sanitize_run_name(base)`, with ``-2``, ``-3``, ... appended if `root` already holds it."""
    root = Path(root) if root is not None else models_dir()
    base = sanitize_run_name(base)
    if not (root / base).exists():
        return base
    k = 2
    while True:
        suffix = f"-{k}"
        cand = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
        if not (root / cand).exists():
            return cand
        k += 1


def check_folder_name(path: Path) -> None:
    """ValueError unless the last component of `path` is already a sanitized run name."""
    if sanitize_run_name(path.name) != path.name:
        raise ValueError(
            f"run folder name {path.name!r} is not allowed; use e.g. {sanitize_run_name(path.name)!r}"
        )
