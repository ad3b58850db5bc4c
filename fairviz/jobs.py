"""Background training jobs for the app: start, watch, cancel — without blocking any page.

A Streamlit script is stopped and rerun on every widget change, so a training loop inside a
page restarts whenever the user touches anything. Instead the app keeps one `JobRegistry` (in
``st.cache_resource``, shared by all browser sessions) and stores only a job id in the session.
Each run of a job trains in its own process (`fairviz.job_worker`, so one user's training does
not slow every other session of the server, and the numbers equal the CLI's); a thread here
relays its progress events into a thread-safe snapshot the page polls, and the job's ``cancel``
event stops the worker at its next step. A finished run is saved with `fairviz.runs.save_run` under a name
made unique with `fairviz.runs.unique_run_name`, so two sessions training the same config get
two folders, never one overwritten.

Nothing here imports Streamlit. The train and save functions can be injected (tests use fakes).

Example::

    reg = JobRegistry(max_concurrent=1)
    job = reg.start(TrainConfig(method="ours", alpha=4))
    reg.status(job).state          # "queued" | "running" | "done" | "failed" | "cancelled"
    reg.cancel(job)
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fairviz import job_worker

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL_STATES = frozenset({DONE, FAILED, CANCELLED})

__all__ = [
    "JobRegistry",
    "JobSnapshot",
    "default_run_name",
    "QUEUED",
    "RUNNING",
    "DONE",
    "FAILED",
    "CANCELLED",
    "TERMINAL_STATES",
]


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


@dataclasses.dataclass
class _Job:
    id: str
    kind: str
    label: str
    configs: list
    names: list[str | None]
    cancel: threading.Event
    state: str = QUEUED
    progress: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    run_index: int = 0
    results: list = dataclasses.field(default_factory=list)
    error: str | None = None
    refine: tuple | None = None  # (weight field, base name, extra runs left) of an adaptive sweep
    created: float = dataclasses.field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    thread: threading.Thread | None = None


class JobRegistry:
    """Thread-based registry of training jobs, safe to share between Streamlit sessions.

    Parameters
    ----------
    models_root:
        Where finished runs are saved (default: `fairviz.paths.models_dir()` at save time).
    max_concurrent:
        At most this many jobs train at once; later ones wait in state ``"queued"`` (and can
        be cancelled while waiting). On a 2-core machine 1 is sensible.
    train_fn:
        ``train(config, progress=None, cancel=None) -> Run``; default `fairviz.train.train`.
    save_fn:
        ``save(run, path) -> Path``; default `fairviz.runs.save_run` (refuses to overwrite).
    unique_name_fn, sanitize_fn:
        default `fairviz.runs.unique_run_name` and `fairviz.runs.sanitize_run_name`.
    isolation:
        ``"process"`` (default with the real trainer): each run trains in its own process
        (`fairviz.job_worker`), so a training never slows the server's other sessions through the
        GIL and gives the numbers the CLI gives; cancel stops it at the next step (killed after
        `fairviz.job_worker.CANCEL_GRACE_S` s). ``"thread"`` (default when `train_fn` is injected): in a thread here.
    """

    def __init__(
        self,
        *,
        models_root: str | Path | None = None,
        max_concurrent: int = 1,
        train_fn: Callable | None = None,
        save_fn: Callable | None = None,
        unique_name_fn: Callable[[Path, str], str] | None = None,
        sanitize_fn: Callable[[str], str] | None = None,
        isolation: str | None = None,
    ) -> None:
        if int(max_concurrent) < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        isolation = isolation or ("thread" if train_fn is not None or save_fn is not None else "process")
        if isolation not in ("process", "thread"):
            raise ValueError(f"isolation must be 'process' or 'thread'; got {isolation!r}")
        if isolation == "process" and (train_fn is not None or save_fn is not None):
            raise ValueError("injected train/save functions run in a thread: pass isolation='thread'")
        self.isolation = isolation
        self.max_concurrent = int(max_concurrent)
        self._models_root = Path(models_root) if models_root is not None else None
        self._train_fn = train_fn
        self._save_fn = save_fn
        self._unique_name_fn = unique_name_fn
        self._sanitize_fn = sanitize_fn
        self._lock = threading.Lock()  # guards self._jobs and every _Job's mutable fields
        self._save_lock = threading.Lock()  # one save at a time: choose name + write folder
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        self._jobs: dict[str, _Job] = {}

    # -- public API -----------------------------------------------------------------------------

    @property
    def models_root(self) -> Path:
        if self._models_root is not None:
            return self._models_root
        from fairviz.paths import models_dir

        return models_dir()

    def start(self, config: Any, *, name: str | None = None) -> str:
        """Start training ``config`` in the background; returns the job id at once.

        ``name`` is the base run name (default `default_run_name(config)`); the saved folder
        gets a unique variant of it if the name is taken. A name that cannot be a folder name
        (``!!!``, ``tmp-x``, ``...``) is a ValueError now, before any training.
        """
        if name is not None:
            (self._sanitize_fn or _default_sanitize)(name)
        return self._launch("train", [config], [name], label=name or default_run_name(config))

    def start_sweep(self, config: Any, lambda_ws: Sequence[float], *, name: str | None = None,
                    adaptive: int = 0) -> str:
        """Train one run per value of the method's own weight (λ_W for ours, ``lambda_l2`` for l2,
        ``lambda_mmd`` for mmd: ``dataclasses.replace(config, <field>=v)``), one after the other,
        saving each; returns the job id. ``name`` is a base name, suffixed ``-lw<v>``. With
        ``adaptive`` = k, up to k more runs follow where PCC, SPDD or the score spread jump
        between neighbouring values (`fairviz.pipelines.refine_points`).
        """
        if name is not None:
            (self._sanitize_fn or _default_sanitize)(name)  # refuse a bad name before any training
        values = [float(v) for v in lambda_ws]
        if not values:
            raise ValueError("a sweep needs at least one weight value")
        bad = [v for v in values if not (v >= 0 and v == v and v != float("inf"))]
        if bad:
            raise ValueError(f"weight values must be finite and ≥ 0, got {bad}")
        if int(adaptive) < 0:
            raise ValueError(f"adaptive must be ≥ 0 (extra runs), got {adaptive}")
        if not dataclasses.is_dataclass(config):
            raise ValueError("start_sweep needs a dataclass config (fairviz.train.TrainConfig)")
        field = _weight_field(config)
        configs = [_with_weight(config, field, v) for v in values]
        names = [f"{name}-lw{v:g}" if name else None for v in values]
        label = name or f"sweep {getattr(config, 'method', '')} {field} ∈ {{{', '.join(f'{v:g}' for v in values)}}}"
        return self._launch("sweep", configs, names, label=label,
                            refine=(field, name, int(adaptive)))

    def status(self, job_id: str) -> JobSnapshot:
        """A snapshot of the job; ValueError for an unknown id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ValueError(f"no training job with id {job_id!r} (the server may have restarted)")
            return self._snapshot(job)

    def jobs(self) -> list[JobSnapshot]:
        """Snapshots of all jobs, oldest first."""
        with self._lock:
            return [self._snapshot(j) for j in sorted(self._jobs.values(), key=lambda j: j.created)]

    def active_count(self) -> int:
        """Number of jobs queued or running."""
        with self._lock:
            return sum(j.state not in TERMINAL_STATES for j in self._jobs.values())

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop; returns False if it had already ended. The job reaches state
        ``"cancelled"`` at the training function's next check (at most one step later)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ValueError(f"no training job with id {job_id!r}")
            if job.state in TERMINAL_STATES:
                return False
            job.cancel.set()
            return True

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        """Block until the job ends (or ``timeout`` seconds pass); returns its snapshot."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ValueError(f"no training job with id {job_id!r}")
        if job.thread is not None:
            job.thread.join(timeout)
        return self.status(job_id)

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Cancel every unfinished job and wait up to ``timeout`` seconds for each."""
        with self._lock:
            jobs = list(self._jobs.values())
            for j in jobs:
                if j.state not in TERMINAL_STATES:
                    j.cancel.set()
        for j in jobs:
            if j.thread is not None:
                j.thread.join(timeout)

    # -- internals --------------------------------------------------------------------------------

    def _launch(self, kind: str, configs: list, names: list, *, label: str, refine: tuple | None = None) -> str:
        job = _Job(id=uuid.uuid4().hex[:12], kind=kind, label=label, configs=configs, names=names,
                   cancel=threading.Event(), refine=refine)
        thread = threading.Thread(target=self._run, args=(job,), name=f"fairviz-job-{job.id}", daemon=True)
        job.thread = thread
        with self._lock:
            self._jobs[job.id] = job
        thread.start()
        return job.id

    def _snapshot(self, job: _Job) -> JobSnapshot:
        p = job.progress
        return JobSnapshot(
            id=job.id, kind=job.kind, label=job.label, state=job.state,
            stage=p.get("stage"), data_done=p.get("done"), data_total=p.get("total"), data_what=p.get("what"),
            epoch=p.get("epoch"), epochs=p.get("epochs"), step=p.get("step"), steps=p.get("steps"),
            losses=dict(p.get("losses") or {}), val_pcc=p.get("val_pcc"), val_spdd=p.get("val_spdd"),
            history=tuple(dict(h) for h in job.history), run_index=job.run_index,
            total_runs=len(job.configs) + (job.refine[2] if job.refine else 0), results=tuple(dict(r) for r in job.results), error=job.error,
            created=job.created, started=job.started, finished=job.finished,
        )

    def _set(self, job: _Job, **fields) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(job, k, v)

    def _on_progress(self, job: _Job, event: Mapping[str, Any]) -> None:
        event = dict(event)
        with self._lock:
            job.progress.update({k: v for k, v in event.items() if v is not None})
            if event.get("stage") == "epoch":
                entry = {
                    "epoch": event.get("epoch"),
                    "losses": dict(event.get("losses") or {}),
                    "val_pcc": event.get("val_pcc"),
                    "val_spdd": event.get("val_spdd"),
                }
                if job.history and job.history[-1]["epoch"] == entry["epoch"]:
                    job.history[-1] = entry
                else:
                    job.history.append(entry)

    def _run(self, job: _Job) -> None:
        # wait for a free slot, staying cancellable while queued
        while not self._slots.acquire(timeout=0.05):
            if job.cancel.is_set():
                self._set(job, state=CANCELLED, finished=time.time())
                return
        try:
            if job.cancel.is_set():
                self._set(job, state=CANCELLED, finished=time.time())
                return
            self._set(job, state=RUNNING, started=time.time())
            i = 0
            while i < len(job.configs) or self._refine(job):
                config, name = job.configs[i], job.names[i]
                with self._lock:
                    job.run_index = i
                    job.progress = {}
                    job.history = []
                saved = self._train_and_save(job, config, name or default_run_name(config))
                with self._lock:
                    job.results.append({
                        **saved,
                        "lambda_w": getattr(config, "lambda_w", None),
                        "weight": getattr(config, job.refine[0] if job.refine else "lambda_w", None),
                    })
                i += 1
            self._set(job, state=DONE, finished=time.time())
        except BaseException as exc:  # noqa: BLE001 - a job must never die silently
            if job.cancel.is_set() or _is_cancellation(exc):
                self._set(job, state=CANCELLED, finished=time.time())
            else:
                msg = str(exc) or type(exc).__name__
                self._set(job, state=FAILED, error=f"{type(exc).__name__}: {msg}", finished=time.time())
        finally:
            self._slots.release()

    def _refine(self, job: _Job) -> bool:
        """Queue the next adaptive runs of a sweep (where its curve jumps); False when none."""
        if job.refine is None or job.refine[2] <= 0 or job.cancel.is_set():
            return False
        import pandas as pd

        from fairviz.pipelines import refine_points

        field, base, left = job.refine
        with self._lock:
            rows = [{"weight": r["weight"], **{k: _value(r["metrics"].get(k)) for k in ("pcc", "spdd", "score_std")}}
                    for r in job.results]
        new = refine_points(pd.DataFrame(rows, columns=["weight", "pcc", "spdd", "score_std"]))[:left]
        with self._lock:
            job.refine = (field, base, left - len(new) if new else 0)
            for v in new:
                job.configs.append(_with_weight(job.configs[0], field, v))
                job.names.append(f"{base}-lw{v:g}" if base else None)
        return bool(new)

    def _save(self, run: Any, base: str) -> Path:
        """Save under a name not yet taken (one save at a time in this process)."""
        with self._save_lock:
            return save_unique(run, self.models_root, base, save=self._save_fn, unique=self._unique_name_fn,
                               sanitize=self._sanitize_fn)

    def _train_and_save(self, job: _Job, config: Any, base: str) -> dict:
        """Train `config` and save the run; returns ``{"name", "path", "metrics"}``.

        In process isolation the training runs in `fairviz.job_worker` (its own interpreter);
        otherwise (injected train functions, e.g. test fakes) in this thread.
        """
        if self.isolation == "thread":
            train = self._train_fn or _default_train
            run = train(config, progress=lambda ev: self._on_progress(job, ev), cancel=job.cancel)
            if job.cancel.is_set():
                raise _Cancelled()
            saved = self._save(run, base)
            return {"name": saved.name, "path": str(saved), "metrics": dict(getattr(run, "metrics", None) or {})}
        try:
            return job_worker.run_in_process(config, self.models_root, base, job.cancel,
                                             lambda ev: self._on_progress(job, ev))
        except job_worker.WorkerCancelled:
            raise _Cancelled() from None


def save_unique(run: Any, root, base: str, *, save=None, unique=None, sanitize=None) -> Path:
    """Save `run` under ``root/<free name>`` (`unique_run_name` of `base`); if another process takes
    the name between the choice and the write, choose again (up to 20 times). Returns the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    unique = unique or _default_unique_name
    save = save or _default_save
    base = (sanitize or _default_sanitize)(base)
    last_err: Exception | None = None
    for _ in range(20):
        name = unique(root, base)
        path = root / name
        try:
            _set_run_name(run, name)
            out = save(run, path)
            return Path(out) if out is not None else path
        except FileExistsError as err:  # another server process won the race
            last_err = err
    raise RuntimeError(f"could not find a free run name for {base!r} in {root}: {last_err}")


class _Cancelled(Exception):
    pass


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, _Cancelled) or type(exc).__name__ == "TrainingCancelled"


def _value(metric: Any) -> float:
    """A stored metric (``{"value": x, ...}`` or a bare number) as a float; NaN when absent."""
    if isinstance(metric, dict):
        metric = metric.get("value")
    try:
        return float(metric)
    except (TypeError, ValueError):
        return float("nan")


def _weight_field(config: Any) -> str:
    """The config field holding its method's own weight (λ_W for ours, λ for l2 / mmd)."""
    method = getattr(config, "method", None)
    try:
        from fairviz.train import METHODS
    except ImportError:  # pragma: no cover - torch missing
        METHODS = {}
    spec = METHODS.get(method)
    if spec is None:
        return "lambda_w"  # a config of another trainer (tests use fakes): its field is lambda_w
    if spec.weight_field is None:
        raise ValueError(f"method {method!r} has no weight to sweep; choose one of "
                         f"{[m for m, s in METHODS.items() if s.weight_field]}")
    return spec.weight_field


def _with_weight(config: Any, field: str, value: float) -> Any:
    """`config` with its weight `field` set to `value` and no fixed run name."""
    overrides = {"name": None} if any(f.name == "name" for f in dataclasses.fields(config)) else {}
    return dataclasses.replace(config, **{field: float(value)}, **overrides)


def _set_run_name(run: Any, name: str) -> None:
    """Keep the Run's own `name` in step with its folder, when it has one and it is settable."""
    if hasattr(run, "name"):
        try:
            run.name = name
        except (AttributeError, dataclasses.FrozenInstanceError):
            pass


def _default_train(config, progress=None, cancel=None):
    from fairviz.train import train

    return train(config, progress=progress, cancel=cancel)


def _default_save(run, path):
    from fairviz.runs import save_run

    return save_run(run, path)


def _default_unique_name(root: Path, base: str) -> str:
    from fairviz.runs import unique_run_name

    return unique_run_name(root, base)


def _default_sanitize(name: str) -> str:
    from fairviz.runs import sanitize_run_name

    return sanitize_run_name(name)
