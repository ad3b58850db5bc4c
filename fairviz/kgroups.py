"""Training beyond two groups and beyond known groups: what `fairviz.train` adds for them.

- **k groups.** The sensitive attribute may hold k >= 2 groups coded 0..k-1 (e.g. the synthetic
  data with ``data_params={"group_shares": [...]}``). With two groups every method runs exactly
  as before (the binary loss functions); with more, the fairness terms switch to their k-group
  forms in `fairviz.losses`: the W1 term of `ours` is the paper's SPDD for k groups
  (``w1_form="spdd"``: ∫ max − min of the groups' selection rates) or each group's W1 to the
  batch's pooled scores (``w1_form="pooled"``); `mmd` and `l2` average over pairs of groups; the
  adversary predicts one of k classes; `fairoffset` learns k − 1 group offsets (group 0's is 0)
  and its shape W1 term takes the ``w1_form`` too. Batches stay group-stratified (every group, the small
  one too, is in every batch).
- **S partly known** (``s_fraction`` < 1): only a seeded random ``s_fraction`` of the training
  rows keep their group; the others are coded -1. Fairness terms and the adversary use the
  labelled rows of each batch only, and batches are stratified on what is known (the unknown
  rows are one more stratum).
- **No S at all** (methods with ``needs_s=False``: `dro`, `arl`): training never reads S (not
  even for batching); the test split is still audited with S.
  `dro`: the χ² distributionally robust risk of Hashimoto et al. (ICML 2018) over the
  per-example squared errors, protecting every subpopulation of share >= ``dro_alpha``.
  `arl`: adversarially reweighted learning (Lahoti et al., NeurIPS 2020): an adversary sees
  (Z, y) and gives each example the weight 1 + B·σ(f)/Σσ(f); the learner minimises the weighted
  MSE, the adversary maximises it (one backward pass: the weights' gradient is reversed).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from fairviz import losses
from fairviz.metrics import pcc, spdd
from fairviz.model.heads import grad_reverse

W1_FORMS = ("spdd", "pooled")
UNKNOWN = -1  # group code of a training row whose S the training may not use


def check_config(cfg) -> None:
    """Validate the TrainConfig fields of this module (clear messages, nothing else)."""
    if cfg.w1_form not in W1_FORMS:
        raise ValueError(f"w1_form must be one of {W1_FORMS}; got {cfg.w1_form!r}")
    frac = cfg.s_fraction
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (math.isfinite(frac) and 0 < frac <= 1):
        raise ValueError(
            f"s_fraction (share of training rows whose group is known) must be in (0, 1]; got {frac!r}"
            " (for no group labels at all use a method that needs none: dro or arl)"
        )
    if not (isinstance(cfg.dro_alpha, (int, float)) and 0 < cfg.dro_alpha <= 1):
        raise ValueError(f"dro_alpha (smallest protected group share) must be in (0, 1]; got {cfg.dro_alpha!r}")


def name_suffix(cfg) -> str:
    """Run-name tags for non-default fields of this module ("" for the defaults)."""
    out = "" if cfg.w1_form == "spdd" else f"-{cfg.w1_form}"
    return out + ("" if cfg.s_fraction == 1 else f"-sf{cfg.s_fraction:g}")


# ---------------------------------------------------------------------------------------------
# groups of the data


def check_groups(group: np.ndarray, splits: dict) -> int:
    """The number of groups k; raises a clear ValueError unless the groups are coded 0..k-1 with
    k >= 2 and every group has rows in every split (``splits``: name -> row indices)."""
    values = np.unique(group)
    if len(values) < 2:
        raise ValueError(
            f"the sensitive attribute has one group only ({values.tolist()}); fairness training needs two or more"
        )
    k = len(values)
    if values[0] != 0 or values[-1] != k - 1:
        raise ValueError(f"group codes must be 0..{k - 1}; got {values.tolist()[:10]}")
    for name, idx in splits.items():
        counts = np.bincount(group[idx], minlength=k)
        missing = np.flatnonzero(counts == 0)
        if len(missing):
            total = np.bincount(group, minlength=k)
            raise ValueError(
                f"group {int(missing[0])} ({int(total[missing[0]])} rows in all) has no rows in the {name} split; "
                "use more samples, a larger share for that group, or smaller val/test fractions"
            )
    return k


def visible_groups(groups: np.ndarray, s_fraction: float, seed: int, needs_s: bool = True) -> np.ndarray:
    """The training rows' groups as the training may see them: int64, UNKNOWN where hidden.

    All hidden when the method needs no S; else a seeded random round(s_fraction · n) rows kept
    (all of them for s_fraction = 1).
    """
    groups = np.asarray(groups, dtype=np.int64)
    if not needs_s:
        return np.full_like(groups, UNKNOWN)
    if s_fraction >= 1:
        return groups.copy()
    n = len(groups)
    keep = np.random.default_rng([seed, 13]).permutation(n)[: int(round(s_fraction * n))]
    out = np.full_like(groups, UNKNOWN)
    out[keep] = groups[keep]
    return out


def labelled(inp):
    """The LossInputs rows whose group is known (a copy when some are hidden)."""
    keep = inp.s != UNKNOWN
    cut = {f.name: getattr(inp, f.name) for f in dataclasses.fields(inp)}
    for name, value in cut.items():
        if torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == keep.shape[0]:
            cut[name] = value[keep]
    return dataclasses.replace(inp, **cut)


# ---------------------------------------------------------------------------------------------
# fairness terms: the binary function for two groups, the k-group one for more


def w1_term(score: torch.Tensor, s: torch.Tensor, n_groups: int, form: str = "spdd") -> torch.Tensor:
    if n_groups == 2:
        return losses.wasserstein_loss(score, s)
    return losses.spdd_loss(score, s) if form == "spdd" else losses.w1_pooled_loss(score, s)


def shape_w1_term(score: torch.Tensor, s: torch.Tensor, n_groups: int, form: str = "spdd") -> torch.Tensor:
    """fairoffset's W1 term: `w1_term`'s distance without its gradient along the score scale."""
    if n_groups == 2:
        return losses.shape_wasserstein_loss(score, s)
    return losses.shape_k_loss(score, s, form)


def mmd_term(x: torch.Tensor, s: torch.Tensor, n_groups: int, bandwidth) -> torch.Tensor:
    fn = losses.mmd_loss if n_groups == 2 else losses.mmd_k_loss
    return fn(x, s, bandwidth=bandwidth)


def gap_term(z: torch.Tensor, s: torch.Tensor, n_groups: int) -> torch.Tensor:
    return (losses.mean_gap_loss if n_groups == 2 else losses.mean_gap_k_loss)(z, s)


# ---------------------------------------------------------------------------------------------
# the group offset of fairoffset (score units, outside the network, dropped at inference)


def new_offset(n_groups: int, device) -> torch.Tensor:
    """The offsets to learn: one scalar b for two groups (b·S), else k − 1 offsets of groups
    1..k-1 against group 0 (a common shift of all groups is the network's bias, not the raters')."""
    shape = () if n_groups == 2 else (n_groups - 1,)
    return torch.zeros(shape, device=device, requires_grad=True)


def offset_shift(offset: torch.Tensor, s: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B,) the offset each row's score gets in training; 0 for group 0 and for hidden S (code -1)."""
    known = s.clamp(min=0)
    if offset.dim() == 0:
        return offset * known.to(dtype)
    return torch.cat([offset.new_zeros(1), offset])[known].to(dtype)


def offset_value(offset: torch.Tensor) -> float | list[float]:
    """What a run records: b (two groups) or the k − 1 offsets of groups 1..k-1 against group 0."""
    return float(offset.detach()) if offset.dim() == 0 else [float(v) for v in offset.detach().cpu()]


# ---------------------------------------------------------------------------------------------
# methods without S


def terms_dro(inp, cfg) -> dict:
    """χ² DRO risk of the squared errors, as the extra term (risk − MSE) next to the MSE."""
    per = (inp.score - inp.y).pow(2)
    return {"dro": losses.chi2_dro_loss(per, cfg.dro_alpha) - per.mean()}


def arl_input(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """What the ARL adversary sees: (Z without its gradient, y) -> (B, d_z + 1)."""
    return torch.cat([z.detach(), y[:, None].to(z.dtype)], dim=1)


def terms_arl(inp, cfg) -> dict:
    """ARL: mean((λ − 1)·ℓ) next to the MSE, so the total is the λ-weighted MSE; λ's gradient is
    reversed, so the same backward pass moves the adversary towards larger weighted loss."""
    per = (inp.score - inp.y).pow(2)
    f = torch.sigmoid(inp.adv_logits[:, 0])
    lam = 1.0 + per.shape[0] * f / f.sum()
    return {"arl": ((grad_reverse(lam, 1.0) - 1.0) * per).mean()}


# ---------------------------------------------------------------------------------------------
# what the k-group experiment reports


def kgroup_summary(scores, groups, labels, *, tau: float = 0.5, smallest: int | None = None) -> dict:
    """Test-split numbers for k groups: SPDD (∫ max − min), PCC overall and per group, the
    selection rates at ``tau`` and the ``smallest`` group's gap there.

    scores, labels: (n,) floats; groups: (n,) codes. ``smallest``: the group code to single out
    (None: the group with the fewest rows here; on a balanced test split pass the group that is
    smallest in the data). ``small_gap`` = its selection rate minus the pooled rate of all other
    rows at ``tau``; ``dp_tau`` = max − min of the groups' rates at ``tau``.
    """
    scores, labels, groups = np.asarray(scores, float), np.asarray(labels, float), np.asarray(groups)
    codes = np.unique(groups)
    if smallest is None:
        smallest = int(codes[np.argmin([np.sum(groups == g) for g in codes])])
    per_pcc = {int(g): float(pcc(scores[groups == g], labels[groups == g])) for g in codes}
    rates = {int(g): float(np.mean(scores[groups == g] > tau)) for g in codes}
    return {
        "spdd": float(spdd(scores, groups)),
        "pcc": float(pcc(scores, labels)),
        "worst_group_pcc": min(per_pcc.values()),
        "group_pcc": per_pcc,
        "rates": rates,
        "dp_tau": max(rates.values()) - min(rates.values()),
        "small_gap": rates[smallest] - float(np.mean(scores[groups != smallest] > tau)),
        "score_std": float(np.std(scores)),
    }


#: The synthetic sensitive attributes the Train page offers: key -> (label, data_params).
SYNTHETIC_ATTRIBUTES = {
    "binary": ("binary S (2 groups, balanced)", {}),
    "k4": ("4 groups (shares 10 / 20 / 30 / 40 %, group 0 small and least favoured)",
           {"group_shares": [0.1, 0.2, 0.3, 0.4]}),
}
#: Shares of training rows with a known group that the Train page offers.
S_FRACTIONS = (0.05, 0.1, 0.2, 0.5, 1.0)
