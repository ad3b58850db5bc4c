"""Several sensitive attributes: each on its own and their intersection, as hiring law asks.

`audit_attributes(scores, attributes, labels=None, ...)` audits every attribute column (e.g.
``sex``, ``race``) and, by default, their intersection (``sex × race`` with groups such as
``F × Black``). For each it reports:

- `fairviz.metrics.audit` on the rows where the attribute is known (SPDD, SPEO, PCC, SRCC with
  bootstrap intervals, group counts, who the gap favours);
- three multi-group summaries of the gap between the group score distributions, all exact:

  * ``max_pairwise_w1``   the largest pairwise W1 between two groups (the worst pair; also
    readable as ``spdd`` for older callers, though it is not `fairviz.metrics.spdd`);
  * ``spdd_max_min``      ∫ (max_g − min_g) P(Ŷ > τ | g) dτ = `metrics.spdd` (the DP(τ) curve's
    area). Pointwise, max − min ≥ |F_a − F_b| for every pair, so this is ≥ the largest pairwise
    W1, with equality for two groups or when one pair is the extreme pair at every τ. It is
    larger when the most- and least-favoured groups change along τ (A above B at low thresholds,
    C above A at high ones): it charges the worst gap at each threshold, wherever it is;
  * ``spdd_mean_to_pooled`` the unweighted mean of each group's W1 to the pooled distribution: a
    "typical" deviation, ≤ the largest pairwise W1 (for two groups it is a fraction of it that
    depends on the group shares), useful when there are many small intersectional groups.

- the pairwise W1 matrix between groups (exact, from sorted data: one global sort, reused);
- NYC Local Law 144's scoring-rate table (median split, impact ratios) with a two-proportion /
  Fisher test per group against the highest group (`fairviz.significance`), and optionally the
  four-fifths check at a threshold τ and a permutation test of SPDD.

Rows whose attribute is missing (NaN, None, an empty or blank cell) are excluded; text such as
"NA", "None" or "unknown" is a group like any other (North America, a category code) unless the
caller lists it in ``missing_values`` (case and surrounding spaces ignored). They are excluded from that attribute's numbers and counted (``n_missing``); never dropped
silently. Groups under 2 % of the known rows are flagged (``small_groups``) and, with
``exclude_small=True``, left out of the impact ratios while their counts stay in the tables (LL144).
"""

from fairviz.groups._audit import audit_attributes, audit_intervals, skip_reason
from fairviz.groups._columns import INTERSECTION_SEPARATOR, MISSING_VALUES, GroupColumn, prepare_groups
from fairviz.groups._distances import pairwise_w1, w1_sorted, w1_to_pooled
from fairviz.groups._result import AttributeAudit, MultiAuditResult

__all__ = [
    "audit_intervals",
    "MISSING_VALUES",
    "INTERSECTION_SEPARATOR",
    "GroupColumn",
    "prepare_groups",
    "w1_sorted",
    "pairwise_w1",
    "w1_to_pooled",
    "AttributeAudit",
    "MultiAuditResult",
    "audit_attributes",
    "skip_reason",
]
