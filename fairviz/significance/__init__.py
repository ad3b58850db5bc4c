"""Is a gap statistically meaningful? Tests next to the impact ratios and next to SPDD / SPEO.

- Rates (four-fifths rule at a threshold tau, and NYC Local Law 144's median-split scoring rates):
  each group is compared with the highest-rate group by a two-sided two-proportion z-test (pooled
  variance), or by Fisher's exact test (`scipy.stats.fisher_exact`) when any expected cell count
  of the 2x2 table is below 5 (where the normal approximation is poor). The EEOC's Uniform
  Guidelines look at both the ratio (< 0.8) and whether the difference is significant.
- SPDD / SPEO: a permutation test that shuffles group labels. It gives the p-value and the
  *chance level*: the metric's distribution when groups do not matter, for these group sizes (two
  samples from one distribution already differ by about sigma / sqrt(n)).

Permutation scheme (documented because a test reproduces it with a naive loop). Group codes
are numbered in order of first appearance. Up to 255 groups: permutation r is
``fairviz.permute.relabel`` (two groups) or ``relabel_groups`` with the generator seeded by
``SeedSequence(random_state).spawn(n_perm)[r]`` (a uniformly random assignment of the group
labels with the observed group sizes). SPDD applies it to the positions of the scores sorted
once (stable), one compiled pass per permutation (`fairviz.permute`); SPEO applies it to the rows in their
order and integrates over the 2n breakpoints min(score, label) and label, sorted once for
every grouping of the same rows (`fairviz.permute_speo`). More groups: rows are sorted once by
score (stable); ``c`` holds the group codes in that order; ``rng =
numpy.random.default_rng(random_state)`` and each permutation is ``rng.shuffle(c)`` applied to
the previous state; each permutation's statistic is `fairviz.metrics`' step integral over ``c``,
without re-sorting (SPEO: over the 2n breakpoints, sorted once).
"""


from fairviz.metrics._rates import FOUR_FIFTHS
from fairviz.significance._band import DPBand, dp_band
from fairviz.significance._permutation import (
    FAST_PERM_MAX_GROUPS,
    PermutationResult,
    permutation_test,
    shared_nulls,
)
from fairviz.significance._rates import (
    FISHER_MIN_EXPECTED,
    RATE_TEST_COLUMNS,
    compare_proportions,
    impact_ratio_tests,
    rate_tests,
    scoring_rate_tests,
    two_proportion_ztest,
)

__all__ = [
    "two_proportion_ztest",
    "compare_proportions",
    "rate_tests",
    "impact_ratio_tests",
    "scoring_rate_tests",
    "PermutationResult",
    "permutation_test",
    "shared_nulls",
    "FISHER_MIN_EXPECTED",
    "FOUR_FIFTHS",
    "FAST_PERM_MAX_GROUPS",
    "RATE_TEST_COLUMNS",
    "DPBand",
    "dp_band",
]
