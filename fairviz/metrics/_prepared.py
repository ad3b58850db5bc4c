"""`PreparedAudit`: one audit input — validated, encoded and sorted once — and everything derived from it.

Every public metric of `fairviz.metrics` is a method of this object on freshly prepared inputs;
callers that need several numbers of the same (scores, groups[, labels]) — `metrics.audit`,
`fairviz.groups.audit_attributes`, the report, the CLI and the app — prepare once and ask the
object, so the scores are validated and the groups encoded once, and each sort (scores by
value, the 2n SPEO breakpoints, the rank order of scores and labels) runs at most once, when
first needed, and is reused by the exact metrics, the DP(τ) curve, the rate tables and the
bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairviz.metrics._correlation import _corr, _midranks_from_blocks, _tie_blocks
from fairviz.metrics._rates import _SMALL_GROUP_SHARE, _check_tau, _ratios
from fairviz.metrics._sort import _value_major
from fairviz.metrics._steps import _dp_gap_fn, _integrate_gap
from fairviz.metrics._threshold import (
    DPCurve,
    _check_grid,
    _curve_from_sorted,
    _parts,
    _spdd_grid,
    _speo_grid,
    _w1_from_sorted,
)
from fairviz.metrics._validate import _Data, _prepare


class PreparedAudit:
    """Scores by group (and labels), checked and encoded once; sorts are computed when first
    needed and kept.

    Attributes: ``n`` rows, ``groups`` (sorted labels, tuple (G,)), ``counts`` int64 (G,),
    ``has_labels``. The arrays (``x`` scores (n,), ``codes`` intp (n,), ``y`` labels (n,) or
    None) are the caller's; do not modify them. Build with `prepare` (validates) or
    `PreparedAudit.from_codes` (trusted, already checked inputs).
    """

    def __init__(self, data: _Data):
        self.data = data
        self._cache: dict = {}

    @classmethod
    def from_codes(cls, x: np.ndarray, codes: np.ndarray, groups: tuple, y: np.ndarray | None = None,
                   counts: np.ndarray | None = None) -> PreparedAudit:
        """From inputs already checked: x float64 (n,) in [0, 1], codes (n,) in [0, G) with every
        code present, groups (G,) their labels, y float64 (n,) in [0, 1] or None."""
        codes = np.asarray(codes)
        if counts is None:
            counts = np.bincount(codes, minlength=len(groups)).astype(np.int64)
        return cls(_Data(x, codes, tuple(groups), np.asarray(counts, dtype=np.int64), y))

    def without_labels(self) -> PreparedAudit:
        """The same scores and groups without labels, sharing what is already computed."""
        other = PreparedAudit(_Data(self.data.x, self.data.codes, self.data.labels, self.data.counts, None))
        other._cache = self._cache  # label-dependent entries are never asked for without labels
        return other

    def share_rows(self, other: PreparedAudit) -> None:
        """Take over ``other``'s group-independent results (rank orders, PCC, SRCC, SPEO's
        breakpoints for permutation tests): call only
        when both hold the same scores and labels row for row (another grouping of them)."""
        for key in ("ties0", "ties1", "pcc", "srcc", "speo_breakpoints"):
            if key in other._cache:
                self._cache.setdefault(key, other._cache[key])

    def drop_sorts(self) -> None:
        """Forget this grouping's own sort by score and its DP(τ) curve (about 100 MB at 10⁶
        rows; re-derived if asked for again). Every other result, and what other groupings of
        the rows share (rank orders, SPEO's breakpoints), is kept."""
        self._cache.pop("sorted", None)
        self._cache.pop("curve", None)

    # ------------------------------------------------------------------ what was prepared
    @property
    def n(self) -> int:
        return self.data.n

    @property
    def groups(self) -> tuple:
        return self.data.labels

    @property
    def counts(self) -> np.ndarray:
        return self.data.counts

    @property
    def has_labels(self) -> bool:
        return self.data.y is not None

    def _get(self, key: str, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def sorted_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(z float64 (n,) the scores ascending, code (n,) their groups): the one sort by value."""
        d = self.data
        return self._get("sorted", lambda: _value_major(d.x, d.codes, d.n_groups))

    def score_order(self) -> np.ndarray:
        """Stable argsort of the scores (row order of the sorted scores)."""
        return self.tie_blocks(0)[0]

    def tie_blocks(self, which: int):
        """`_tie_blocks` of the scores (0) or labels (1): order, block starts, block id."""
        v = self.data.x if which == 0 else self._labels()
        return self._get(f"ties{which}", lambda: _tie_blocks(v))

    def speo_breakpoints(self):
        """SPEO's 2n breakpoints sorted with their rows (`fairviz.permute_speo.SpeoBreakpoints`),
        for the exact SPEO and its permutation tests; group-independent (shared by `share_rows`)."""
        # import cycle: fairviz.permute_speo builds on fairviz.metrics' resampling helpers
        from fairviz.permute_speo import SpeoBreakpoints  # noqa: PLC0415

        y = self._labels()
        ties = self._cache.get("ties1")  # the labels' sort, when SRCC already made it
        return self._get("speo_breakpoints",
                         lambda: SpeoBreakpoints(self.data.x, y, None if ties is None else ties[0]))

    def _labels(self) -> np.ndarray:
        if self.data.y is None:
            raise ValueError("this metric needs labels (the true outcome Y in [0, 1]); pass labels=...")
        return self.data.y

    # ------------------------------------------------------------------ exact metrics
    def spdd(self, grid: int | None = None) -> float:
        """∫₀¹ DP(τ) dτ, exact (W1 for two groups) or the mean over τ_j = j / grid."""
        g = _check_grid(grid)
        if g is not None:
            return self._get(f"spdd_grid{g}", lambda: _spdd_grid(self.data, g))

        def make():
            z, code = self.sorted_scores()
            if self.data.n_groups == 2:
                return float(_w1_from_sorted(z, code))
            return float(_integrate_gap(z, code, self.data.n_groups, _dp_gap_fn(self.counts)))

        return self._get("spdd", make)

    def speo(self, grid: int | None = None) -> float:
        """∫₀¹ [max − min] P(Ŷ > τ | Y > τ, g) dτ, exact or on the τ grid (needs labels)."""
        self._labels()
        g = _check_grid(grid)
        if g is not None:
            return self._get(f"speo_grid{g}", lambda: _speo_grid(self.data, g))

        from fairviz.permute_speo import observed_speo  # noqa: PLC0415 (import cycle, as in speo_breakpoints)

        # one compiled pass over the breakpoints, sorted once for every grouping of these rows
        return self._get("speo", lambda: observed_speo(self.speo_breakpoints(), self.data.codes, self.counts))

    def pcc(self) -> float:
        """Pearson correlation of scores and labels (NaN when either is constant or n < 2)."""
        y = self._labels()
        return self._get("pcc", lambda: _corr(self.data.x, y) if self.n >= 2 else math.nan)

    def srcc(self) -> float:
        """Spearman correlation (mid-ranks for ties), from the cached rank orders."""
        self._labels()

        def make():
            if self.n < 2:
                return math.nan
            return _corr(_midranks_from_blocks(*self.tie_blocks(0)), _midranks_from_blocks(*self.tie_blocks(1)))

        return self._get("srcc", make)

    def dp_curve(self) -> DPCurve:
        """The exact DP(τ) step function and the selection-rate curves (from the one sort)."""
        return self._get("curve", lambda: _curve_from_sorted(*self.sorted_scores(), self.data))

    def spdd_parts(self) -> dict:
        """SPDD split by the favoured group (see `fairviz.metrics.spdd_parts`)."""
        return self._get("parts", lambda: _parts(self.dp_curve()))

    # ------------------------------------------------------------------ rates
    def _rates_at(self, tau: float) -> np.ndarray:
        d = self.data
        if "sorted" in self._cache:  # rows with score > τ are the sorted positions k..n−1
            z, code = self._cache["sorted"]
            above = np.bincount(code[int(np.searchsorted(z, tau, side="right")):], minlength=d.n_groups)
        else:  # one pass, cheaper than a sort
            above = np.bincount(d.codes, weights=(d.x > tau), minlength=d.n_groups)
        return above / self.counts

    def selection_rates(self, tau) -> dict:
        """{group: P(Ŷ > τ | g)} (strict ``>``)."""
        return {g: float(r) for g, r in zip(self.groups, self._rates_at(_check_tau(tau)))}

    def impact_ratio(self, tau) -> dict:
        """{group: its selection rate at τ over the highest group's} (NaN when none is selected)."""
        return {g: float(r) for g, r in zip(self.groups, _ratios(self._rates_at(_check_tau(tau))))}

    def median(self) -> float:
        """Median score (the mean of the two middle values for even n, as `np.median`)."""
        if "sorted" not in self._cache:
            return float(np.median(self.data.x))
        z, _ = self._cache["sorted"]
        n = len(z)
        return float(z[n // 2]) if n % 2 else float(np.mean(z[n // 2 - 1 : n // 2 + 1]))

    def scoring_rate_table(self) -> pd.DataFrame:
        """The LL144 table (see `fairviz.metrics.scoring_rate_table`)."""
        rates = self._rates_at(self.median())
        share = self.counts / self.n
        return pd.DataFrame({
            "group": list(self.groups), "n": self.counts.astype(np.int64), "share": share,
            "scoring_rate": rates, "impact_ratio": _ratios(rates), "small_group": share < _SMALL_GROUP_SHARE,
        })


def as_prepared(d: _Data | PreparedAudit) -> PreparedAudit:
    """``d`` itself, or checked `_Data` wrapped (nothing is validated or sorted again)."""
    return d if isinstance(d, PreparedAudit) else PreparedAudit(d)


def prepare(scores, groups, labels=None) -> PreparedAudit:
    """Check and encode one audit input once: scores (n,) in [0, 1], groups (n,) hashable (≥ 2
    distinct), labels (n,) in [0, 1] or None. Bad input raises ValueError (as every metric)."""
    return PreparedAudit(_prepare(scores, groups, labels))
