"""Where fairviz keeps things on disk.

- Feature caches and generated data: outside the repository, in `$FAIRVIZ_CACHE`
  (default `~/.cache/fairviz`).
- Runs (checkpoints): `$FAIRVIZ_MODELS` (default: `models/` beside the package, i.e. the
  repository's shipped runs).
- Data a browser user may name on the Train page (a manifest CSV, a First Impressions folder):
  only under `$FAIRVIZ_DATA_ROOT`, which the server's operator sets; unset (the default), the
  app offers no server-side data at all (`data_root()` is None).
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


DATA_ROOT_ENV = "FAIRVIZ_DATA_ROOT"


def data_root() -> Path | None:
    """The folder under which app users may name server files (`$FAIRVIZ_DATA_ROOT`, resolved),
    or None when the operator has not set one (server-side data sources are then off)."""
    value = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def under_data_root(user_path: str, root: Path) -> Path:
    """The path a browser user typed, as a path inside ``root``; ValueError otherwise.

    ``user_path`` is read relative to ``root`` (a leading ``/`` is ignored, so ``/x`` means
    ``root/x``). Refused: ``..`` anywhere, and any symbolic link on the way (so nothing can point
    out of the root). Messages name the path as typed, never where the root is on the server.
    """
    text = str(user_path).strip().replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError("enter a path inside the data folder")
    if ".." in parts or "\0" in text:
        raise ValueError(f"{text!r}: '..' is not allowed; give a path inside the data folder")
    path = root
    for i, part in enumerate(parts):
        path = path / part
        shown = "/".join(parts[: i + 1])
        if path.is_symlink():
            raise ValueError(f"{shown!r} is a symbolic link; links are not followed")
        if not path.exists():
            raise FileNotFoundError(f"{shown!r} is not in the data folder")
    return path
