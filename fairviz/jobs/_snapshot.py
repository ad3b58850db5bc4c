"""What the app shows of a training job: its states and `JobSnapshot`, a consistent copy of its
progress at one moment; `default_run_name`, the base name of a run from its config."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL_STATES = frozenset({DONE, FAILED, CANCELLED})


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state at one moment (safe to read from any thread).

    ``epoch``/``epochs`` and ``step``/``steps`` come from the latest progress event of the run
    being trained; ``history`` holds one dict per finished epoch (``epoch``, ``losses``,
    ``val_pcc``, ``val_spdd``) of that run. While features are being prepared ``stage`` is
    ``"data"`` and ``data_done``/``data_total``/``data_what`` say how far. A sweep trains ``total_runs`` runs one after the
    other; ``run_index`` (0-based) says which one is running and ``results`` lists the saved
    ones: dicts with ``name``, ``path``, ``lambda_w`` and ``metrics``.
    """

    id: str
    kind: str
    label: str
    state: str
    stage: str | None = None
    data_done: int | None = None
    data_total: int | None = None
    data_what: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    losses: Mapping[str, float] = dataclasses.field(default_factory=dict)
    val_pcc: float | None = None
    val_spdd: float | None = None
    history: tuple[dict, ...] = ()
    run_index: int = 0
    total_runs: int = 1
    results: tuple[dict, ...] = ()
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def done(self) -> bool:
        """True once the job has ended (finished, failed or cancelled)."""
        return self.state in TERMINAL_STATES

    @property
    def run_name(self) -> str | None:
        """Name of the (last) saved run, or None."""
        return self.results[-1]["name"] if self.results else None

    @property
    def run_names(self) -> list[str]:
        return [r["name"] for r in self.results]

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] over the whole job (all runs of a sweep)."""
        if self.state == DONE:
            return 1.0
        within = 0.0
        if self.epochs:
            done_epochs = max(0, (self.epoch or 0) - 1)
            step_part = (self.step / self.steps) if self.steps and self.step is not None else 0.0
            if self.history and self.history[-1].get("epoch") == self.epoch:
                done_epochs, step_part = (self.epoch or 0), 0.0
            within = min(1.0, (done_epochs + step_part) / self.epochs)
        return min(1.0, (self.run_index + within) / max(self.total_runs, 1))

    @property
    def elapsed(self) -> float:
        """Seconds since the job started running (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started


def default_run_name(config: Any) -> str:
    """A readable base name for a run from its config.

    Uses the config's own ``name`` if set, else its ``default_name()`` (`fairviz.train.TrainConfig`
    gives ``<method>-a<alpha>-<bias_mode>[-lw<λ_W>]-s<seed>``), else builds
    ``<method>-a<alpha>[-lw<λ_W>]-s<seed>`` from whichever of those fields exist.
    """
    own = getattr(config, "name", None)
    if isinstance(own, str) and own.strip():
        return own
    if callable(getattr(config, "default_name", None)):
        return str(config.default_name())
    method = str(getattr(config, "method", "run"))
    parts = [method]
    alpha = getattr(config, "alpha", None)
    if alpha is not None:
        parts.append(f"a{alpha:g}" if isinstance(alpha, (int, float)) else f"a{alpha}")
    lw = getattr(config, "lambda_w", None)
    if lw is not None and method == "ours":
        parts.append(f"lw{lw:g}")
    seed = getattr(config, "seed", None)
    if seed is not None:
        parts.append(f"s{seed}")
    return "-".join(parts)
