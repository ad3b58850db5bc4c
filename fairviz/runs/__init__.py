"""Saved runs: `models/<run-name>/`, written atomically, loaded without unpickling anything.

A run folder holds exactly these files:

=====================  ==========================================================================
``config.json``        ``format_version``, ``fairviz_version``, ``name``, ``method``, ``alpha``,
                       ``lambda_w``, ``seed``, ``bias_mode`` at the top level, then ``train``
                       (the full TrainConfig), ``model`` (the ModelConfig) and ``info``
``model.safetensors``  the network's weights (float32), safetensors format (no code, no pickle)
``metrics.json``       test-split metrics: ``fairviz.metrics.audit(...).to_dict()`` - the shape of
                       ``python -m fairviz audit --json`` - plus ``n_boot``, ``random_state``,
                       ``spdd_floor``, ``val_pcc``, ``val_spdd``, ``best_epoch``
``predictions.csv``    columns ``score,label,group,split`` (validation and test rows; true labels)
``z.safetensors``      tensor ``z``: (n_test, d_z) fused code of the test rows, in the order of
                       the test rows of predictions.csv
``history.json``       per-epoch list of loss terms and validation PCC / SPDD
``repair.json``        optional: the barycenter repair fitted on the validation rows
                       (`fairviz.postprocess`); absent when there are no validation rows
=====================  ==========================================================================

`load_run` checks before it builds anything: all files present (missing ones are named), no
pickle-bearing file anywhere in the folder, a known ``format_version``, a config that parses, and
weights whose keys and shapes equal those of a network freshly built from the stored config.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fairviz import __version__
from fairviz.atomic import staged_dir, usual_mode

if TYPE_CHECKING:  # train imports torch; runs must load without it until a model is built
    from fairviz.train import Run
from fairviz.paths import models_dir
from fairviz.postprocess import REPAIR_FILE, write_repair

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

_NAME_OK = re.compile(r"[A-Za-z0-9._-]+")
_WORD_OK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_METRIC_KEYS = ("pcc", "srcc", "spdd", "speo", "spdd_floor", "val_pcc", "val_spdd")
_COUNT_KEYS = ("n", "n_boot", "random_state", "best_epoch")
MAX_NAME_LENGTH = 100


# ---------------------------------------------------------------------------------------------
# Names


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


def _check_folder_name(path: Path) -> None:
    if sanitize_run_name(path.name) != path.name:
        raise ValueError(
            f"run folder name {path.name!r} is not allowed; use e.g. {sanitize_run_name(path.name)!r}"
        )


# ---------------------------------------------------------------------------------------------
# Save


def _json_dumps(obj) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _clean(obj):
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def run_config_dict(run) -> dict:
    """The content of config.json for `run`."""
    cfg = run.config
    return {
        "format_version": FORMAT_VERSION,
        "fairviz_version": __version__,
        "name": run.name,
        "method": cfg.method,
        "alpha": cfg.alpha,
        "lambda_w": cfg.lambda_w,
        "seed": cfg.seed,
        "bias_mode": cfg.bias_mode,
        "train": cfg.to_dict(),
        "model": run.model_config.to_dict(),
        "info": run.info,
    }


def save_run(run, path=None, *, overwrite: bool = False) -> Path:
    """Write `run` to the folder `path` (default: ``models_dir()/run.name``) atomically.

    Everything is written into a temporary sibling folder that is renamed into place at the end,
    so a reader (or `list_runs`) sees the old run or the new one, never a half-written one. An
    existing folder is an error (FileExistsError) unless `overwrite`; use `unique_run_name` for a
    free name. Returns the folder.
    """
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file as save_torch

    path = Path(path) if path is not None else models_dir() / sanitize_run_name(run.name)
    _check_folder_name(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True or choose another name")
    if overwrite:
        check_replaceable(path)
    preds = run.predictions
    missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
    if missing:
        raise ValueError(f"run.predictions lacks columns {missing}")
    n_test = int((preds["split"] == "test").sum())
    z = np.ascontiguousarray(np.asarray(run.z, dtype=np.float32))
    if z.ndim != 2 or z.shape[0] != n_test:
        raise ValueError(f"run.z must be (n_test={n_test}, d_z); got shape {z.shape}")
    state = {k: v.detach().cpu().contiguous() for k, v in run.state_dict.items()}

    with staged_dir(path, replace=overwrite) as tmp:
        save_torch(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "fairviz": __version__})
        save_numpy({"z": z}, str(tmp / Z_FILE))
        for name in (WEIGHTS_FILE, Z_FILE):  # safetensors writes 0600; like any saved file instead
            usual_mode(tmp / name)
        (tmp / CONFIG_FILE).write_text(_json_dumps(run_config_dict(run)), encoding="utf-8")
        (tmp / METRICS_FILE).write_text(_json_dumps(run.metrics), encoding="utf-8")
        (tmp / HISTORY_FILE).write_text(_json_dumps(run.history), encoding="utf-8")
        out = preds.loc[:, list(PREDICTION_COLUMNS)]
        # %.17g: every float64 round-trips exactly, so metrics recomputed from the CSV match
        out.to_csv(tmp / PREDICTIONS_FILE, index=False, float_format="%.17g", lineterminator="\n")
        write_repair(tmp, out)
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


# ---------------------------------------------------------------------------------------------
# Load


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


#: Entries one run folder may hold (a run has six files; a folder with more is not a run).
_MAX_ENTRIES = 1000


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


def _read_json(path: Path, what: str):
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
    cfg = _read_json(path / CONFIG_FILE, "run config")
    if not isinstance(cfg, dict):
        raise ValueError(f"run config {path / CONFIG_FILE} must be a JSON object")
    version = cfg.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ValueError(
            f"run {path.name!r} has format_version {version!r}; this fairviz "
            f"({__version__}) reads {list(SUPPORTED_FORMAT_VERSIONS)}. Retrain it or use a matching fairviz."
        )
    for key in ("method", "alpha", "lambda_w", "seed", "bias_mode", "train", "model"):
        if key not in cfg:
            raise ValueError(f"run config {path / CONFIG_FILE} lacks {key!r}")
    for key in ("method", "bias_mode"):  # shown on pages: plain identifiers only, never markup
        if not isinstance(cfg[key], str) or not _WORD_OK.fullmatch(cfg[key]):
            raise ValueError(f"run config {path / CONFIG_FILE}: {key} must be a word such as 'ours' or 'label'")
    for key in ("alpha", "lambda_w", "seed"):
        if not _is_number(cfg[key]):
            raise ValueError(f"run config {path / CONFIG_FILE}: {key} must be a number")
    for key, kind in (("train", dict), ("model", dict), ("info", dict), ("name", str)):
        if cfg.get(key) is not None and not isinstance(cfg[key], kind):
            raise ValueError(f"run config {path / CONFIG_FILE}: {key} must be a JSON "
                             f"{'object' if kind is dict else 'string'}")
    return cfg


def _is_number(v, *, integer: bool = False) -> bool:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    return ok and not isinstance(v, bool) and (integer or math.isfinite(v))


_METRIC_WORDS = ("ci_method", "summary")


def check_metrics(metrics, where: str = METRICS_FILE) -> dict:
    """`metrics` if it has the shape pages read (ValueError otherwise): an object whose metrics
    (pcc, srcc, spdd, speo, spdd_floor, val_pcc, val_spdd) are a number, null, or an object of
    numbers/nulls (plus the words of `fairviz.uncertainty`: ``ci_method`` and ``summary`` may be
    strings), and whose counts (n, n_boot, random_state, best_epoch) are integers or null."""
    if not isinstance(metrics, dict):
        raise ValueError(f"{where} must be a JSON object")
    for key in _METRIC_KEYS:
        v = metrics.get(key)
        parts = [p for k, p in v.items() if k not in _METRIC_WORDS] if isinstance(v, dict) else [v]
        words = [v[k] for k in _METRIC_WORDS if k in v] if isinstance(v, dict) else []
        if not all(p is None or _is_number(p) for p in parts) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{where}: {key} must be a number or an object of numbers")
    for key in _COUNT_KEYS:
        v = metrics.get(key)
        if v is not None and not _is_number(v, integer=True):
            raise ValueError(f"{where}: {key} must be an integer")
    return metrics


def _read_safetensors(path: Path, what: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} {path.name} is not a valid safetensors file: {err}") from None


def _check_safetensors_header(path: Path, what: str) -> None:
    """Parse only the header (no tensor data): bad JSON, offsets outside the file, a truncated file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} {path.name} is not a valid safetensors file: {err}") from None


def load_run(path) -> Run:
    """Restore a saved run (weights, predictions, Z, metrics, history) without retraining.

    Raises ValueError with an actionable message for an incomplete folder (names the missing
    files), a pickle-bearing file, an unsupported ``format_version``, a malformed config, or
    weights whose keys/shapes do not match a network built from the stored model config.
    """
    import torch

    from fairviz.model.network import FairMultimodalNet, ModelConfig
    from fairviz.train import Run, TrainConfig

    path = check_run_folder(path)
    cfg = read_run_config(path)
    try:  # hostile values (1e400, "x", 5 for a list) fail as TypeError/OverflowError otherwise
        train_cfg = TrainConfig.from_dict(cfg["train"])
        model_cfg = ModelConfig.from_dict(cfg["model"])
    except (TypeError, OverflowError, AttributeError) as err:
        raise ValueError(f"run config {path / CONFIG_FILE} has a bad field: {err}") from None
    name = cfg.get("name") or path.name
    if not isinstance(name, str) or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"run config {path / CONFIG_FILE}: name {name!r} is not a run name (no paths)")
    for key in ("method", "alpha", "lambda_w", "seed", "bias_mode"):
        if cfg[key] != getattr(train_cfg, key):
            raise ValueError(
                f"run config {path.name!r}: top-level {key}={cfg[key]!r} disagrees with "
                f"train.{key}={getattr(train_cfg, key)!r}"
            )

    state = _read_safetensors(path / WEIGHTS_FILE, "weights file")
    try:  # on the meta device: only shapes, so a config asking for huge layers allocates nothing
        with torch.device("meta"):
            net = FairMultimodalNet(model_cfg)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise ValueError(f"run {path.name!r}: its model config does not build a network: {err}") from None
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        shape = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if extra:
            parts.append(f"unexpected {extra[:5]}")
        if shape:
            parts.append(
                "shape mismatch " + ", ".join(f"{k}: {got[k]} vs config {expected[k]}" for k in shape[:5])
            )
        raise ValueError(
            f"run {path.name!r}: the weights do not match its model config ({'; '.join(parts)})"
        )
    del net  # keys and shapes are checked; Run.model() builds the real network on demand

    preds = read_predictions(path)
    n_test = int((preds["split"] == "test").sum())
    z = _read_safetensors(path / Z_FILE, "Z file")
    if set(z) != {"z"}:
        raise ValueError(f"Z file of run {path.name!r} must hold one tensor 'z'; holds {sorted(z)}")
    z = z["z"].numpy()
    if z.ndim != 2 or z.shape != (n_test, model_cfg.d_z):
        raise ValueError(
            f"run {path.name!r}: Z has shape {z.shape}, expected ({n_test}, {model_cfg.d_z}) "
            "(test rows x d_z)"
        )
    metrics = check_metrics(_read_json(path / METRICS_FILE, "metrics file"), f"run {path.name!r}: {METRICS_FILE}")
    history = _read_json(path / HISTORY_FILE, "history file")
    if not isinstance(history, list):
        raise ValueError(f"run {path.name!r}: history.json must be a list")
    return Run(
        name=name,
        config=train_cfg,
        history=history,
        predictions=preds,
        z=z,
        metrics=metrics,
        state_dict=state,
        model_config=model_cfg,
        info=dict(cfg.get("info") or {}),
    )


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


# ---------------------------------------------------------------------------------------------
# List


@dataclass(frozen=True)
class RunInfo:
    """What `list_runs` knows about a run folder without loading its weights."""

    name: str
    path: Path
    method: str
    alpha: float
    lambda_w: float
    seed: int
    bias_mode: str
    metrics: dict = field(default_factory=dict)
    created: float = 0.0  # folder mtime (seconds since the epoch)


class RunList(list):
    """A list of RunInfo; `.skipped` holds (folder, reason) for folders that are not valid runs."""

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped: list[tuple[Path, str]] = list(skipped)


def run_info(path) -> RunInfo:
    """RunInfo of one folder (checks completeness, no pickles, version, the safetensors headers;
    does not load weights)."""
    path = check_run_folder(path)
    cfg = read_run_config(path)
    metrics = check_metrics(_read_json(path / METRICS_FILE, "metrics file"), f"run {path.name!r}: {METRICS_FILE}")
    for name, what in ((WEIGHTS_FILE, "weights file"), (Z_FILE, "Z file")):
        _check_safetensors_header(path / name, what)
    try:
        return RunInfo(
            name=path.name,
            path=path,
            method=str(cfg["method"]),
            alpha=float(cfg["alpha"]),
            lambda_w=float(cfg["lambda_w"]),
            seed=int(cfg["seed"]),
            bias_mode=str(cfg["bias_mode"]),
            metrics=metrics,
            created=path.stat().st_mtime,
        )
    except (TypeError, ValueError, OverflowError) as err:  # Overflow: "seed": 1e400
        raise ValueError(f"run config {path / CONFIG_FILE} has a bad field: {err}") from None


def list_runs(root=None) -> RunList:
    """Valid runs under `root` (default ``models_dir()``), sorted by name.

    Hidden folders (e.g. runs being written) are ignored; a folder that is not a valid run
    (including a link, which is not followed) is skipped and reported in the result's
    ``.skipped`` list as (path, reason).
    """
    root = Path(root) if root is not None else models_dir()
    if not root.is_dir():
        return RunList()
    infos, skipped = [], []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not (p.is_dir() or p.is_symlink()):
            continue
        try:
            infos.append(run_info(p))
        except (ValueError, OSError) as err:
            skipped.append((p, str(err)))
    return RunList(infos, skipped)
