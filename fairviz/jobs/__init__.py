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
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fairviz import job_worker
from fairviz.jobs._snapshot import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    JobSnapshot,
    default_run_name,
)
from fairviz.paths import models_dir
from fairviz.runs import RunMetrics, sanitize_run_name, save_unique
from fairviz.sweeps import REFINE_COLUMNS, SweepPlan, sweep_run_name

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
    "save_unique",
]


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
    plan: SweepPlan | None = None  # of a sweep
    base_name: str | None = None  # of a sweep's runs (None: each config's default name)
    left: int = 0  # adaptive runs of a sweep not yet queued
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
        return models_dir()

    def start(self, config: Any, *, name: str | None = None) -> str:
        """Start training ``config`` in the background; returns the job id at once.

        ``name`` is the base run name (default `default_run_name(config)`); the saved folder
        gets a unique variant of it if the name is taken. A name that cannot be a folder name
        (``!!!``, ``tmp-x``, ``...``) is a ValueError now, before any training.
        """
        if name is not None:
            (self._sanitize_fn or sanitize_run_name)(name)
        return self._launch("train", [config], [name], label=name or default_run_name(config))

    def start_sweep(self, config: Any, lambda_ws: Sequence[float], *, name: str | None = None,
                    adaptive: int = 0) -> str:
        """Train one run per value of the method's own weight (`fairviz.sweeps.SweepPlan`, the
        definition `fairviz.experiments.sweep` uses too: λ_W for ours, ``lambda_l2`` for l2,
        ``lambda_mmd`` for mmd, ``lambda_sw`` for fairoffset), one after the other, saving each;
        returns the job id. ``name`` is a base name, suffixed ``-lw<v>``. With ``adaptive`` = k,
        up to k more runs follow where PCC, SPDD or the score spread jump between neighbouring
        values (`fairviz.pipelines.refine_points`).
        """
        if name is not None:
            (self._sanitize_fn or sanitize_run_name)(name)  # refuse a bad name before any training
        if not dataclasses.is_dataclass(config):
            raise ValueError("start_sweep needs a dataclass config (fairviz.train.TrainConfig)")
        plan = SweepPlan.of(getattr(config, "method", None), lambda_ws, adaptive)
        configs = [plan.config(config, v) for v in plan.values]
        names = [sweep_run_name(name, v) if name else None for v in plan.values]
        label = name or f"sweep {plan.method} {plan.field} ∈ {{{', '.join(f'{v:g}' for v in plan.values)}}}"
        return self._launch("sweep", configs, names, label=label, plan=plan, base_name=name)

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

    def _launch(self, kind: str, configs: list, names: list, *, label: str, plan: SweepPlan | None = None,
                base_name: str | None = None) -> str:
        job = _Job(id=uuid.uuid4().hex[:12], kind=kind, label=label, configs=configs, names=names,
                   cancel=threading.Event(), plan=plan, base_name=base_name, left=plan.adaptive if plan else 0)
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
            total_runs=len(job.configs) + job.left, results=tuple(dict(r) for r in job.results), error=job.error,
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
                        "weight": getattr(config, job.plan.field if job.plan else "lambda_w", None),
                    })
                i += 1
            self._set(job, state=DONE, finished=time.time())
        except BaseException as exc:  # noqa: BLE001 - a job must never die silently
            if job.cancel.is_set() or is_cancellation(exc):
                self._set(job, state=CANCELLED, finished=time.time())
            else:
                msg = str(exc) or type(exc).__name__
                self._set(job, state=FAILED, error=f"{type(exc).__name__}: {msg}", finished=time.time())
        finally:
            self._slots.release()

    def _refine(self, job: _Job) -> bool:
        """Queue the next adaptive runs of a sweep (where its curve jumps); False when none."""
        if job.plan is None or job.left <= 0 or job.cancel.is_set():
            return False
        with self._lock:
            rows = [{"weight": r["weight"], **{k: RunMetrics.from_dict(r["metrics"]).get(k) for k in REFINE_COLUMNS[1:]}}
                    for r in job.results]
        new = job.plan.refine(pd.DataFrame(rows, columns=list(REFINE_COLUMNS)), job.left)
        with self._lock:
            job.left = job.left - len(new) if new else 0
            for v in new:
                job.configs.append(job.plan.config(job.configs[0], v))
                job.names.append(sweep_run_name(job.base_name, v) if job.base_name else None)
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
                raise JobCancelled()
            saved = self._save(run, base)
            return {"name": saved.name, "path": str(saved), "metrics": dict(getattr(run, "metrics", None) or {})}
        try:
            return job_worker.run_in_process(config, self.models_root, base, job.cancel,
                                             lambda ev: self._on_progress(job, ev))
        except job_worker.WorkerCancelled:
            raise JobCancelled() from None


class JobCancelled(Exception):
    """A run of a job stopped because the job was cancelled."""


def is_cancellation(exc: BaseException) -> bool:
    """True for the exceptions that mean "cancelled", not "failed": `JobCancelled`, the worker's
    `fairviz.job_worker.WorkerCancelled` and `fairviz.train.TrainingCancelled` (looked up only
    when fairviz.train is loaded: an exception of that type cannot exist before)."""
    train = sys.modules.get("fairviz.train")
    kinds = (JobCancelled, job_worker.WorkerCancelled) + ((train.TrainingCancelled,) if train else ())
    return isinstance(exc, kinds)


def _default_train(config, progress=None, cancel=None):
    from fairviz.train import train  # noqa: PLC0415 - imports torch: only the thread isolation trains here

    return train(config, progress=progress, cancel=cancel)
