"""Robust objectives over per-example losses, for training without group labels (torch).

- `cvar_loss(losses, alpha)`: mean of the worst ``alpha`` share of the losses (CVaR DRO);
- `chi2_dro_loss(losses, alpha_min)`: Hashimoto et al. (ICML 2018), the χ² DRO risk that bounds
  the loss of every group holding at least a share ``alpha_min`` of the data, whatever the groups
  are; `chi2_dro_constant(alpha_min)` its constant.

Re-exported by `fairviz.losses`, the home of the fairness terms that do read the groups.
"""

from __future__ import annotations

import torch

__all__ = ["cvar_loss", "chi2_dro_loss", "chi2_dro_constant"]


def _zero(x: torch.Tensor) -> torch.Tensor:
    """0 connected to the graph of x (a defined, zero gradient)."""
    return (x * 0.0).sum()


def _per_example(losses: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.is_tensor(losses) or losses.dim() != 1:
        raise ValueError(f"{name}: losses must be a 1-D tensor of per-example losses")
    return losses


def _check_share(alpha: float, name: str, what: str) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"{name}: {what} must be in (0, 1], got {alpha!r}")
    return alpha


def cvar_loss(losses: torch.Tensor, alpha: float) -> torch.Tensor:
    """CVaR_alpha of per-example losses (B,): inf_η η + E[(ℓ − η)_+] / alpha (scalar).

    The exact value for the batch's empirical distribution: the mean of the ⌊alpha·B⌋ largest
    losses plus the fractional weight of the next one. alpha = 1 gives the mean.
    """
    ell = _per_example(losses, "cvar_loss")
    alpha = _check_share(alpha, "cvar_loss", "alpha")
    B = ell.shape[0]
    if B == 0:
        return _zero(ell)
    top = torch.sort(ell, descending=True).values
    mass = alpha * B  # rows of weight 1 / (alpha·B) each, the last one partly
    w = torch.clamp(mass - torch.arange(B, device=ell.device, dtype=ell.dtype), 0.0, 1.0)
    return (top * w).sum() / mass


def chi2_dro_constant(alpha_min: float) -> float:
    """C = sqrt(2 (1/alpha_min − 1)² + 1) of Hashimoto et al. (2018), eq. (6)."""
    a = _check_share(alpha_min, "chi2_dro_constant", "alpha_min")
    return (2.0 * (1.0 / a - 1.0) ** 2 + 1.0) ** 0.5


def chi2_dro_loss(losses: torch.Tensor, alpha_min: float) -> torch.Tensor:
    """inf_η C·sqrt(E[(ℓ − η)_+²]) + η over per-example losses (B,) (Hashimoto et al. 2018).

    η is solved for the batch (bisection on the derivative of this convex function of η, no
    gradient); by the envelope theorem the gradient at the optimal η is the gradient with η
    held fixed. alpha_min = 1 gives the mean loss (C = 1; the infimum is then only approached).
    """
    ell = _per_example(losses, "chi2_dro_loss")
    C = chi2_dro_constant(alpha_min)
    if ell.shape[0] == 0:
        return _zero(ell)
    if C == 1.0:
        return ell.mean()
    with torch.no_grad():
        x = ell.detach().double()
        # d/dη = 1 − C·E[(ℓ−η)+] / sqrt(E[(ℓ−η)+²]) rises from 1 − C (η → −∞) to 1 (η → max ℓ);
        # η = min ℓ − t with t ≥ 4·range / (C − 1) is already on the negative side
        spread = float(x.max() - x.min()) + 1e-6
        lo, hi = float(x.min()) - spread * (4.0 + 4.0 / (C - 1.0)), float(x.max())
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            r = torch.clamp(x - mid, min=0.0)
            ms = r.pow(2).mean()
            slope = 1.0 - C * r.mean() / ms.sqrt() if ms > 0 else 1.0
            if slope < 0:
                lo = mid
            else:
                hi = mid
        eta = 0.5 * (lo + hi)
        ties = int((x == x.max()).sum())
    if 1.0 - C * (ties / x.shape[0]) ** 0.5 <= 0:
        # the slope is already <= 0 just below the largest loss: η* = max ℓ and the risk is the
        # largest loss itself (small batches with a large C)
        return ell.max()
    return C * torch.sqrt(torch.clamp(ell - eta, min=0.0).pow(2).mean()) + eta
