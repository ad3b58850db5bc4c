"""torchrun with 2 CPU processes (gloo) equals one process with the doubled batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from fairviz.distributed import GlobalBatchNorm2d
from fairviz.runs import list_runs, load_run

WORKER = Path(__file__).with_name("worker.py")
pytestmark = pytest.mark.slow


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def _env() -> dict:
    env = dict(os.environ)
    env.pop("WORLD_SIZE", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(cmd, tmp_path) -> None:
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# (method, options): "k4" = 4 groups of different sizes (k-group terms, 4-way adversary, and for
# fairoffset its 3 offsets, which live outside DDP and stay in step only through the global batch);
# "pooled" = the pooled form of the k-group W1 term (default: the SPDD form); "sample" = sampling
# bias, where fairoffset's term reads sharded batches of the whole training split
CASES = ("ours", "mmd", "vanilla", "ours k4", "mmd k4", "l2 k4", "arl", "fairoffset", "fairoffset k4 pooled",
         "fairoffset sample", "fairoffset k4 sample")


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    """case -> (one process with batch 32, two processes with batch 16 each), run on first use so
    that selecting one case (-k) trains that case only."""
    tmp = tmp_path_factory.mktemp("ddp")
    results = {}

    def get(case: str):
        if case not in results:
            args = case.split()
            single, multi = tmp / f"single-{'-'.join(args)}.json", tmp / f"multi-{'-'.join(args)}.json"
            _run([sys.executable, str(WORKER), str(single), "32", *args], tmp)
            _run([*_torchrun(), "--standalone", "--nproc-per-node", "2", str(WORKER), str(multi), "16", *args], tmp)
            results[case] = (json.loads(single.read_text()), json.loads(multi.read_text()))
        return results[case]

    return get


@pytest.mark.parametrize("method", CASES)
def test_two_processes_equal_one_with_doubled_batch(both_runs, method):
    single, multi = both_runs(method)
    assert single["world_size"] == 1 and multi["world_size"] == 2
    assert len(single["steps"]) == len(multi["steps"]) > 0
    # float32 sums in another order: MMD, a difference of kernel means, amplifies that to ~1e-4
    for a, b in zip(single["steps"], multi["steps"]):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-6), key
    for key, value in single["metrics"].items():
        assert multi["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    np.testing.assert_allclose(multi["scores"], single["scores"], rtol=1e-4, atol=1e-5)
    if method.startswith("fairoffset"):
        offsets = np.atleast_1d(single["group_offset"])
        assert offsets.shape == ((3,) if "k4" in method else (1,)) and np.all(offsets != 0)
        np.testing.assert_allclose(np.atleast_1d(multi["group_offset"]), offsets, rtol=1e-4, atol=1e-6)


def test_cli_train_under_torchrun_saves_once(tmp_path):
    """`python -m fairviz train` runs unchanged under torchrun; rank 0 alone writes the run."""
    out = tmp_path / "models" / "ddp-run"
    cmd = [*_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "fairviz", "train",
           "--method", "ours", "--n-samples", "120", "--epochs", "1", "--batch-size", "16",
           "--n-boot", "10", "--no-progress", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("saved to") == 1
    assert [r.name for r in list_runs(out.parent)] == ["ddp-run"]
    assert load_run(out).info["world_size"] == 2


def _weights(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.numel(), dtype=torch.float32).view_as(x).sin()


def _global_bn_worker(rank: int, world: int, init_file: str, x: torch.Tensor, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    bn = GlobalBatchNorm2d(3)
    part = x.chunk(world)[rank].clone().requires_grad_(True)
    y = bn(part)
    (y * _weights(x).chunk(world)[rank]).sum().backward()
    torch.save({"y": y.detach(), "grad": part.grad, "mean": bn.running_mean, "var": bn.running_var,
                "wgrad": bn.weight.grad, "bgrad": bn.bias.grad}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_global_batchnorm_equals_batchnorm_on_the_whole_batch(tmp_path):
    """Two ranks with half the rows each: same output, input gradients and running stats as
    nn.BatchNorm2d on all rows; the ranks' parameter gradients add up to the single one."""
    x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    world = 2
    ctx = torch.multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_global_bn_worker, args=(r, world, str(tmp_path / "init"), x, str(tmp_path / "o")))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    parts = [torch.load(f"{tmp_path / 'o'}.{r}", weights_only=True) for r in range(world)]

    bn = torch.nn.BatchNorm2d(3)
    xx = x.clone().requires_grad_(True)
    y = bn(xx)
    (y * _weights(x)).sum().backward()
    close = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), **close)
    torch.testing.assert_close(torch.cat([p["grad"] for p in parts]), xx.grad, **close)
    torch.testing.assert_close(sum(p["wgrad"] for p in parts), bn.weight.grad, **close)
    torch.testing.assert_close(sum(p["bgrad"] for p in parts), bn.bias.grad, **close)
    for p in parts:
        torch.testing.assert_close(p["mean"], bn.running_mean, **close)
        torch.testing.assert_close(p["var"], bn.running_var, **close)
