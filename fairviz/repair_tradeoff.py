"""Fairness and accuracy of barycenter-repaired scores at each repair strength θ ∈ [0, 1].

`repair_tradeoff(scores, groups, labels=None, strengths=...)`: one row per θ with the exact SPDD,
SPEO, PCC, SRCC of ``(1 - θ) x + θ Q_B(F_g(x))`` (`fairviz.repair.RepairMap`), the inputs checked,
encoded and ranked once for all strengths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from fairviz import metrics
from fairviz.metrics._correlation import _corr, _midranks, _midranks_from_blocks, _tie_blocks
from fairviz.permute_speo import SpeoBreakpoints, observed_speo
from fairviz.repair import RepairMap, _as_scores, check_strength

__all__ = ["repair_tradeoff"]


class _Ranked:
    """Mid-ranks of the original scores and of the labels, computed once for every strength:
    SRCC is the Pearson correlation of mid-ranks, so each strength ranks its repaired scores
    once for both of its SRCCs (with the labels, and with the original scores). The labels'
    sort also serves every strength's SPEO breakpoints (``y_order``)."""

    def __init__(self, d):
        self.x = _midranks(d.x) if np.ptp(d.x) > 0 else None
        self.y = self.y_order = None
        if d.y is not None:
            blocks = _tie_blocks(d.y, stable=False)
            self.y_order, self.y = blocks[0], _midranks_from_blocks(*blocks)

    def srcc(self, r: np.ndarray, original: bool = False) -> tuple[float, float]:
        """(SRCC of the labels and r, SRCC of the original scores and r); NaN where undefined.
        ``original``: r is the original scores (their ranks are at hand)."""
        rr = self.x if original and self.x is not None else _midranks(r)
        return (np.nan if self.y is None else _corr(self.y, rr)), (np.nan if self.x is None else _corr(self.x, rr))


def repair_tradeoff(
    scores: Any,
    groups: Any,
    labels: Any = None,
    strengths: Iterable[float] = tuple(i / 10 for i in range(11)),
    *,
    repair_map: RepairMap | None = None,
    repaired: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fairness/accuracy at each repair strength, one row per theta.

    Columns: ``strength``, ``spdd`` (exact, `fairviz.metrics.spdd`), ``speo``, ``pcc``, ``srcc``
    (against `labels`; NaN without labels) and ``srcc_original`` (rank correlation of the repaired
    with the original scores: how much the ranking changed). `repair_map` defaults to an exact map
    fitted on these scores (in-sample repair); pass a fitted map to evaluate it on new data, and
    ``repaired`` (n,) its fully repaired scores (θ = 1) when already computed. The inputs are
    checked and the groups encoded once (`fairviz.metrics.prepare`); each strength's numbers
    come from one prepared audit of its scores.
    """
    x = _as_scores(scores)
    thetas = [check_strength(t) for t in strengths]
    if not thetas:
        raise ValueError("strengths is empty; pass e.g. numpy.linspace(0, 1, 11)")
    d = metrics.prepare(x, groups, labels).data
    rmap = repair_map if repair_map is not None else RepairMap(n_quantiles=None).fit(x, groups)
    full = rmap.repaired_full(x, groups) if repaired is None else np.asarray(repaired, dtype=np.float64)
    ranked = _Ranked(d)
    rows = [_row(t, x, full, d, ranked) for t in thetas]
    return pd.DataFrame(rows, columns=["strength", "spdd", "speo", "pcc", "srcc", "srcc_original"])


def _row(t: float, x: np.ndarray, full: np.ndarray, d, ranked: _Ranked) -> dict:
    """The numbers of strength t (one row of `repair_tradeoff`); its arrays (the repaired scores,
    their sort and SPEO breakpoints, ~80 MB at 10⁶ rows) are freed before the next strength's."""
    r = (1.0 - t) * x + t * full if t < 1.0 else full
    p = metrics.PreparedAudit.from_codes(r, d.codes, d.labels, d.y, d.counts)
    srcc, srcc_original = ranked.srcc(r, original=t == 0.0)
    row = {"strength": t, "spdd": p.spdd(), "srcc_original": srcc_original}
    if d.y is None:
        return {**row, "speo": np.nan, "pcc": np.nan, "srcc": np.nan}
    bp = SpeoBreakpoints(r, d.y, label_order=ranked.y_order)
    return {**row, "speo": observed_speo(bp, d.codes, d.counts), "pcc": p.pcc(), "srcc": srcc}
