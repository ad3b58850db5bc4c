"""Writing a run folder: every file staged in a temporary sibling and renamed into place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file as save_numpy

from fairviz import __version__
from fairviz.atomic import staged_dir, usual_mode
from fairviz.jsonsafe import dumps
from fairviz.paths import models_dir
from fairviz.postprocess import write_repair
from fairviz.runs._folder import (
    CONFIG_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    METRICS_FILE,
    PREDICTION_COLUMNS,
    PREDICTIONS_FILE,
    WEIGHTS_FILE,
    Z_FILE,
    check_replaceable,
)
from fairviz.runs._metrics import RunMetrics
from fairviz.runs._names import check_folder_name, sanitize_run_name, unique_run_name


def _json_text(obj) -> str:
    return dumps(obj, indent=2, sort_keys=False) + "\n"


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


def _checked_parts(run):
    """(predictions, z, state) of `run`, checked against each other before anything is written."""
    preds = run.predictions
    missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
    if missing:
        raise ValueError(f"run.predictions lacks columns {missing}")
    n_test = int((preds["split"] == "test").sum())
    z = np.ascontiguousarray(np.asarray(run.z, dtype=np.float32))
    if z.ndim != 2 or z.shape[0] != n_test:
        raise ValueError(f"run.z must be (n_test={n_test}, d_z); got shape {z.shape}")
    state = {k: v.detach().cpu().contiguous() for k, v in run.state_dict.items()}
    return preds.loc[:, list(PREDICTION_COLUMNS)], z, state


def save_run(run, path=None, *, overwrite: bool = False) -> Path:
    """Write `run` to the folder `path` (default: ``models_dir()/run.name``) atomically.

    Everything is written into a temporary sibling folder that is renamed into place at the end,
    so a reader (or `list_runs`) sees the old run or the new one, never a half-written one. An
    existing folder is an error (FileExistsError) unless `overwrite`; use `unique_run_name` for a
    free name. Returns the folder.
    """
    from safetensors.torch import save_file as save_torch  # noqa: PLC0415 - imports torch: only when saving

    path = Path(path) if path is not None else models_dir() / sanitize_run_name(run.name)
    check_folder_name(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True or choose another name")
    if overwrite:
        check_replaceable(path)
    preds, z, state = _checked_parts(run)
    metrics = RunMetrics.from_dict(run.metrics, "run.metrics").to_dict()

    with staged_dir(path, replace=overwrite) as tmp:
        save_torch(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "fairviz": __version__})
        save_numpy({"z": z}, str(tmp / Z_FILE))
        for name in (WEIGHTS_FILE, Z_FILE):  # safetensors writes 0600; like any saved file instead
            usual_mode(tmp / name)
        (tmp / CONFIG_FILE).write_text(_json_text(run_config_dict(run)), encoding="utf-8")
        (tmp / METRICS_FILE).write_text(_json_text(metrics), encoding="utf-8")
        (tmp / HISTORY_FILE).write_text(_json_text(run.history), encoding="utf-8")
        # %.17g: every float64 round-trips exactly, so metrics recomputed from the CSV match
        preds.to_csv(tmp / PREDICTIONS_FILE, index=False, float_format="%.17g", lineterminator="\n")
        write_repair(tmp, preds)
    return path


def save_unique(run, root, base: str, *, save=None, unique=None, sanitize=None, tries: int = 20) -> Path:
    """Save `run` under ``root/<free name>`` (`unique_run_name` of `base`) and set ``run.name`` to
    it; if another process takes the name between the choice and the write, choose again (up to
    `tries` times; RuntimeError then). `save(run, path)`, `unique(root, base)` and
    `sanitize(name)` default to `save_run`, `unique_run_name` and `sanitize_run_name`. Returns
    the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    save, unique = save or save_run, unique or unique_run_name
    base = (sanitize or sanitize_run_name)(base)
    last_err: Exception | None = None
    for _ in range(tries):
        path = root / unique(root, base)
        try:
            _set_run_name(run, path.name)
            out = save(run, path)
            return Path(out) if out is not None else path
        except FileExistsError as err:  # another process won the race
            last_err = err
    raise RuntimeError(f"could not find a free run name for {base!r} in {root}: {last_err}")


def _set_run_name(run, name: str) -> None:
    """Keep the Run's own `name` in step with its folder, when it has one and it is settable."""
    if hasattr(run, "name"):
        try:
            run.name = name
        except (AttributeError, dataclasses.FrozenInstanceError):
            pass
