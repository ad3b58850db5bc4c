"""Background training jobs (`fairviz.jobs`): fakes injected, so these run in milliseconds.

One real tiny training run (marked slow) checks the wiring to `fairviz.train` / `fairviz.runs`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from fairviz import experiments
from fairviz.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRegistry, default_run_name
from fairviz.train import TrainConfig, TrainingCancelled


@dataclasses.dataclass
class FakeConfig:
    method: str = "ours"
    alpha: float = 4.0
    lambda_w: float = 1.0
    seed: int = 0
    epochs: int = 3


@dataclasses.dataclass
class FakeRun:
    name: str
    config: FakeConfig
    metrics: dict


FakeCancelled = TrainingCancelled  # what the real train raises when its cancel event is set


def fake_save(run, path):
    path = Path(path)
    path.mkdir(parents=False, exist_ok=False)  # never overwrite, like save_run
    (path / "config.json").write_text(json.dumps(dataclasses.asdict(run.config)))
    return path


def fake_unique(root, base):
    root = Path(root)
    name, k = base, 2
    while (root / name).exists():
        name, k = f"{base}-{k}", k + 1
    return name


def make_train(*, gate: threading.Event | None = None, step_delay: float = 0.0, fail: bool = False):
    """A fake `train`: reports epoch events, honours cancel, optionally waits on `gate` first."""

    def train(config, progress=None, cancel=None):
        if gate is not None:
            while not gate.wait(0.01):
                if cancel is not None and cancel.is_set():
                    raise FakeCancelled("cancelled")
        for epoch in range(1, config.epochs + 1):
            if cancel is not None and cancel.is_set():
                raise FakeCancelled("cancelled")
            if progress:
                progress({"stage": "step", "epoch": epoch, "epochs": config.epochs, "step": 1, "steps": 2,
                          "losses": {"mse": 1.0 / epoch}})
                progress({"stage": "epoch", "epoch": epoch, "epochs": config.epochs,
                          "losses": {"mse": 1.0 / epoch, "wasserstein": 0.1 / epoch},
                          "val_pcc": 0.3 + 0.01 * epoch, "val_spdd": 0.1 / epoch})
            if step_delay:
                time.sleep(step_delay)
        if fail:
            raise RuntimeError("loss became NaN")
        return FakeRun(name="", config=config, metrics={"spdd": {"value": 0.05 * config.lambda_w}})

    return train


def registry(tmp_path, **kw):
    return JobRegistry(models_root=tmp_path, save_fn=fake_save, unique_name_fn=fake_unique,
                       sanitize_fn=lambda s: s, **kw)


def test_default_run_name():
    assert default_run_name(FakeConfig()) == "ours-a4-lw1-s0"
    assert default_run_name(FakeConfig(method="l2")) == "l2-a4-s0"
    assert default_run_name(FakeConfig(method="vanilla", alpha=2.5, seed=3)) == "vanilla-a2.5-s3"


def test_job_runs_reports_progress_and_saves(tmp_path):
    reg = registry(tmp_path, train_fn=make_train())
    job = reg.start(FakeConfig())
    snap = reg.wait(job, timeout=5)
    assert snap.state == DONE and snap.done
    assert snap.epoch == 3 and snap.epochs == 3
    assert [h["epoch"] for h in snap.history] == [1, 2, 3]
    assert snap.history[-1]["losses"]["wasserstein"] == pytest.approx(0.1 / 3)
    assert snap.val_pcc == pytest.approx(0.33)
    assert snap.run_name == "ours-a4-lw1-s0"
    assert (tmp_path / "ours-a4-lw1-s0" / "config.json").exists()
    assert snap.fraction == 1.0
    assert snap.results[0]["metrics"]["spdd"]["value"] == pytest.approx(0.05)


def test_same_config_twice_never_overwrites(tmp_path):
    reg = registry(tmp_path, train_fn=make_train(), max_concurrent=2)
    a, b = reg.start(FakeConfig()), reg.start(FakeConfig())
    names = {reg.wait(a, 5).run_name, reg.wait(b, 5).run_name}
    assert names == {"ours-a4-lw1-s0", "ours-a4-lw1-s0-2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_save_race_with_another_process_retries(tmp_path):
    # another process creates the chosen folder between naming and saving
    calls = []

    def racing_save(run, path):
        calls.append(Path(path).name)
        if len(calls) == 1:
            Path(path).mkdir()
            raise FileExistsError(f"{path} already exists")
        return fake_save(run, path)

    reg = JobRegistry(models_root=tmp_path, train_fn=make_train(), save_fn=racing_save,
                      unique_name_fn=fake_unique, sanitize_fn=lambda s: s)
    snap = reg.wait(reg.start(FakeConfig()), 5)
    assert snap.state == DONE
    assert calls == ["ours-a4-lw1-s0", "ours-a4-lw1-s0-2"]
    assert snap.run_name == "ours-a4-lw1-s0-2"


def test_cancel_running_job(tmp_path):
    gate = threading.Event()
    reg = registry(tmp_path, train_fn=make_train(gate=gate))
    job = reg.start(FakeConfig())
    deadline = time.time() + 5
    while reg.status(job).state != RUNNING and time.time() < deadline:
        time.sleep(0.005)
    assert reg.cancel(job) is True
    snap = reg.wait(job, 5)
    assert snap.state == CANCELLED
    assert snap.run_name is None and list(tmp_path.iterdir()) == []
    assert reg.cancel(job) is False  # already over


def test_at_most_n_concurrent_and_queued_job_is_cancellable(tmp_path):
    gate = threading.Event()
    reg = registry(tmp_path, train_fn=make_train(gate=gate), max_concurrent=1)
    first = reg.start(FakeConfig(seed=1))
    second = reg.start(FakeConfig(seed=2))
    third = reg.start(FakeConfig(seed=3))
    time.sleep(0.15)
    states = [reg.status(j).state for j in (first, second, third)]
    assert states.count(RUNNING) == 1 and states.count(QUEUED) == 2
    assert reg.active_count() == 3
    reg.cancel(third)
    assert reg.wait(third, 5).state == CANCELLED
    gate.set()
    assert reg.wait(first, 5).state == DONE
    assert reg.wait(second, 5).state == DONE
    assert reg.active_count() == 0
    assert [s.id for s in reg.jobs()] == [first, second, third]


def test_failure_is_reported_not_raised(tmp_path):
    reg = registry(tmp_path, train_fn=make_train(fail=True))
    snap = reg.wait(reg.start(FakeConfig()), 5)
    assert snap.state == FAILED
    assert "loss became NaN" in snap.error
    assert list(tmp_path.iterdir()) == []


def test_unknown_job_id_is_a_clear_error(tmp_path):
    reg = registry(tmp_path, train_fn=make_train())
    with pytest.raises(ValueError, match="no training job"):
        reg.status("nope")
    with pytest.raises(ValueError, match="max_concurrent"):
        JobRegistry(max_concurrent=0)


def test_sweep_saves_one_run_per_lambda(tmp_path):
    reg = registry(tmp_path, train_fn=make_train())
    job = reg.start_sweep(FakeConfig(), [0, 0.3, 3])
    snap = reg.wait(job, 5)
    assert snap.state == DONE and snap.kind == "sweep" and snap.total_runs == 3
    assert snap.run_names == ["ours-a4-lw0-s0", "ours-a4-lw0.3-s0", "ours-a4-lw3-s0"]
    assert [r["lambda_w"] for r in snap.results] == [0, 0.3, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(snap.run_names)


def test_sweep_cancel_keeps_finished_runs(tmp_path):
    started = []

    def train(config, progress=None, cancel=None):
        started.append(config.lambda_w)
        if len(started) == 2:
            while not cancel.is_set():
                time.sleep(0.005)
            raise FakeCancelled()
        return FakeRun("", config, {})

    reg = registry(tmp_path, train_fn=train)
    job = reg.start_sweep(FakeConfig(), [0.1, 1, 10], name="mysweep")
    deadline = time.time() + 5
    while len(started) < 2 and time.time() < deadline:
        time.sleep(0.005)
    reg.cancel(job)
    snap = reg.wait(job, 5)
    assert snap.state == CANCELLED
    assert snap.run_names == ["mysweep-lw0.1"]
    assert snap.run_index == 1


def test_sweep_rejects_bad_values(tmp_path):
    reg = registry(tmp_path, train_fn=make_train())
    with pytest.raises(ValueError, match="at least one"):
        reg.start_sweep(FakeConfig(), [])
    with pytest.raises(ValueError, match="≥ 0"):
        reg.start_sweep(FakeConfig(), [1, -1])


def test_progress_fraction_moves(tmp_path):
    seen = []
    gate = threading.Event()

    def train(config, progress=None, cancel=None):
        progress({"stage": "epoch", "epoch": 1, "epochs": 4, "losses": {"mse": 1.0}})
        seen.append(True)
        gate.wait(5)
        return FakeRun("", config, {})

    reg = registry(tmp_path, train_fn=train)
    job = reg.start(FakeConfig())
    deadline = time.time() + 5
    while not seen and time.time() < deadline:
        time.sleep(0.005)
    assert reg.status(job).fraction == pytest.approx(0.25)
    gate.set()
    assert reg.wait(job, 5).fraction == 1.0


def test_shutdown_cancels_everything(tmp_path):
    gate = threading.Event()
    reg = registry(tmp_path, train_fn=make_train(gate=gate), max_concurrent=2)
    jobs = [reg.start(FakeConfig(seed=i)) for i in range(3)]
    reg.shutdown(timeout=5)
    assert all(reg.status(j).state == CANCELLED for j in jobs)


@pytest.mark.slow
def test_real_tiny_training_job(tmp_path):
    train_mod = pytest.importorskip("fairviz.train")
    pytest.importorskip("fairviz.runs")
    from fairviz.runs import load_run

    cfg = _tiny_config(train_mod)
    reg = JobRegistry(models_root=tmp_path)
    job = reg.start(cfg, name="tiny")
    snap = reg.wait(job, timeout=600)
    assert snap.state == DONE, snap.error
    assert snap.history, "the real train() reported no epoch"
    run = load_run(tmp_path / snap.run_name)
    assert len(run.predictions) > 0


def _tiny_config(train_mod):
    """The smallest TrainConfig the model dev's train() accepts (fields filtered by name)."""
    fields = {f.name for f in dataclasses.fields(train_mod.TrainConfig)}
    wanted = dict(method="ours", alpha=4.0, lambda_w=1.0, epochs=1, seed=0, n_samples=64, batch_size=16)
    return train_mod.TrainConfig(**{k: v for k, v in wanted.items() if k in fields})


@pytest.mark.slow
def test_app_job_and_cli_give_the_same_numbers(tmp_path):
    """The same config trained as an app job (its own process) and by `python -m fairviz train`
    gives byte-identical predictions and metrics."""
    import subprocess
    import sys

    train_mod = pytest.importorskip("fairviz.train")
    cfg = _tiny_config(train_mod)
    reg = JobRegistry(models_root=tmp_path / "app")
    assert reg.isolation == "process"
    snap = reg.wait(reg.start(cfg, name="tiny"), timeout=600)
    assert snap.state == DONE, snap.error
    cli = tmp_path / "cli"
    args = [sys.executable, "-m", "fairviz", "train", "--method", cfg.method, "--alpha", str(cfg.alpha),
            "--lambda-w", str(cfg.lambda_w), "--epochs", str(cfg.epochs), "--seed", str(cfg.seed),
            "--n-samples", str(cfg.n_samples), "--batch-size", str(cfg.batch_size), "--out", str(cli), "--no-progress"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    app = tmp_path / "app" / snap.run_name
    assert (app / "predictions.csv").read_bytes() == (cli / "predictions.csv").read_bytes()
    assert json.loads((app / "metrics.json").read_text()) == json.loads((cli / "metrics.json").read_text())


def test_sweep_sets_each_methods_own_weight_and_refines(tmp_path):
    from fairviz.train import TrainConfig

    def train(config, progress=None, cancel=None):
        w = config.lambda_mmd
        # a cliff between 0.3 and 1: PCC and spread drop at once
        pcc, std = (0.7, 0.1) if w < 0.5 else (0.3, 0.0)
        return FakeRun("", config, {"pcc": {"value": pcc}, "spdd": {"value": 0.01}, "score_std": std})

    reg = registry(tmp_path, train_fn=train)
    snap = reg.wait(reg.start_sweep(TrainConfig(method="mmd"), [0.1, 0.3, 1.0], adaptive=3), 10)
    assert snap.state == DONE and snap.total_runs == 6
    weights = [r["weight"] for r in snap.results]
    assert weights[:3] == [0.1, 0.3, 1.0]
    # the refinement brackets the cliff: every new value lies in (0.3, 1)
    assert weights[3:] and all(0.3 < w < 1.0 for w in weights[3:])
    assert all(r["lambda_w"] == TrainConfig().lambda_w for r in snap.results)  # λ_W untouched
    with pytest.raises(ValueError, match="no weight to sweep"):
        reg.start_sweep(TrainConfig(method="vanilla"), [0.1])


def test_worker_without_a_config_reports_an_error(tmp_path):
    import subprocess
    import sys

    from fairviz.job_worker import PREFIX

    done = subprocess.run([sys.executable, "-m", "fairviz.job_worker", str(tmp_path), "x"], input="",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    msg = json.loads(done.stdout.strip()[len(PREFIX):])
    assert "no config on stdin" in msg["error"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_process_job_reports_progress_and_cancels(tmp_path):
    train_mod = pytest.importorskip("fairviz.train")
    cfg = dataclasses.replace(_tiny_config(train_mod), epochs=200)
    reg = JobRegistry(models_root=tmp_path)
    job = reg.start(cfg, name="long")
    deadline = time.time() + 300
    while time.time() < deadline and not reg.status(job).step:
        time.sleep(0.2)
    snap = reg.status(job)
    assert snap.state == RUNNING and snap.step, "no progress from the worker process"
    assert reg.cancel(job)
    snap = reg.wait(job, timeout=60)
    assert snap.state == CANCELLED and snap.results == ()
    assert not any(p.name.startswith("long") for p in tmp_path.iterdir())


def test_an_exception_only_named_like_the_cancellation_is_a_failure(tmp_path):
    """Cancellation is recognised by the exception's type, not by its class name."""
    Impostor = type("TrainingCancelled", (Exception,), {})

    def train(config, progress=None, cancel=None):
        raise Impostor("not a cancellation")

    reg = registry(tmp_path, train_fn=train)
    snap = reg.wait(reg.start(FakeConfig()), 10)
    assert snap.state == FAILED and "not a cancellation" in snap.error


def test_app_and_cli_sweeps_train_the_same_configs(tmp_path, monkeypatch):
    """`JobRegistry.start_sweep` (the app) and `experiments.sweep` (the CLI) share one sweep
    definition: for mmd both set lambda_mmd to each value and leave λ_W at its default."""
    seen = {"app": [], "cli": []}

    def fake_train(who):
        def train(config, progress=None, cancel=None, features=None):
            seen[who].append(config)
            return FakeRun(config.default_name(), config, {"pcc": {"value": 0.5}, "spdd": {"value": 0.01}})
        return train

    values = [1.0, 0.1, 0.3]
    base = TrainConfig(method="mmd", alpha=2.0, epochs=1)
    reg = registry(tmp_path, train_fn=fake_train("app"))
    assert reg.wait(reg.start_sweep(base, values), 10).state == DONE
    monkeypatch.setattr(experiments, "train", fake_train("cli"))
    monkeypatch.setattr(experiments, "run_record", lambda run: {"name": run.name, "weight": run.config.lambda_mmd,
                                                               "pcc": 0.5, "srcc": 0.5, "spdd": 0.01, "speo": 0.01,
                                                               "spdd_floor": 0.0})
    experiments.sweep("mmd", 2.0, values, features=object(), epochs=1)
    assert seen["app"] == seen["cli"]
    assert [c.lambda_mmd for c in seen["app"]] == [0.1, 0.3, 1.0]
    assert all(c.lambda_w == TrainConfig().lambda_w and c.method == "mmd" for c in seen["app"])
