"""Several saves / trainings with the same output name at once, in threads and in processes:
every one finishes, none corrupts another. With ``overwrite=False`` exactly one gets the name and
the others a clear FileExistsError; through the app's `JobRegistry` (unique names, retried when
another process takes a name first) every run gets its own folder; with ``overwrite=True`` every
writer succeeds and the folder holds one complete run (the last swap).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import pytest

from fairviz import runs as R
from fairviz.jobs import DONE, JobRegistry
from fairviz.train import TrainConfig
from tests.reliability._helpers import TINY_MODEL, make_run
from tests.reliability._workers import fake_train, forkserver_context, plain_save, registry_jobs

N_THREADS = 8
N_PROCS = 4


def _assert_whole(path: Path, seed: int) -> None:
    run = R.load_run(path)
    ref = make_run(seed=seed)
    np.testing.assert_array_equal(run.z, ref.z)
    np.testing.assert_array_equal(run.predictions["score"].to_numpy(), ref.predictions["score"].to_numpy())
    assert run.config.seed == seed


def _seed_of(path: Path) -> int:
    return int(R.read_run_config(path)["seed"])


def _visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def _hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def _threads(fn, n):
    barrier = threading.Barrier(n)
    out: queue.Queue = queue.Queue()

    def work(i):
        barrier.wait()
        try:
            out.put((i, "ok", fn(i)))
        except Exception as err:  # noqa: BLE001
            out.put((i, type(err).__name__, str(err)))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return [out.get_nowait() for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# threads


def test_threads_same_name_one_wins_others_refused(tmp_path):
    root = tmp_path / "models"
    runs = [make_run(seed=i, name="same") for i in range(N_THREADS)]
    results = _threads(lambda i: R.save_run(runs[i], root / "same"), N_THREADS)
    ok = [r for r in results if r[1] == "ok"]
    refused = [r for r in results if r[1] != "ok"]
    assert len(ok) == 1
    assert all(kind == "FileExistsError" and "already exists" in msg for _, kind, msg in refused)
    assert _visible(root) == ["same"] and _hidden(root) == []  # refused saves clean up
    _assert_whole(root / "same", ok[0][0])


def test_threads_same_name_overwrite_all_finish(tmp_path):
    root = tmp_path / "models"
    R.save_run(make_run(seed=0, name="same"), root / "same")
    runs = [make_run(seed=i, name="same") for i in range(N_THREADS)]
    results = _threads(lambda i: R.save_run(runs[i], root / "same", overwrite=True), N_THREADS)
    assert all(kind == "ok" for _, kind, _ in results), results
    assert _visible(root) == ["same"] and _hidden(root) == []
    _assert_whole(root / "same", _seed_of(root / "same"))


def test_threads_unique_names_every_run_kept(tmp_path):
    root = tmp_path / "models"

    def save(i):
        for _ in range(50):
            name = R.unique_run_name(root, "same")
            try:
                return R.save_run(make_run(seed=i, name=name), root / name)
            except FileExistsError:
                continue
        raise RuntimeError("no free name")

    results = _threads(save, N_THREADS)
    assert all(kind == "ok" for _, kind, _ in results), results
    assert len(_visible(root)) == N_THREADS and _hidden(root) == []
    for i, _, path in results:
        _assert_whole(Path(path), i)


def test_job_registry_same_name_in_threads(tmp_path):
    """The app's path: several jobs named "same" train and save at once; each keeps its run."""
    root = tmp_path / "models"
    reg = JobRegistry(models_root=root, max_concurrent=4, train_fn=fake_train)
    ids = [reg.start(TrainConfig(seed=s, model=TINY_MODEL), name="same") for s in range(6)]
    snaps = [reg.wait(j, timeout=60) for j in ids]
    assert [s.state for s in snaps] == [DONE] * 6, [s.error for s in snaps]
    names = [s.results[0]["name"] for s in snaps]
    assert len(set(names)) == 6 and "same" in names
    for s, name in zip(range(6), names):
        _assert_whole(root / name, s)
    assert [i.name for i in R.list_runs(root)] == sorted(names)


# ---------------------------------------------------------------------------------------------
# processes


@pytest.mark.parametrize("overwrite", [False, True])
def test_processes_same_name(tmp_path, overwrite):
    ctx = forkserver_context()
    root = tmp_path / "models"
    root.mkdir()
    if overwrite:
        R.save_run(make_run(seed=0, name="same"), root / "same")
    barrier, results = ctx.Barrier(N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=plain_save, args=(str(root), s, barrier, results, overwrite)) for s in range(N_PROCS)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert _visible(root) == ["same"] and _hidden(root) == []
    if overwrite:
        assert all(kind == "ok" for _, kind, _ in out), out
    else:
        assert sum(kind == "ok" for _, kind, _ in out) == 1, out
        assert all(kind == "FileExistsError" and "already exists" in msg for _, kind, msg in out if kind != "ok")
    _assert_whole(root / "same", _seed_of(root / "same"))


def test_two_server_processes_training_the_same_name(tmp_path):
    """Two app servers (each its own JobRegistry) share one models folder; 3 jobs each, all named
    "same", start at the same moment: all six finish, six distinct complete runs."""
    ctx = forkserver_context()
    root = tmp_path / "models"
    root.mkdir()
    barrier, results = ctx.Barrier(2), ctx.Queue()
    seeds = [[0, 1, 2], [3, 4, 5]]
    procs = [ctx.Process(target=registry_jobs, args=(str(root), s, barrier, results)) for s in seeds]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in range(6)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(state == DONE for _, state, _, _ in out), out
    names = {s: names[0] for s, _, _, names in out}
    assert len(set(names.values())) == 6
    for s, name in names.items():
        _assert_whole(root / name, s)
    assert len(R.list_runs(root)) == 6 and _hidden(root) == []


@pytest.mark.parametrize("n", [2, 4])
def test_cli_trainings_with_the_same_out_at_once(tmp_path, n):
    """`python -m fairviz train --out models/same` started n times at once (separate processes,
    training replaced by a fast fake): every one exits 0 and names its folder; n complete runs."""
    import json

    from tests.reliability._workers import cli_train

    ctx = forkserver_context()
    root = tmp_path / "models"
    root.mkdir()
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=cli_train, args=(str(root), s, barrier, results)) for s in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(rc == 0 for _, rc, _, _ in out), out
    paths = {s: Path(json.loads(stdout)["path"]) for s, _, stdout, _ in out}
    assert len(set(paths.values())) == n and _hidden(root) == []
    for s, path in paths.items():
        _assert_whole(path, s)
