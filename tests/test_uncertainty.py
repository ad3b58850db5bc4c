"""Uncertainty of distances (fairviz.uncertainty): intervals that cover a fair model's value 0.

The full coverage study is bench/bench_coverage.py (docs/STATISTICS.md); here a small, seeded
version of it at true SPDD = 0 and far from 0, plus the pieces against independent references.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fairviz import metrics
from fairviz.significance import permutation_test
from fairviz.uncertainty import auto_n_perm, best_and_ties, describe, distance_uncertainty


def _fair(rng, n=200, k=2):
    """Two (or k) groups from one distribution: true SPDD = 0."""
    return 0.1 + 0.8 * rng.beta(3.0, 3.0, n), np.arange(n) % k


@pytest.mark.parametrize("k", [2, 4])
def test_interval_and_bound_contain_zero_for_a_fair_model(k):
    # 100 seeded trials at true SPDD = 0: the percentile interval of earlier versions contained
    # 0 in none of them (a distance's resamples are never below 0).
    rng = np.random.default_rng(20)
    results = []
    for _ in range(100):
        x, g = _fair(rng, 200, k)
        results.append(metrics.audit(x, g, n_boot=50, random_state=int(rng.integers(2**31))).spdd)
    covered = sum(r.ci_low <= 0.0 <= r.ci_high for r in results)
    assert covered >= 90, covered
    assert all(r.detail.upper >= 0.0 and r.detail.n_perm == 999 for r in results)


def test_interval_covers_a_clear_gap_and_excludes_zero():
    # group 1 shifted by 0.1 inside [0.1, 1]: true SPDD = 0.1 exactly (a location family)
    rng = np.random.default_rng(5)
    covered = above_zero = 0
    for _ in range(40):
        x, g = _fair(rng, 400)
        x = x + 0.1 * g
        u = metrics.audit(x, g, n_boot=200, n_perm=99, random_state=int(rng.integers(2**31))).spdd.detail
        covered += u.ci_low <= 0.1 <= u.ci_high
        above_zero += u.ci_low > 0.0
        assert u.significant and u.ci_low <= u.value <= u.ci_high
    assert covered >= 35 and above_zero == 40, (covered, above_zero)


def test_p_value_matches_the_permutation_test():
    rng = np.random.default_rng(1)
    x, g = _fair(rng, 300)
    x = np.clip(x + 0.02 * g, 0, 1)
    perm = permutation_test(x, g, n_perm=199, random_state=3)
    u = distance_uncertainty(metrics.spdd(x, g), np.array([0.05, 0.06]), perm.null_values)
    assert u.p_value == pytest.approx(perm.p_value, abs=1e-15)
    assert u.chance_mean == pytest.approx(perm.null_mean) and u.n_perm == 199


def test_pieces_by_hand():
    reps = np.linspace(0.0, 0.1, 101)  # quantiles are exact: q(a) = 0.1·a
    null = np.linspace(0.0, 0.02, 41)
    u = distance_uncertainty(0.08, reps, null, level=0.9)  # p = 1/42 ≤ 0.05: lower end > 0
    assert u.p_value == pytest.approx(1 / 42)
    assert u.upper == pytest.approx(0.09) and u.ci_high == pytest.approx(0.095)
    # min(θ̂ − null's 95 % quantile, 2·θ̂ − q_hi) = min(0.08 − 0.019, 0.16 − 0.095)
    assert u.ci_low == pytest.approx(0.061)
    assert u.debiased == pytest.approx(math.sqrt(0.08**2 - 0.01**2))
    weak = distance_uncertainty(0.01, reps, null, level=0.9)
    assert weak.ci_low == 0.0 and not weak.significant and weak.debiased == 0.0
    none = distance_uncertainty(0.08, reps, [], level=0.9)  # no test: never a lower end above 0
    assert math.isnan(none.p_value) and none.ci_low == 0.0
    no_boot = distance_uncertainty(0.08, [], null)
    assert math.isnan(no_boot.upper) and math.isnan(no_boot.ci_low)


def test_describe_says_what_the_numbers_mean():
    reps = np.linspace(0.0, 0.1, 101)
    fair = distance_uncertainty(0.018, reps, np.linspace(0.0, 0.04, 99))
    text = describe("SPDD", fair)
    assert text.startswith("SPDD 0.018 (as measured)") and "not distinguishable from chance" in text
    assert "at most 0.095" in text and "[0.000, 0.098]" in text
    unfair = describe("SPDD", {**distance_uncertainty(0.09, reps, np.linspace(0, 0.01, 99)).to_dict(), "level": 0.95})
    assert "more than chance alone explains (p ≤ 0.01)" in unfair and "once chance is taken out" in unfair
    assert describe("SPEO", {"value": None}) == "SPEO: not computed"
    # tiny distances keep two significant digits
    tiny = describe("SPDD", distance_uncertainty(0.00062, [0.0011, 0.0013], [0.0004]))
    assert tiny.startswith("SPDD 0.0006 ") and "at most 0.0013" in tiny


def test_audit_n_perm_and_budget():
    rng = np.random.default_rng(2)
    x, g = _fair(rng, 100)
    assert metrics.audit(x, g, n_boot=0).spdd.detail.n_perm == 0  # no bootstrap, no test by default
    assert metrics.audit(x, g, n_boot=0, n_perm=19).spdd.detail.n_perm == 19
    with pytest.raises(ValueError, match="n_perm"):
        metrics.audit(x, g, n_boot=10, n_perm=-1)
    assert auto_n_perm(100, 2) == 999 and auto_n_perm(10**7, 2) == 39 and auto_n_perm(10**6, 1000) == 0


def test_best_and_ties():
    best, ties = best_and_ties([0.02, 0.01, 0.05, float("nan")], [0.0, 0.0, 0.035, 0.0],
                               [0.04, 0.03, 0.07, 0.1], higher_is_better=False)
    assert best == 1 and ties == [True, False, False, False]
    best, ties = best_and_ties([0.6, 0.62], [float("nan")] * 2, [float("nan")] * 2, higher_is_better=True)
    assert best == 1 and ties == [False, False]
    assert best_and_ties([float("nan")], [0], [1], True) == (None, [False])
