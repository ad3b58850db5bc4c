"""The method registry: each method as data (`Method`) and the one place where its extra loss
terms are defined (`loss_terms`). The names come from the torch-free catalogue `fairviz.methods`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from fairviz import kgroups
from fairviz.methods import ALL_METHODS, COMPARED_METHODS, SAFE_WEIGHT_MAX

if TYPE_CHECKING:
    from fairviz.train._config import TrainConfig


@dataclass(frozen=True)
class LossInputs:
    """What a method's extra loss may look at, for one training batch of size B."""

    score: torch.Tensor  # (B,) predictions in [0, 1]
    z: torch.Tensor  # (B, d_z) fused code
    s: torch.Tensor  # (B,) int64 sensitive attribute
    adv_logits: torch.Tensor | None  # (B, 2) adversary logits behind gradient reversal, or None
    y: torch.Tensor | None = None  # (B,) training targets
    n_groups: int = 2  # groups of the attribute (k-group loss forms when > 2)


def _adversary_ce(inp: LossInputs, cfg: TrainConfig) -> torch.Tensor:
    # minimised by the adversary (learns to predict S); reversed for the encoders (hide S)
    if inp.s.shape[0] == 0:  # no labelled row in this batch (s_fraction < 1)
        return (inp.adv_logits * 0.0).sum()
    return cfg.adv_weight * nn.functional.cross_entropy(inp.adv_logits, inp.s)


def _terms_vanilla(inp: LossInputs, cfg: TrainConfig) -> dict:
    return {}


def _terms_adversarial(inp: LossInputs, cfg: TrainConfig) -> dict:
    return {"adv": _adversary_ce(inp, cfg)}


def _terms_l2(inp: LossInputs, cfg: TrainConfig) -> dict:
    return {"l2": cfg.lambda_l2 * kgroups.gap_term(inp.z, inp.s, inp.n_groups)}


def _terms_mmd(inp: LossInputs, cfg: TrainConfig) -> dict:
    return {"mmd": cfg.lambda_mmd * kgroups.mmd_term(inp.score, inp.s, inp.n_groups, cfg.mmd_bandwidth)}


def _terms_ours(inp: LossInputs, cfg: TrainConfig) -> dict:
    w1 = kgroups.w1_term(inp.score, inp.s, inp.n_groups, cfg.w1_form)
    return {"w1": cfg.lambda_w * w1, "adv": _adversary_ce(inp, cfg)}


def _terms_fairoffset(inp: LossInputs, cfg: TrainConfig) -> dict:
    # W1 in score units, but without the gradient that shrinks every score towards a constant
    return {"sw1": cfg.lambda_sw * kgroups.shape_w1_term(inp.score, inp.s, inp.n_groups, cfg.w1_form)}


@dataclass(frozen=True)
class Method:
    name: str
    description: str  # what it adds to the MSE loss
    loss_terms: Callable[[LossInputs, TrainConfig], dict]  # named extra terms, already weighted
    uses_adversary: bool = False  # compute adversary logits (through the GRL) each step
    balance_training_rows: bool = False  # oversample groups to equal counts within label bins
    weight_field: str | None = None  # the TrainConfig field weighting its distribution term
    group_offset: bool = False  # fit score + b[S] to the training labels; score alone is the model
    weight_max: float | None = None  # the largest weight the target controller may reach
    needs_s: bool = True  # False: training never reads S (not in the loss, not for batching)
    adversary_sees_label: bool = False  # the adversary reads (Z detached, y) instead of Z (ARL)
    compared: bool = True  # in the default comparison and the shipped runs
    # fairness_rows "auto": the fairness terms read the whole training split (the pool), not only
    # the labelled rows. Only for terms that read scores, Z and S - never the labels
    fairness_on_pool: bool = False

    @property
    def pool_capable(self) -> bool:
        """Whether its extra terms read S but never the labels, so unlabelled rows can feed them."""
        return self.needs_s and not self.adversary_sees_label and (self.weight_field is not None or self.uses_adversary)

    @property
    def uses_lambda_w(self) -> bool:
        return self.weight_field == "lambda_w"


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("vanilla", "nothing (MSE only)", _terms_vanilla),
        Method(
            "balancing",
            "trains on rows oversampled so groups are equal within each of 10 label bins",
            _terms_vanilla,
            balance_training_rows=True,
        ),
        Method(
            "adversarial",
            "adv_weight * cross-entropy of an adversary predicting S from Z through gradient reversal",
            _terms_adversarial,
            uses_adversary=True,
        ),
        Method(
            "l2",
            "lambda_l2 * squared distance between the groups' mean Z",
            _terms_l2,
            weight_field="lambda_l2",
        ),
        Method(
            "mmd",
            "lambda_mmd * multi-kernel MMD between the groups' predictions",
            _terms_mmd,
            weight_field="lambda_mmd",
        ),
        Method(
            "ours",
            "lambda_w * W1(groups' predictions) + the adversary through gradient reversal",
            _terms_ours,
            uses_adversary=True,
            weight_field="lambda_w",
        ),
        Method(
            "fairoffset",
            "a learned group offset b·S absorbs the raters' shift in training (dropped at inference) "
            "+ lambda_sw * W1(groups' predictions) without its gradient along the score scale",
            _terms_fairoffset,
            weight_field="lambda_sw",
            group_offset=True,
            # the default encoder holds up to 1 (collapses at 3), a weak one only up to 0.3
            weight_max=SAFE_WEIGHT_MAX["fairoffset"],
            # under sampling bias, parity on the skewed labelled rows is a reverse gap in the
            # population; the shape-W1 term reads scores and S only, so it reads the whole
            # training split (docs/RESULTS.md, "Fairness on the pool")
            fairness_on_pool=True,
        ),
        Method(
            "dro",
            "chi-square DRO risk of the squared errors (Hashimoto et al. 2018) minus the MSE; no S in training",
            kgroups.terms_dro,
            needs_s=False,
            compared=False,
        ),
        Method(
            "arl",
            "adversarially reweighted MSE (Lahoti et al. 2020) minus the MSE; no S in training",
            kgroups.terms_arl,
            uses_adversary=True,
            needs_s=False,
            adversary_sees_label=True,
            compared=False,
        ),
    ]
}
METHOD_NAMES = COMPARED_METHODS
assert tuple(METHODS) == ALL_METHODS and METHOD_NAMES == tuple(m for m in METHODS if METHODS[m].compared)


def loss_terms(method: str, inp: LossInputs, cfg: TrainConfig) -> dict:
    """The named extra loss terms of `method` for one batch (empty for vanilla and balancing)."""
    if cfg.s_fraction < 1 and METHODS[method].needs_s:
        inp = kgroups.labelled(inp)  # fairness terms see the rows whose group is known
    return METHODS[method].loss_terms(inp, cfg)
