"""Reading run folders: `load_run` (the whole run, weights checked against the config),
`run_info` / `list_runs` (config and metrics only, no weights loaded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from fairviz.methods import WEIGHT_FIELDS
from fairviz.paths import models_dir
from fairviz.runs._folder import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    Z_FILE,
    check_run_folder,
    check_safetensors_header,
    read_json,
    read_predictions,
    read_run_config,
)
from fairviz.runs._metrics import RunMetrics, check_metrics

if TYPE_CHECKING:  # train imports torch; runs must load without it until a model is built
    from fairviz.train import Run


def _read_safetensors(path: Path, what: str) -> dict:
    from safetensors.torch import load_file  # noqa: PLC0415 - imports torch: only for a full load

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} {path.name} is not a valid safetensors file: {err}") from None


def _read_metrics(path: Path) -> dict:
    return check_metrics(read_json(path / METRICS_FILE, "metrics file"), f"run {path.name!r}: {METRICS_FILE}")


def _train_and_model_config(path: Path, cfg: dict):
    """(TrainConfig, ModelConfig, name) of a checked config.json; ValueError for a bad field, a
    name that is a path, or top-level fields that disagree with the train section."""
    from fairviz.model.network import ModelConfig  # noqa: PLC0415 - imports torch
    from fairviz.train import TrainConfig  # noqa: PLC0415 - imports torch

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
    return train_cfg, model_cfg, name


def _check_weights(path: Path, state: dict, model_cfg) -> None:
    """ValueError unless `state` has exactly the keys and shapes of a network built from `model_cfg`."""
    import torch  # noqa: PLC0415 - heavy, only needed to build the network

    from fairviz.model.network import FairMultimodalNet  # noqa: PLC0415 - imports torch

    try:  # on the meta device: only shapes, so a config asking for huge layers allocates nothing
        with torch.device("meta"):
            net = FairMultimodalNet(model_cfg)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise ValueError(f"run {path.name!r}: its model config does not build a network: {err}") from None
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected == got:
        return
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shape = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}")
    if extra:
        parts.append(f"unexpected {extra[:5]}")
    if shape:
        parts.append("shape mismatch " + ", ".join(f"{k}: {got[k]} vs config {expected[k]}" for k in shape[:5]))
    raise ValueError(f"run {path.name!r}: the weights do not match its model config ({'; '.join(parts)})")


def _read_z(path: Path, n_test: int, d_z: int):
    """The (n_test, d_z) fused code of the test rows."""
    z = _read_safetensors(path / Z_FILE, "Z file")
    if set(z) != {"z"}:
        raise ValueError(f"Z file of run {path.name!r} must hold one tensor 'z'; holds {sorted(z)}")
    z = z["z"].numpy()
    if z.ndim != 2 or z.shape != (n_test, d_z):
        raise ValueError(f"run {path.name!r}: Z has shape {z.shape}, expected ({n_test}, {d_z}) (test rows x d_z)")
    return z


def load_run(path) -> Run:
    """Restore a saved run (weights, predictions, Z, metrics, history) without retraining.

    Raises ValueError with an actionable message for an incomplete folder (names the missing
    files), a pickle-bearing file, an unsupported ``format_version``, a malformed config, or
    weights whose keys/shapes do not match a network built from the stored model config.
    """
    from fairviz.train import Run  # noqa: PLC0415 - imports torch: only a full load needs it

    path = check_run_folder(path)
    cfg = read_run_config(path)
    train_cfg, model_cfg, name = _train_and_model_config(path, cfg)
    state = _read_safetensors(path / WEIGHTS_FILE, "weights file")
    _check_weights(path, state, model_cfg)  # Run.model() builds the real network on demand
    preds = read_predictions(path)
    z = _read_z(path, int((preds["split"] == "test").sum()), model_cfg.d_z)
    metrics = _read_metrics(path)
    history = read_json(path / HISTORY_FILE, "history file")
    if not isinstance(history, list):
        raise ValueError(f"run {path.name!r}: history.json must be a list")
    return Run(name=name, config=train_cfg, history=history, predictions=preds, z=z, metrics=metrics,
               state_dict=state, model_config=model_cfg, info=dict(cfg.get("info") or {}))


@dataclass(frozen=True)
class RunInfo:
    """What `list_runs` knows about a run folder without loading its weights.

    ``metrics`` is the stored dict (metrics.json); `run_metrics` the same, typed.
    """

    name: str
    path: Path
    method: str
    alpha: float
    lambda_w: float
    seed: int
    bias_mode: str
    metrics: dict = field(default_factory=dict)
    created: float = 0.0  # folder mtime (seconds since the epoch)
    weight: float | None = None  # the method's own fairness weight (None: the method has none)

    @property
    def run_metrics(self) -> RunMetrics:
        return RunMetrics.from_dict(self.metrics)


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
    metrics = _read_metrics(path)
    for name, what in ((WEIGHTS_FILE, "weights file"), (Z_FILE, "Z file")):
        check_safetensors_header(path / name, what)
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
            weight=_own_weight(cfg),
        )
    except (TypeError, ValueError, OverflowError) as err:  # Overflow: "seed": 1e400
        raise ValueError(f"run config {path / CONFIG_FILE} has a bad field: {err}") from None


def _own_weight(cfg: dict) -> float | None:
    """The value of the run method's own weight field, None when it has none (or an older
    config does not store it)."""
    train = cfg["train"] if isinstance(cfg["train"], dict) else {}
    value = train.get(WEIGHT_FIELDS.get(cfg["method"], ""))
    return None if value is None else float(value)


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
