"""What the report says, as data: dataclasses filled by `fairviz.report._compute` and drawn by the
templates in ``templates/`` (`fairviz.report._render`). Numbers are plain floats (NaN or None where
there is none); text is as the user wrote it (the templates escape it); figures are plotly figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the one home of the four-fifths threshold is the statistics layer; the report only reads it
from fairviz.significance import FOUR_FIFTHS


@dataclass(frozen=True)
class ReportSettings:
    """The knobs of `fairviz.report.build_report` (see its docstring)."""

    tau: float = 0.5
    n_boot: int = 200
    level: float = 0.95
    n_perm: int | None = None
    alpha: float = 0.05
    intersections: bool = True
    exclude_small: bool = False
    random_state: int = 0
    max_groups: int = 200


@dataclass(frozen=True)
class AttributeStatus:
    """One row of the data section: an attribute or intersection and whether it was audited."""

    name: str
    rows_used: int
    n_missing: int
    n_groups: int
    small_groups: tuple
    skipped: str | None  # why it was not audited; None when it was


@dataclass(frozen=True)
class DataSummary:
    source_name: str | None
    digest: str  # SHA-256, hex
    digest_note: str  # what the digest is of
    n: int
    score_name: str
    score_min: float
    score_mean: float
    score_max: float
    label_name: str | None
    has_labels: bool
    attribute_names: tuple
    source_note: str | None  # free text from the caller
    attributes: tuple  # of AttributeStatus, in report order


@dataclass(frozen=True)
class RateRow:
    """One group of a selection-rate table (LL144 scoring rates, or the four-fifths check at τ)."""

    group: str  # the group label as plain text
    n: int
    share: float  # of the known rows, in [0, 1]
    selected: int
    rate: float
    impact_ratio: float
    excluded: bool  # left out of the impact ratios as under 2 % (exclude_small)
    fails: bool  # impact ratio under four fifths
    small: bool
    test: str  # "two-proportion z", "Fisher exact", "reference" or "—"
    p_value: float | None
    significant: bool | None  # None where no test was run


@dataclass(frozen=True)
class GroupRow:
    group: str
    n: int
    share: float  # of the attribute's known rows, in [0, 1]
    w1_to_pooled: float


@dataclass(frozen=True)
class AttributeSection:
    """One attribute or intersection: its audit, permutation tests, tables and figures."""

    anchor: str  # HTML id
    result: Any  # fairviz.groups.AttributeAudit
    perm: Any  # fairviz.significance permutation test of SPDD
    perm_speo: Any | None  # the same for SPEO (with labels)
    spdd_words: str | None  # `fairviz.uncertainty.describe` of SPDD; None without its uncertainty
    speo_words: str | None
    spdd_pair: tuple  # the two groups (plain text) of the largest pairwise W1
    groups: tuple  # of GroupRow
    favoured: tuple  # (group text, area of SPDD where it is the most selected)
    pairwise: tuple  # (group texts, rows of W1 values)
    scoring_rates: tuple  # of RateRow
    impact_rates: tuple | None  # of RateRow at τ; None when there is no four-fifths table
    n_fails: int  # groups under four fifths at τ
    n_significant_fails: int
    lowest_ratio: float  # lowest LL144 impact ratio of the groups not excluded (NaN if none)
    dp_figure: Any
    distribution_figure: Any
    permutation_figure: Any

    @property
    def lowest_fails(self) -> bool:
        return self.lowest_ratio < FOUR_FIFTHS  # NaN compares False


@dataclass(frozen=True)
class RepairRow:
    name: str
    original: float  # SPDD before, after θ = 0.5 and after θ = 1
    half: float
    full: float
    removed: float  # share of SPDD removed at θ = 1, in [0, 1]; NaN when SPDD was 0


@dataclass(frozen=True)
class AccuracyRow:
    scores: str  # "original", "θ = 0.5", "θ = 1"
    pcc: float
    srcc: float
    speo: float


@dataclass(frozen=True)
class RepairSection:
    by: str  # the grouping repaired (the finest audited one)
    first_attribute: str  # whose distributions the figure shows
    n_rows: int
    rows: tuple  # of RepairRow
    accuracy: tuple | None  # of AccuracyRow (with labels)
    tradeoff_figure: Any
    distribution_figure: Any
    heldout_before: float | None  # SPDD on the held-out half before / after a RepairMap fitted on the other
    heldout_after: float | None
    heldout_error: str | None  # why the held-out check was not possible

    @property
    def heldout_removed(self) -> float | None:
        if self.heldout_before is None or not self.heldout_before > 0:
            return None
        return 1 - self.heldout_after / self.heldout_before


@dataclass(frozen=True)
class AuditReport:
    """Everything the HTML report shows."""

    title: str
    generated_at: str  # ISO 8601, seconds
    version: str
    settings: ReportSettings
    n_boot: int  # bootstrap resamples used for the metric intervals
    has_labels: bool
    data: DataSummary
    attributes: tuple  # of AttributeSection
    repair: RepairSection
    n_perms: tuple  # the distinct permutation counts used, sorted
