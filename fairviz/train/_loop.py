"""The training loop: `fit` is one flat loop over epochs and steps that calls the named pieces
below (set-up, one optimisation step with its DDP gathers, validation, epoch selection, the
target-SPDD weight, progress and cancel)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fairviz import distributed, kgroups
from fairviz.data import loader
from fairviz.model.heads import grl_lambda
from fairviz.model.network import FairMultimodalNet, ModelConfig
from fairviz.train._config import TrainConfig
from fairviz.train._data import PreparedData, _batches, _pool_batches, balanced_oversample
from fairviz.train._evaluate import Validation, _BestEpoch, validate
from fairviz.train._methods import METHODS, LossInputs, Method, loss_terms
from fairviz.train._result import Run, build_run
from fairviz.train._target import TargetWeight, _val_spdd


class TrainingCancelled(RuntimeError):
    """Raised by `train` when its `cancel` event is set; nothing is returned or saved."""


def fit(
    cfg: TrainConfig,
    data: PreparedData,
    progress: Callable[[dict], Any] | None = None,
    cancel=None,
) -> Run:
    """Train on already prepared data (what `train` does after loading features)."""
    method = METHODS[cfg.method]
    device = distributed.local_device(resolve_device(cfg.device))
    ctx = distributed.setup(device)
    _seed_everything(cfg.seed)
    t_start = time.perf_counter()
    net, model = _build_model(cfg, data, method, ctx, device)
    opt, offset = _optimizer(cfg, net, method, device)
    rows = _TrainRows.of(cfg, data, method, ctx)
    steps_per_epoch = len(rows.batches(cfg, 0))
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    sched = _cosine_schedule(opt, cfg, total_steps)
    weight = TargetWeight(cfg, method, steps_per_epoch)
    keeper = _BestEpoch(cfg.target_spdd)
    history: list[dict] = []
    step_global = 0
    for epoch in range(cfg.epochs):
        net.train()
        t_epoch = time.perf_counter()
        tally = _EpochTally()
        n_steps, steps = rows.epoch(cfg, epoch, data, ctx, device)
        for step, (pos, fair_pos, inputs) in enumerate(steps):
            _check_cancel(cancel, epoch, step)
            y_local = rows.y[pos].to(device)
            lambd = grl_lambda(step_global / total_steps, cfg.gamma)
            out = _forward(model, net, method, inputs, y_local, lambd)
            batch, fair = rows.gather(ctx, out, pos, fair_pos, y_local, device)
            loss, mse, terms = _loss(weight.cfg, batch, fair, offset, epoch)
            _optimise(opt, sched, loss)
            step_global += 1
            if weight.due(step, n_steps):
                weight.update(_val_spdd(net, data, device))
                net.train()
            losses = tally.add(loss, mse, terms, fair, method.needs_s)
            _emit(progress, _event("step", cfg, epoch, step + 1, n_steps, losses))
        val = validate(net, data, device, cfg)
        grl = grl_lambda(min(1.0, step_global / total_steps), cfg.gamma)
        rec = _epoch_record(epoch, tally, n_steps, grl, val, time.perf_counter() - t_epoch, offset, weight)
        history.append(rec)
        keeper.offer(val.criterion, val.spdd, epoch + 1, lambda: _cpu_state(net))
        weight.update(val.spdd)
        epoch_losses = {k: rec[k] for k in tally.sums}
        _emit(progress, _event("epoch", cfg, epoch, n_steps, n_steps, epoch_losses, val_pcc=val.pcc, val_spdd=val.spdd))

    net.load_state_dict(keeper.state)
    train_seconds = time.perf_counter() - t_start
    run = build_run(cfg, net, net.cfg, data, device, history, keeper.epoch)
    run.info.update(keeper.info(history, group_offset=offset is not None))
    run.info.update(train_seconds=train_seconds, steps_per_epoch=steps_per_epoch, device=str(device),
                    world_size=ctx.world_size, rank=ctx.rank)
    return run


# ---------------------------------------------------------------------------------------------
# set-up


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available; use device='cpu'")
    return dev


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _build_model(cfg: TrainConfig, data: PreparedData, method: Method, ctx, device: torch.device):
    """(the network on `device`, the module to call in training: the network or its DDP wrapper).

    The audio encoder is normalised by the MFCC statistics of the training rows.
    """
    mcfg = ModelConfig.from_dict(
        {**dict(cfg.model), "frame_encoder": cfg.frame_encoder,
         "n_mfcc": int(data.mfcc.shape[-1]), "text_dim": int(data.text.shape[-1]),
         "n_groups": int(data.group.max()) + 1, "adversary_label_input": method.adversary_sees_label}
    )
    net = FairMultimodalNet(mcfg)
    mf = data.mfcc[torch.as_tensor(data.train_idx)].reshape(-1, data.mfcc.shape[-1])
    net.audio.set_normalization(mf.mean(0), mf.std(0))
    net.to(device)
    return net, _wrap_for_ranks(net, ctx, device, find_unused=not method.uses_adversary)


def _wrap_for_ranks(net: FairMultimodalNet, ctx, device: torch.device, *, find_unused: bool) -> nn.Module:
    """The module to call in training: `net` alone, or `net` inside DistributedDataParallel with
    BatchNorm over the global batch when torchrun started several processes."""
    if not ctx.enabled:
        return net
    distributed.use_global_batchnorm(net)
    device_ids = [device.index] if device.type == "cuda" else None
    # methods without the adversary leave its parameters without gradients
    return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)


def _optimizer(cfg: TrainConfig, net: FairMultimodalNet, method: Method, device: torch.device):
    """(Adam over encoders + regressor and the adversary, the group offset b or None)."""
    groups = [
        {"params": net.encoder_parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": list(net.adversary.parameters()), "lr": cfg.adv_lr or cfg.lr},
    ]
    # the group offset b (score units) lives outside the network: it is never part of the model
    offset = kgroups.new_offset(net.cfg.n_groups, device) if method.group_offset else None
    if offset is not None:
        groups.append({"params": [offset], "lr": cfg.lr})
    return torch.optim.Adam(groups), offset


def _cosine_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """Cosine decay from lr to lr_final_ratio * lr over the whole budget (every param group)."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda step: cfg.lr_final_ratio
        + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)),
    )


@dataclass
class _TrainRows:
    """The training rows as the loop reads them, and the rows its fairness terms read."""

    rows: np.ndarray  # (n_train,) indices into the data
    y: torch.Tensor  # (n_train,) float32 training targets (Y~ in label-bias mode)
    visible: np.ndarray  # (n_train,) the groups training may see: UNKNOWN (-1) where S is hidden
    s: torch.Tensor  # `visible` as int64
    pool: np.ndarray  # training positions each epoch draws from (with repeats for balancing)
    global_batch: int  # cfg.batch_size x world size
    # (n_pool,) indices into the data of every training-split row, labelled or not, and their
    # groups; None when the fairness terms read the labelled batch itself
    fair_rows: np.ndarray | None = None
    fair_s: torch.Tensor | None = None
    n_groups: int = 2

    @classmethod
    def of(cls, cfg: TrainConfig, data: PreparedData, method: Method, ctx) -> _TrainRows:
        train_groups = data.group[data.train_idx]
        y = torch.as_tensor(data.train_label, dtype=torch.float32)
        visible = kgroups.visible_groups(train_groups, cfg.s_fraction, cfg.seed, method.needs_s)
        if method.balance_training_rows:
            pool = balanced_oversample(data.train_label, train_groups, cfg.balance_bins, seed=cfg.seed)
        else:
            pool = np.arange(len(data.train_idx))
        s = torch.as_tensor(visible, dtype=torch.long)
        fair_rows = fair_s = None
        # only when the pool holds rows the labelled set does not: otherwise the labelled batch
        # already is a batch of the pool, and training stays exactly what it was
        if cfg.pool_fairness() and data.unlabelled_pool and _fairness_active(cfg, method):
            fair_rows = np.asarray(data.pool_idx, dtype=np.int64)
            fair_s = torch.as_tensor(data.group[fair_rows], dtype=torch.long)
        n_groups = int(data.group.max()) + 1
        return cls(data.train_idx, y, visible, s, pool, cfg.batch_size * ctx.world_size, fair_rows, fair_s, n_groups)

    def batches(self, cfg: TrainConfig, epoch: int) -> list[np.ndarray]:
        """The global batches of `epoch` (positions into the training rows)."""
        return _batches(self.visible, self.pool, len(self.rows), cfg, epoch, self.global_batch)

    def epoch(self, cfg: TrainConfig, epoch: int, data: PreparedData, ctx, device):
        """(steps in the epoch, iterator of (this process's positions into the training rows, its
        positions into the pool or None, its model inputs) per step).

        With a pool, each step's inputs are this process's labelled rows followed by its share of
        a group-stratified pool batch of the same global size, so one forward pass (one BatchNorm
        batch) serves both."""
        batches = self.batches(cfg, epoch)
        shards = [distributed.shard(pos, ctx) for pos in batches]  # this process's rows of each batch
        if self.fair_rows is None:
            fair_shards = [None] * len(shards)
            row_batches = [self.rows[p] for p in shards]
        else:
            fair_groups = self.fair_s.numpy()
            fair_batches = _pool_batches(fair_groups, len(batches), cfg, epoch, self.global_batch)
            fair_shards = [distributed.shard(pos, ctx) for pos in fair_batches]
            row_batches = [np.concatenate([self.rows[p], self.fair_rows[f]]) for p, f in zip(shards, fair_shards)]
        inputs = loader.iter_batches(data.video, data.mfcc, data.text, row_batches, device)
        return len(batches), zip(shards, fair_shards, inputs)

    def gather(self, ctx, out, pos: np.ndarray, fair_pos: np.ndarray | None, y_local, device):
        """(the labelled batch the MSE reads, the batch the fairness terms read) from the forward
        pass `out` = (scores, Z, adversary logits) of this process's inputs, each gathered over
        the processes; the same LossInputs twice without a pool."""
        score, z, adv = out
        n = len(pos)
        cut = (lambda t: t) if fair_pos is None else (lambda t: None if t is None else t[:n])
        batch = _gather_batch(ctx, cut(score), cut(z), cut(adv), y_local, self.s[pos].to(device), self.n_groups)
        if fair_pos is None:
            return batch, batch
        rest = (None if t is None else t[n:] for t in (score, z, adv))
        return batch, _gather_batch(ctx, *rest, None, self.fair_s[fair_pos].to(device), self.n_groups)


def _fairness_active(cfg: TrainConfig, method: Method) -> bool:
    """False when no fairness term can act (a zero weight, no adversary, no target to raise it):
    then no pool batch is drawn, and e.g. fairoffset at weight 0 is the offset alone."""
    weight = cfg.method_weight()
    return method.uses_adversary or cfg.target_spdd is not None or (weight is not None and weight != 0)


# ---------------------------------------------------------------------------------------------
# one optimisation step


def _forward(model: nn.Module, net: FairMultimodalNet, method: Method, inputs, y_local, lambd: float):
    """(scores (B,), fused codes Z (B, d_z), adversary logits or None) of this process's rows."""
    score, z = model(*inputs)  # (B,), (B, d_z)
    if method.adversary_sees_label:
        adv_logits = net.adversary(kgroups.arl_input(z, y_local), 0.0)
    else:
        adv_logits = net.adversary(z, lambd) if method.uses_adversary else None
    return score, z, adv_logits


def _gather_batch(ctx, score, z, adv_logits, y_local, s_local, n_groups: int) -> LossInputs:
    """What the loss sees: every term sees the whole global batch (a no-op in a single process).
    `y_local` is None for unlabelled (pool) rows."""
    score, z = distributed.gather(score, ctx), distributed.gather(z, ctx)
    if adv_logits is not None:
        adv_logits = distributed.gather(adv_logits, ctx)
    y = None if y_local is None else distributed.gather(y_local, ctx)
    s = distributed.gather(s_local, ctx)
    return LossInputs(score, z, s, adv_logits, y, n_groups)


def _loss(cfg: TrainConfig, batch: LossInputs, fair: LossInputs, offset: torch.Tensor | None, epoch: int):
    """(total loss, its MSE on the labelled `batch`, the method's named extra terms on `fair`:
    the same batch, or a batch of the pool); `cfg` carries the method's current weight."""
    # the offset acts on the known groups only (S hidden: code -1, no offset)
    fitted = batch.score if offset is None else batch.score + kgroups.offset_shift(offset, batch.s, batch.score.dtype)
    mse = nn.functional.mse_loss(fitted, batch.y)
    terms = loss_terms(cfg.method, fair, cfg)
    loss = mse + sum(terms.values(), torch.zeros((), device=batch.score.device))
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower lr or the method's weight")
    return loss, mse, terms


def _optimise(opt: torch.optim.Optimizer, sched, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()


# ---------------------------------------------------------------------------------------------
# what an epoch records and reports


class _EpochTally:
    """Sums of the step losses over one epoch, and the adversary's hits on the known groups."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.correct = self.seen = 0

    def add(self, loss, mse, terms: dict, batch: LossInputs, needs_s: bool) -> dict:
        """Add one step; returns its losses as floats."""
        losses = {"loss": loss.item(), "mse": mse.item(), **{k: v.item() for k, v in terms.items()}}
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        if batch.adv_logits is not None and needs_s:
            known = batch.s != kgroups.UNKNOWN
            self.correct += int((batch.adv_logits.argmax(1) == batch.s)[known].sum())
            self.seen += int(known.sum())
        return losses

    def means(self, n_steps: int) -> dict:
        return {k: v / max(1, n_steps) for k, v in self.sums.items()}


def _epoch_record(epoch: int, tally: _EpochTally, n_steps: int, grl: float, val: Validation, seconds: float,
                  offset: torch.Tensor | None, weight: TargetWeight) -> dict:
    """One history entry: mean step losses, GRL lambda and validation numbers, plus what only
    some runs record (adversary accuracy, group offset, target weight, selection PCC)."""
    rec = {
        "epoch": epoch + 1,
        **tally.means(n_steps),
        "grl_lambda": grl,
        "val_pcc": val.pcc,
        "val_mse": val.mse,
        "val_spdd": val.spdd,
        "seconds": seconds,
    }
    if tally.seen:
        rec["adv_acc"] = tally.correct / tally.seen
    if offset is not None:
        rec["group_offset"] = kgroups.offset_value(offset)
    if weight.target is not None:
        rec["weight"] = weight.weight
    if val.selection_pcc is not None:
        rec["val_pcc_selection"] = val.selection_pcc
    return rec


def _cpu_state(net: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _check_cancel(cancel, epoch: int, step: int) -> None:
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled(f"training cancelled at epoch {epoch + 1}, step {step + 1}")


def _event(stage: str, cfg: TrainConfig, epoch: int, step: int, n_steps: int, losses: dict, **extra) -> dict:
    """A progress event: `stage` "step" (after each step) or "epoch" (after validation)."""
    return {"stage": stage, "epoch": epoch + 1, "epochs": cfg.epochs, "step": step, "steps": n_steps,
            "losses": losses, **extra}


def _emit(progress, event: dict) -> None:
    if progress is not None:
        progress(event)
