"""How much resampling an interactive audit does: bootstrap resamples and permutations that fit
a time budget on the shared server (no Streamlit here, so the policy is tested directly)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fairviz.metrics._little import LITTLE_EXPONENT, LITTLE_MAX_RATIO, LITTLE_MIN_ROWS, LITTLE_MIN_SUBSET
from fairviz.report import auto_n_perm

#: Resamples offered on request (a button) when the automatic budget allows none.
ON_REQUEST_N_BOOT = 200
#: Seconds the HTML report's bootstrap may take, and its most resamples.
REPORT_BUDGET_S = 15.0
REPORT_MAX_N_BOOT = 200
#: Work budget (rows × groups × shuffles) of the page's SPDD permutation test, and its fewest shuffles.
PERMUTATION_BUDGET = 1.5e8
PERMUTATION_MIN = 20

#: Seconds per bootstrap resample per row it reads, one thread, from `bench/bench_auditor_path.py
#: --only-bootstrap` (bench/RESULTS.md, 2-core machine, 2026-12-02) with a quarter's margin: SPDD
#: alone (no labels; 4–15 ms per resample of 10⁶ rows for 2–6 groups) and all four metrics
#: (48–63 ms). The little bootstraps cost about the same per row of the subset they resample.
BOOT_COST_PER_ROW = {False: 1.5e-8, True: 8e-8}


def rows_per_resample(n: int) -> int:
    """Rows one bootstrap resample of an audit reads: all ``n`` for the exact bootstrap, below
    `fairviz.metrics.LITTLE_MIN_ROWS`; one subset of the bag of little bootstraps from there on.
    A subset has b_g = max(n_g^0.7, min(n_g, 500), n_g / 64) rows of group g
    (`fairviz.metrics.LittleBootstrap.sizes`); for up to ten groups that is at most
    2·n^0.7 + n / 64 + 10·500 (Σ n_g^0.7 ≤ G^0.3·n^0.7)."""
    if n < LITTLE_MIN_ROWS:
        return int(n)
    bound = 2 * math.ceil(n ** LITTLE_EXPONENT) + -(-int(n) // LITTLE_MAX_RATIO) + 10 * LITTLE_MIN_SUBSET
    return min(int(n), bound)


def auto_n_boot(n: int, has_labels: bool, *, budget_s: float = 3.0, low: int = 100, high: int = 1000) -> int:
    """Bootstrap resamples that fit ``budget_s`` seconds for ``n`` rows: ``high`` for small data,
    fewer (a multiple of 50, at least ``low``) for large data, and 0 when even ``low`` would not
    fit — then the page offers to compute the intervals on request instead of making everyone wait.
    """
    if n <= 0:
        return 0
    per = boot_seconds(n, has_labels, 1)
    k = int(budget_s / per) if per > 0 else high
    if k < low:
        return 0
    return int(min(high, k // 50 * 50))


def boot_seconds(n: int, has_labels: bool, n_boot: int) -> float:
    """Rough time of ``n_boot`` resamples on ``n`` rows (for telling the user what a click costs)."""
    return BOOT_COST_PER_ROW[bool(has_labels)] * rows_per_resample(n) * n_boot


@dataclass(frozen=True)
class IntervalPlan:
    """What the Audit page does about intervals for one attribute.

    ``n_boot``: resamples to run now (0: none yet); ``stored``: the numbers come with the run
    (``n_boot`` is then how many it used); ``offer``: resamples a button offers instead, and
    ``offer_seconds`` about how long they take.
    """

    n_boot: int
    stored: bool = False
    offer: int = 0
    offer_seconds: float = 0.0


def interval_plan(n: int, has_labels: bool, *, stored_n_boot: int | None = None,
                  requested: bool = False) -> IntervalPlan:
    """Intervals for ``n`` rows: those stored with a run (``stored_n_boot``, its resample count) as
    they are; else `auto_n_boot`'s count; when that is 0, `ON_REQUEST_N_BOOT` once the user asked
    (``requested``), otherwise an offer of that many."""
    if stored_n_boot is not None:
        return IntervalPlan(n_boot=int(stored_n_boot or 0), stored=True)
    k = auto_n_boot(n, has_labels)
    if k == 0 and requested:
        k = ON_REQUEST_N_BOOT
    if k:
        return IntervalPlan(n_boot=k)
    return IntervalPlan(n_boot=0, offer=ON_REQUEST_N_BOOT,
                        offer_seconds=boot_seconds(n, has_labels, ON_REQUEST_N_BOOT))


def report_n_boot(n: int, has_labels: bool) -> int:
    """Bootstrap resamples of the downloadable HTML report on ``n`` rows (`REPORT_BUDGET_S`)."""
    return auto_n_boot(n, has_labels, budget_s=REPORT_BUDGET_S, high=REPORT_MAX_N_BOOT)


def permutation_count(n: int, n_groups: int) -> int:
    """Shuffles of the page's SPDD permutation test: 1,000 for two groups up to about 1.5M rows
    (`fairviz.report.auto_n_perm` within `PERMUTATION_BUDGET`), fewer for more groups."""
    return auto_n_perm(n, n_groups, budget=PERMUTATION_BUDGET, low=PERMUTATION_MIN)
