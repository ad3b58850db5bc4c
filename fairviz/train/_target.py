"""Training towards a target SPDD: the method's weight is moved during training by dual ascent
on the validation SPDD (`_next_weight`), a few times per epoch and after each epoch."""

from __future__ import annotations

import dataclasses
import math

from fairviz.metrics import spdd
from fairviz.model.network import FairMultimodalNet
from fairviz.train._config import TrainConfig
from fairviz.train._data import PreparedData
from fairviz.train._evaluate import predict
from fairviz.train._methods import Method

#: How often per epoch the target controller reads the validation SPDD and moves the weight, and
#: the bounds of one multiplicative step.
TARGET_UPDATES_PER_EPOCH = 4
TARGET_STEP = (0.5, 2.0)


def _val_spdd(net: FairMultimodalNet, data: PreparedData, device) -> float:
    """SPDD of the current network on the validation rows (no labels needed)."""
    scores, _ = predict(net, data, data.val_idx, device)
    return float(spdd(scores, data.group[data.val_idx]))


def _next_weight(weight: float, val_spdd: float, target: float, cap: float | None = None) -> float:
    """Dual ascent on the validation SPDD, in log space: the weight is multiplied by
    val SPDD / target (clipped to TARGET_STEP), so it grows while the model is less fair than
    the target and shrinks while it is fairer. A weight of 0 restarts from 0.01. Called
    TARGET_UPDATES_PER_EPOCH times per epoch; the weight never exceeds `cap` (the method's
    weight_max) when given."""
    lo, hi = TARGET_STEP
    factor = min(hi, max(lo, val_spdd / target)) if math.isfinite(val_spdd) else hi
    new = max(weight, 0.01) * factor
    return new if cap is None else min(new, cap)


class TargetWeight:
    """The weight of the method's distribution term during one run, and `cfg` with it.

    Without a target SPDD the weight is the configured one and never moves. With one, it starts
    at the configured weight (capped at the method's weight_max) and is updated by `update`.
    """

    def __init__(self, cfg: TrainConfig, method: Method, steps_per_epoch: int):
        self._base, self._method = cfg, method
        self.target = cfg.target_spdd
        self.weight = cfg.method_weight()
        self.cfg = cfg  # cfg with the weight reached so far: what the loss terms read
        if self.target is not None and method.weight_max is not None and self.weight > method.weight_max:
            self._set(method.weight_max)
        self.every = max(1, math.ceil(steps_per_epoch / TARGET_UPDATES_PER_EPOCH))

    def _set(self, weight: float) -> None:
        self.weight = weight
        self.cfg = dataclasses.replace(self._base, **{self._method.weight_field: weight})

    def due(self, step: int, n_steps: int) -> bool:
        """Whether to update after 0-based `step` of an epoch of `n_steps` (not after its last:
        the epoch's own update follows it)."""
        return self.target is not None and (step + 1) % self.every == 0 and step + 1 < n_steps

    def update(self, val_spdd: float) -> None:
        """One dual-ascent step from the current validation SPDD (no-op without a target)."""
        if self.target is not None:
            self._set(_next_weight(self.weight, val_spdd, self.target, self._method.weight_max))
