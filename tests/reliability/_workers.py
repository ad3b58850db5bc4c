"""Functions run in child processes (multiprocessing "forkserver": torch is imported once in the
server, so each child starts in milliseconds). Importable by name, hence a module of their own."""

from __future__ import annotations

import time
from pathlib import Path

PRELOAD = ["fairviz.runs", "fairviz.train", "fairviz.jobs", "tests.reliability._helpers", "tests.reliability._workers"]


def forkserver_context():
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def save_loop(root: str, mode: str, ready, max_saves: int = 10_000) -> None:
    """Save runs forever (until SIGKILL): ``mode`` "overwrite" rewrites ``root/victim`` each time,
    "unique" saves under a fresh ``fresh``, ``fresh-2``, ... name. Each run's ``metrics.version``
    is the save counter and its seed ``version % 3`` (so its content is checkable)."""
    from fairviz import runs as R
    from tests.reliability._helpers import make_run

    runs = [make_run(seed=s, name="victim") for s in range(3)]
    start = 0
    victim = Path(root) / "victim"
    if mode == "overwrite" and victim.exists():
        start = int(R.read_run_config(victim)["info"]["version"]) + 1
    ready.set()
    for k in range(start, start + max_saves):
        run = runs[k % 3]
        run.metrics = {**run.metrics, "version": k}
        run.info = {**run.info, "version": k}
        if mode == "overwrite":
            R.save_run(run, victim, overwrite=True)
        else:
            run.name = R.unique_run_name(root, "fresh")
            R.save_run(run, Path(root) / run.name)


def plain_save(root: str, seed: int, barrier, results, overwrite: bool) -> None:
    """Wait for the others, then save one run as ``root/same``; report ("ok"|error type, message)."""
    from fairviz import runs as R
    from tests.reliability._helpers import make_run

    run = make_run(seed=seed, name="same")
    barrier.wait()
    try:
        R.save_run(run, Path(root) / "same", overwrite=overwrite)
        results.put((seed, "ok", ""))
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put((seed, type(err).__name__, str(err)))


def fake_train(config, progress=None, cancel=None):
    from tests.reliability._helpers import make_run

    time.sleep(0.01)
    return make_run(seed=int(config.seed), name="same")


def registry_jobs(root: str, seeds: list, barrier, results) -> None:
    """A server process of its own: a JobRegistry training (fake) and saving runs named "same"."""
    from fairviz.jobs import JobRegistry
    from fairviz.train import TrainConfig
    from tests.reliability._helpers import TINY_MODEL

    reg = JobRegistry(models_root=root, max_concurrent=len(seeds), train_fn=fake_train)
    barrier.wait()
    ids = [reg.start(TrainConfig(seed=s, model=TINY_MODEL), name="same") for s in seeds]
    for s, job in zip(seeds, ids):
        snap = reg.wait(job, timeout=60)
        results.put((s, snap.state, snap.error, [r["name"] for r in snap.results]))


def killed_after_first_rename(root: str, ready) -> None:
    """Overwrite "victim", SIGKILLing itself right after the first rename/swap of the commit."""
    import os
    import signal

    from fairviz import atomic
    from fairviz import runs as R
    from tests.reliability._helpers import make_run

    real_exchange, real_rename = atomic._exchange, os.rename

    def exchange(a, b):
        ok = real_exchange(a, b)
        if ok:
            os.kill(os.getpid(), signal.SIGKILL)
        return ok

    def rename(a, b):
        real_rename(a, b)
        if Path(b).name.startswith(f"{atomic.TMP_PREFIX}old-"):
            os.kill(os.getpid(), signal.SIGKILL)

    atomic._exchange = exchange
    atomic.os.rename = rename
    run = make_run(seed=1, name="victim")
    run.metrics = {**run.metrics, "version": 1}
    run.info = {**run.info, "version": 1}
    ready.set()
    R.save_run(run, Path(root) / "victim", overwrite=True)


def cli_train(root: str, seed: int, barrier, results) -> None:
    """``python -m fairviz train --out root/same`` in this process, with a fast fake `train`."""
    import contextlib
    import io

    import fairviz.train
    from fairviz.cli import main

    def quick_train(cfg, progress=None, cancel=None):
        from tests.reliability._helpers import make_run

        time.sleep(0.3)  # every process is past the "already exists" check before anyone saves
        return make_run(seed=int(cfg.seed), name=cfg.name or "same")

    fairviz.train.train = quick_train
    barrier.wait()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["train", "--out", str(Path(root) / "same"), "--seed", str(seed), "--no-progress", "--json"])
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        rc = f"{type(exc).__name__}: {exc}"
    results.put((seed, rc, out.getvalue(), err.getvalue()))
