"""Multi-process training support for `torchrun` (torch.distributed), used by `fairviz.train`.

Launched as `torchrun --nproc-per-node N -m fairviz train ...`, every process trains the same
model on its slice of each *global* batch (the batch one process would take with N× the batch
size) inside DistributedDataParallel: NCCL on GPUs, gloo on CPUs. Two things make the
N-process run equal to one process on the concatenated batch:

- every loss term (MSE, adversary cross-entropy, W1, MMD, mean gap) is computed on the *whole*
  batch's predictions, targets and groups, gathered by `gather(...)`, a differentiable
  all-gather whose backward sums the gradient over ranks (DDP then averages, which gives back
  exactly the single-process gradient);
- BatchNorm statistics are those of the global batch (`GlobalBatchNorm2d`; torch's
  SyncBatchNorm runs on GPUs only).

Dropout masks are drawn per process, so bit-equality with one process holds with dropout = 0.
Rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn

# The differentiable collectives of torch.distributed.nn are deprecated in favour of a private
# module; they are still the public, documented way, so their FutureWarning is noise here.
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\..*deprecated", category=FutureWarning)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: `rank` of `world_size` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    """True when the environment says this process is one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> DistContext:
    """Join the process group that torchrun describes in the environment (no-op when alone).

    `device` is the device this process trains on; CUDA devices use NCCL, CPUs use gloo.
    """
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """On a multi-GPU node each process takes the GPU matching its LOCAL_RANK."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shard(rows, ctx: DistContext):
    """This rank's contiguous slice of a global batch `rows` (sizes differ by at most one)."""
    if not ctx.enabled:
        return rows
    n = len(rows)
    start = n * ctx.rank // ctx.world_size
    stop = n * (ctx.rank + 1) // ctx.world_size
    return rows[start:stop]


def gather(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate `t` (n_local, ...) from every rank along dim 0, in rank order, keeping gradients.

    Ranks may hold different numbers of rows: tensors are padded to the largest and trimmed.
    """
    if not ctx.enabled:
        return t
    sizes = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], dtype=torch.long, device=t.device))
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)
    pad = longest - t.shape[0]
    padded = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))]) if pad else t
    parts = dist_fn.all_gather(padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose batch statistics cover every rank's rows (works with gloo on CPU).

    Same parameters, buffers and state-dict keys as nn.BatchNorm2d, so checkpoints are
    interchangeable; alone (no process group) it is exactly nn.BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, H, W)
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        c = x.shape[1]
        local = torch.cat(
            [
                x.sum(dim=(0, 2, 3)),
                (x * x).sum(dim=(0, 2, 3)),
                x.new_tensor([x.numel() / c]),
            ]
        )
        total = dist_fn.all_reduce(local)  # differentiable sum over ranks
        count = total[-1]
        mean = total[:c] / count
        var = total[c : 2 * c] / count - mean * mean  # biased, as BatchNorm normalises with
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * unbiased)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every nn.BatchNorm2d in `module` for a GlobalBatchNorm2d holding the same tensors."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            bn.load_state_dict(child.state_dict())
            bn.to(next(child.buffers()).device)
            setattr(module, name, bn)
        else:
            use_global_batchnorm(child)
    return module
