"""Where fairviz keeps things on disk.

- Feature caches and generated data: outside the repository, in `$FAIRVIZ_CACHE`
  (default `~/.cache/fairviz`).
- Runs (checkpoints): `$FAIRVIZ_MODELS` (default: `models/` beside the package, i.e. the
  repository's shipped runs).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The feature/data cache folder, created on first use."""
    path = Path(os.environ.get("FAIRVIZ_CACHE") or Path.home() / ".cache" / "fairviz")
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The folder that holds saved runs (`models/<run-name>/`)."""
    return Path(os.environ.get("FAIRVIZ_MODELS") or REPO_ROOT / "models")
