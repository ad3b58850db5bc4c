"""Heads on the fused code Z: the score regressor, and the adversary behind gradient reversal.

Gradient reversal (Ganin & Lempitsky, 2015): the identity on the way forward; on the way back
the gradient is multiplied by -lambda. The adversary's own weights therefore learn to predict S
from Z (they see the ordinary gradient of the cross-entropy), while everything *before* the
reversal - the encoders that make Z - is pushed to make S unpredictable. That is the min-max game
of Kim et al. (2023) in one backward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Identity forward; gradient multiplied by `-lambd` backward."""
    return _ReverseGrad.apply(x, lambd)


class GradientReversal(nn.Module):
    """Module form of `grad_reverse`; `lambd` can be changed between steps."""

    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor, lambd: float | None = None) -> torch.Tensor:
        return grad_reverse(x, self.lambd if lambd is None else lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


def grl_lambda(p: float, gamma: float = 10.0) -> float:
    """The reversal-strength schedule lambda(p) = 2 / (1 + exp(-gamma p)) - 1.

    `p` in [0, 1] is the training progress (step / total steps); lambda rises from 0 at p = 0 to
    ~1 at p = 1 (0.9999 for gamma = 10), so the adversary is weak while Z is still meaningless.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"training progress p must be in [0, 1]; got {p}")
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class Regressor(nn.Module):
    """Z (batch, d_z) -> score (batch,) in [0, 1] through a sigmoid."""

    def __init__(self, d_z: int, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(d_z, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).squeeze(-1)  # (batch,)


class Adversary(nn.Module):
    """Z (batch, d_z) -> logits (batch, n_groups) for the sensitive attribute S.

    `forward(z, lambd)` applies gradient reversal with strength `lambd` first; `lambd=0` lets no
    gradient reach Z (the adversary then only learns to read S, it does not shape Z).
    """

    def __init__(self, d_z: int, hidden: int = 32, n_groups: int = 2):
        super().__init__()
        self.grl = GradientReversal()
        self.net = nn.Sequential(nn.Linear(d_z, hidden), nn.ReLU(), nn.Linear(hidden, n_groups))

    def forward(self, z: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
        return self.net(self.grl(z, lambd))  # (batch, n_groups)
