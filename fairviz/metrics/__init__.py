"""Exact, threshold-free fairness metrics for scores in [0, 1] (numpy; pandas only to encode
non-integer group labels and to return the LL144 table).

Definitions (S = group, Ŷ = score, Y = label, all scores and labels in [0, 1]):

- selection rate      P(Ŷ > τ | S = g)                      (strict ``>``)
- DP(τ)               max_g P(Ŷ > τ | g) − min_g P(Ŷ > τ | g)  (two groups: the absolute gap)
- SPDD                ∫₀¹ DP(τ) dτ; for two groups this is the 1-Wasserstein distance W1 between
                      the two groups' score distributions.
- SPEO                ∫₀¹ [max_g − min_g] P(Ŷ > τ | Y > τ, S = g) dτ; a group with no Y > τ
                      counts as rate 0 at that τ (the paper's convention).

Prepare once, derive everything: `prepare(scores, groups, labels)` checks and encodes the inputs
once and returns a `PreparedAudit`, whose methods give every metric, the DP(τ) curve, the rate
tables and (through `audit_prepared`) the intervals, each sort computed at most once and
reused; the one-call functions below prepare and ask for one number.

Every step function above changes only at data values, so the integrals are computed exactly
from one sort of the data (O(n log n)), with no τ grid. ``grid=50`` reproduces the paper's
evaluation instead: the mean over τ ∈ {0, 0.02, …, 0.98} (τ_j = j / 50 as doubles).

Bootstrap CIs resample rows *within each group* (group sizes stay fixed). The data are sorted
once; a resample is one vector of multinomial counts over the rows in (score, group) order,
and every statistic reads that one vector — no re-sorting, no resampled copies: the step
integrals (SPDD, SPEO at its 2n breakpoints, sorted once) from cumulative counts per group,
PCC from weighted moments, SRCC from mid-ranks that are cumulative counts (the labels' order
is one gather). Each replicate equals the statistic recomputed on the explicitly resampled
rows (tested against brute force). The counts are exactly Multinomial(n_g, uniform) per group
(see `_Counts`); resamples run in threads (FAIRVIZ_THREADS overrides the number) and do not
depend on the thread count.

Speed (bench/RESULTS.md): two-group `spdd` packs the group into the sign bit of each score and
sorts those keys once (as floats), then integrates by quantile matching block by block: where
a block's two quantile functions keep their order, its share is a difference of two sums; only
blocks where they may cross are integrated interval by interval. The two-group SPDD bootstrap
uses the same idea on the ECDF gap (`_SpddBoot`).

Bad input (lengths differ, NaN/inf, values outside [0, 1], fewer than two groups, missing group
values) raises ``ValueError`` with a message that says what to fix; values are never clipped.
"""

from fairviz.metrics._audit import AuditResult, MetricValue, audit, audit_prepared
from fairviz.metrics._bootstrap import STATISTICS, bootstrap_ci
from fairviz.metrics._correlation import pcc, srcc
from fairviz.metrics._functions import (
    dp_curve,
    impact_ratio,
    scoring_rate_table,
    selection_rates,
    spdd,
    spdd_parts,
    speo,
)
from fairviz.metrics._little import BOOTSTRAPS, LITTLE_MIN_ROWS, LittleBootstrap
from fairviz.metrics._prepared import PreparedAudit, prepare
from fairviz.metrics._rates import FOUR_FIFTHS
from fairviz.metrics._threshold import DPCurve
from fairviz.metrics._validate import validate_inputs

__all__ = [
    "BOOTSTRAPS",
    "LITTLE_MIN_ROWS",
    "LittleBootstrap",
    "AuditResult",
    "DPCurve",
    "FOUR_FIFTHS",
    "MetricValue",
    "PreparedAudit",
    "STATISTICS",
    "audit",
    "audit_prepared",
    "bootstrap_ci",
    "dp_curve",
    "impact_ratio",
    "pcc",
    "prepare",
    "scoring_rate_table",
    "selection_rates",
    "spdd",
    "spdd_parts",
    "speo",
    "srcc",
    "validate_inputs",
]
