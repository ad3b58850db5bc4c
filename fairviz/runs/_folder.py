"""A run folder on disk: its file names, the checks made before anything in it is read, and the
readers of its JSON, CSV and safetensors files (no unpickling, no torch)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError, safe_open

from fairviz import __version__
from fairviz.postprocess import REPAIR_FILE
from fairviz.runs._metrics import is_number

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
Z_FILE = "z.safetensors"
HISTORY_FILE = "history.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, PREDICTIONS_FILE, Z_FILE, HISTORY_FILE)
OPTIONAL_FILES = (REPAIR_FILE,)  # written when the run has validation rows
PREDICTION_COLUMNS = ("score", "label", "group", "split")

# File names / first bytes of formats that can execute code when loaded (pickle, torch.save zips,
# numpy object arrays, joblib). Their mere presence makes a folder untrusted.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".npy", ".npz", ".dill")
_MAX_JSON_BYTES = 50 * 1024 * 1024
#: Entries one run folder may hold (a run has six files; a folder with more is not a run).
_MAX_ENTRIES = 1000
_WORD_OK = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _is_pickle_bearing(p: Path) -> bool:
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    # pickle protocol 2-5 starts with PROTO (0x80) + version; torch.save / joblib zips with PK\3\4
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head == b"PK\x03\x04"


def _regular_files(path: Path) -> list[Path]:
    """Every regular file under `path`, at any depth, refusing (ValueError) a symbolic link or
    more than `_MAX_ENTRIES` entries; nothing is opened or followed, so a link to /usr or
    /proc/kmsg is refused without being read (special files such as a FIFO are skipped)."""
    files, stack, seen = [], [path], 0
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                seen += 1
                if seen > _MAX_ENTRIES:
                    raise ValueError(f"refusing run {path.name!r}: it holds more than {_MAX_ENTRIES} entries")
                rel = os.path.relpath(e.path, path)
                mode = e.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise ValueError(f"refusing run {path.name!r}: {rel} is a symbolic link")
                if stat.S_ISDIR(mode):
                    stack.append(Path(e.path))
                elif stat.S_ISREG(mode):
                    files.append(Path(e.path))
                # special files (FIFO, socket, device) are left alone: never opened
    return files


def check_run_folder(path) -> Path:
    """Raise ValueError unless `path` is a complete run folder holding no pickle-bearing file and
    no symbolic link (at any depth; the folder itself neither)."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"refusing run {path.name!r}: the folder is a symbolic link")
    if not path.exists():
        raise FileNotFoundError(f"no run folder at {path}")
    if not path.is_dir():
        raise ValueError(f"{path} is not a run folder (not a directory)")
    files = _regular_files(path)
    bad = sorted(str(p.relative_to(path)) for p in files if _is_pickle_bearing(p))
    if bad:
        raise ValueError(
            f"refusing run {path.name!r}: it holds pickle-bearing file(s) {bad}; fairviz never "
            "unpickles (pickles can run code). Remove them if you trust the folder."
        )
    top = {p.name for p in files if p.parent == path}
    missing = [n for n in REQUIRED_FILES if n not in top]
    if missing:
        raise ValueError(f"run {path.name!r} is incomplete: missing {', '.join(missing)}")
    return path


def check_replaceable(path) -> None:
    """Raise ValueError unless `path` is missing or is a fairviz run folder that an overwrite may
    replace: a real folder (not a link) whose config.json is a fairviz run config. Anything else
    (a folder of runs, a user's folder, ``some/folder/.``) is refused, so an overwrite never
    deletes what fairviz did not write."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise ValueError(f"refusing to overwrite {path}: it is not a fairviz run folder (not a plain folder)")
    try:
        read_run_config(path)
    except (ValueError, OSError):
        raise ValueError(f"refusing to overwrite {path}: it is not a fairviz run folder (no readable "
                         f"{CONFIG_FILE} of a run); choose another name") from None


def read_json(path: Path, what: str):
    """The JSON value in `path`; ValueError (naming `what`) for a file too large, not JSON, or
    nested too deeply."""
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"{what} {path.name} is too large ({path.stat().st_size} bytes)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {path.name} is not valid JSON: {err}") from None
    except RecursionError:  # e.g. "[[[[..." a hundred thousand deep
        raise ValueError(f"{what} {path.name} is nested too deeply to be a fairviz file") from None


def read_run_config(path) -> dict:
    """config.json of a run folder, checked for a supported ``format_version``."""
    path = Path(path)
    where = f"run config {path / CONFIG_FILE}"
    cfg = read_json(path / CONFIG_FILE, "run config")
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} must be a JSON object")
    version = cfg.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ValueError(
            f"run {path.name!r} has format_version {version!r}; this fairviz "
            f"({__version__}) reads {list(SUPPORTED_FORMAT_VERSIONS)}. Retrain it or use a matching fairviz."
        )
    for key in ("method", "alpha", "lambda_w", "seed", "bias_mode", "train", "model"):
        if key not in cfg:
            raise ValueError(f"{where} lacks {key!r}")
    for key in ("method", "bias_mode"):  # shown on pages: plain identifiers only, never markup
        if not isinstance(cfg[key], str) or not _WORD_OK.fullmatch(cfg[key]):
            raise ValueError(f"{where}: {key} must be a word such as 'ours' or 'label'")
    for key in ("alpha", "lambda_w", "seed"):
        if not is_number(cfg[key]):
            raise ValueError(f"{where}: {key} must be a number")
    for key, kind in (("train", dict), ("model", dict), ("info", dict), ("name", str)):
        if cfg.get(key) is not None and not isinstance(cfg[key], kind):
            raise ValueError(f"{where}: {key} must be a JSON {'object' if kind is dict else 'string'}")
    return cfg


def read_predictions(run_path: str | Path) -> pd.DataFrame:
    """The `predictions.csv` of a run folder (columns score, label, group, split), without
    loading the weights or importing the network: what a page that only draws scores needs."""
    path = Path(run_path) / PREDICTIONS_FILE
    try:
        df = pd.read_csv(
            path,
            dtype={"score": "float64", "label": "float64", "group": "int64", "split": "str"},
        )
    except (ValueError, OverflowError, pd.errors.ParserError, UnicodeDecodeError) as err:  # Overflow: a 30-digit group
        raise ValueError(f"predictions file {path.name} cannot be read: {err}") from None
    if tuple(df.columns) != PREDICTION_COLUMNS:
        raise ValueError(
            f"predictions file {path.name} must have columns {list(PREDICTION_COLUMNS)}; has {list(df.columns)}"
        )
    bad = ~df["split"].isin(["train", "val", "test"])
    if bad.any():
        raise ValueError(f"predictions file {path.name}: unknown split values {sorted(set(df['split'][bad]))[:5]}")
    if (df["split"] == "test").sum() == 0:
        raise ValueError(f"predictions file {path.name} holds no test rows")
    s = df["score"].to_numpy()
    if not np.all(np.isfinite(s)) or s.min() < 0 or s.max() > 1:
        raise ValueError(f"predictions file {path.name}: scores must be finite and in [0, 1]")
    return df


def check_safetensors_header(path: Path, what: str) -> None:
    """Parse only the header (no tensor data): bad JSON, offsets outside the file, a truncated file."""
    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} {path.name} is not a valid safetensors file: {err}") from None
