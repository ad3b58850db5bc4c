"""fairviz.significance: rate tests (z / Fisher) and the permutation test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact, norm, wasserstein_distance

from fairviz.significance import (
    PermutationResult,
    compare_proportions,
    permutation_test,
    rate_tests,
    two_proportion_ztest,
)


# ------------------------------------------------------------------------ proportion tests
@pytest.mark.parametrize("x1,n1,x2,n2", [(30, 100, 50, 120), (5, 40, 20, 45), (300, 1000, 330, 1000)])
def test_ztest_matches_textbook_and_chi2(x1, n1, x2, n2):
    z, p = two_proportion_ztest(x1, n1, x2, n2)
    p1, p2, pp = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z_ref = (p1 - p2) / math.sqrt(pp * (1 - pp) * (1 / n1 + 1 / n2))
    assert z == pytest.approx(z_ref, rel=1e-12)
    assert p == pytest.approx(2 * norm.sf(abs(z_ref)), rel=1e-12)
    # the pooled z-test is the uncorrected chi-square test of the 2x2 table (z^2 = chi2)
    chi2, p_chi2, _, _ = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert z * z == pytest.approx(chi2, rel=1e-10)
    assert p == pytest.approx(p_chi2, rel=1e-10)
    z_swapped, p_swapped = two_proportion_ztest(x2, n2, x1, n1)
    assert z_swapped == pytest.approx(-z) and p_swapped == pytest.approx(p)


def test_ztest_degenerate_and_invalid():
    assert two_proportion_ztest(0, 10, 0, 20) == (0.0, 1.0)
    assert two_proportion_ztest(10, 10, 20, 20) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_ztest(11, 10, 1, 5)
    with pytest.raises(ValueError):
        two_proportion_ztest(0, 0, 1, 5)


def test_fisher_for_small_expected_counts():
    res = compare_proportions(1, 8, 6, 9)  # expected counts below 5
    assert res["test"] == "fisher"
    ref = fisher_exact([[1, 7], [6, 3]])
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert res["statistic"] == pytest.approx(ref.statistic)
    big = compare_proportions(40, 100, 60, 100)
    assert big["test"] == "z" and big["min_expected"] == pytest.approx(50.0)


def test_rate_tests_reference_ratios_and_flags():
    selected = {"A": 60, "B": 30, "C": 1, "D": 50}
    totals = {"A": 100, "B": 100, "C": 3, "D": 100}
    df = rate_tests(selected, totals)
    assert list(df["group"]) == ["A", "B", "C", "D"]
    ref = df.loc[df["reference"]]
    assert list(ref["group"]) == ["A"] and ref["test"].item() == ""
    b = df.set_index("group").loc["B"]
    assert b["impact_ratio"] == pytest.approx(0.5) and b["four_fifths_fail"]
    assert b["test"] == "z" and b["p_value"] < 1e-4 and b["significant"]
    c = df.set_index("group").loc["C"]
    assert c["small_group"] and c["test"] == "fisher" and not c["excluded"]
    d = df.set_index("group").loc["D"]
    assert d["impact_ratio"] == pytest.approx(50 / 60) and not d["four_fifths_fail"]


def test_rate_tests_exclude_small_groups_keeps_counts():
    selected = {"A": 60, "B": 30, "tiny": 3}
    totals = {"A": 100, "B": 100, "tiny": 3}  # "tiny" has the highest rate but < 2 % of rows
    kept = rate_tests(selected, totals).set_index("group")
    assert kept.loc["tiny", "reference"]
    excl = rate_tests(selected, totals, exclude_small=True).set_index("group")
    assert excl.loc["A", "reference"] and not excl.loc["tiny", "reference"]
    assert excl.loc["tiny", "excluded"] and math.isnan(excl.loc["tiny", "impact_ratio"])
    assert excl.loc["tiny", "n"] == 3 and excl.loc["tiny", "selected"] == 3
    assert excl.loc["B", "impact_ratio"] == pytest.approx(0.5)


def test_rate_tests_bad_input():
    with pytest.raises(ValueError, match="same groups"):
        rate_tests({"A": 1}, {"A": 2, "B": 3})
    with pytest.raises(ValueError, match="selected"):
        rate_tests({"A": 5, "B": 1}, {"A": 2, "B": 3})
    with pytest.raises(ValueError, match="alpha"):
        rate_tests({"A": 1, "B": 1}, {"A": 2, "B": 3}, alpha=0)


def test_impact_and_scoring_rate_tests_use_metrics_rates(rng):
    metrics = pytest.importorskip("fairviz.metrics")
    from fairviz.significance import impact_ratio_tests, scoring_rate_tests

    n = 3000
    g = rng.choice(["a", "b", "c"], n, p=[0.6, 0.39, 0.01])
    s = np.clip(rng.beta(2, 4, n) + 0.1 * (g == "a"), 0, 1)
    df = impact_ratio_tests(s, g, 0.4).set_index("group")
    for k, rate in metrics.selection_rates(s, g, 0.4).items():
        assert df.loc[k, "rate"] == pytest.approx(rate)
        assert df.loc[k, "selected"] == np.sum(s[g == k] > 0.4)
    for k, ratio in metrics.impact_ratio(s, g, 0.4).items():
        assert df.loc[k, "impact_ratio"] == pytest.approx(ratio)
    sr = scoring_rate_tests(s, g).set_index("group")
    table = metrics.scoring_rate_table(s, g).set_index("group")
    for k in table.index:
        assert sr.loc[k, "rate"] == pytest.approx(table.loc[k, "scoring_rate"])
        assert sr.loc[k, "selected"] == np.sum(s[g == k] > np.median(s))
        assert sr.loc[k, "small_group"] == table.loc[k, "small_group"]


# ------------------------------------------------------------------------ permutation test
def _naive_null(scores, groups, n_perm, seed, stat):
    """The documented scheme, written as a plain loop: sort by score (stable), shuffle the codes."""
    order = np.argsort(scores, kind="stable")
    xs = np.asarray(scores)[order]
    codes = np.unique(np.asarray(groups), return_inverse=True)[1][order].astype(np.int64)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_perm):
        rng.shuffle(codes)
        out.append(stat(xs, codes, order))
    return np.array(out)


def _naive_relabel_null(scores, groups, n_perm, seed):
    """The documented SPDD scheme as a plain loop: permutation r relabels the sorted scores with
    `fairviz.permute.relabel` (two groups) or `relabel_groups` (more), seeded by
    SeedSequence(seed).spawn(n_perm)[r]; the statistic is scipy's W1 (two groups) or
    `fairviz.metrics.spdd`."""
    from fairviz import metrics
    from fairviz.permute import relabel, relabel_groups

    xs = np.sort(np.asarray(scores))
    counts = np.bincount(pd.factorize(np.asarray(groups))[0])  # codes in order of first appearance
    out = []
    for sd in np.random.SeedSequence(seed).spawn(n_perm):
        c = np.zeros(len(xs), dtype=np.uint8)
        rng = np.random.Generator(np.random.PCG64(sd))
        if len(counts) == 2:
            relabel(rng, len(xs), int(counts[1]), c)
            out.append(wasserstein_distance(xs[c == 0], xs[c == 1]))
        else:
            relabel_groups(rng, counts, c)
            out.append(metrics.spdd(xs, c))
        assert (np.bincount(c, minlength=len(counts)) == counts).all()
    return np.array(out)


def _naive_speo_null(scores, labels, groups, n_perm, seed):
    """The documented SPEO scheme as a plain loop: permutation r relabels the rows (in their
    order) with `relabel` / `relabel_groups`, seeded by SeedSequence(seed).spawn(n_perm)[r];
    the statistic is `fairviz.metrics.speo` of that labeling."""
    from fairviz import metrics
    from fairviz.permute import relabel, relabel_groups

    n = len(scores)
    counts = np.bincount(pd.factorize(np.asarray(groups))[0])  # codes in order of first appearance
    out = []
    for sd in np.random.SeedSequence(seed).spawn(n_perm):
        c = np.zeros(n, dtype=np.uint8)
        rng = np.random.Generator(np.random.PCG64(sd))
        if len(counts) == 2:
            relabel(rng, n, int(counts[1]), c)
        else:
            relabel_groups(rng, counts, c)
        assert (np.bincount(c, minlength=len(counts)) == counts).all()
        out.append(metrics.speo(scores, labels, c))
    return np.array(out)


def test_relabel_is_uniform_over_labelings(rng):
    from math import comb

    from scipy.stats import chisquare

    from fairviz.permute import relabel

    n, n1, draws = 7, 3, 35_000
    seen = {}
    out = np.zeros(n, dtype=np.uint8)
    for _ in range(draws):
        relabel(rng, n, n1, out)
        key = out.tobytes()
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == comb(n, n1) and all(sum(k) == n1 for k in seen)
    assert chisquare(list(seen.values())).pvalue > 1e-3
    for n, n1 in ((1, 0), (1, 1), (1000, 1), (1000, 999), (100_000, 31_337)):
        out = np.zeros(n, dtype=np.uint8)
        relabel(rng, n, n1, out)
        assert int(out.sum()) == n1


def test_relabel_groups_is_uniform_over_labelings(rng):
    from math import factorial

    from scipy.stats import chisquare

    from fairviz.permute import relabel_groups

    counts, draws = np.array([2, 1, 3]), 30_000
    seen = {}
    out = np.zeros(6, dtype=np.uint8)
    for _ in range(draws):
        relabel_groups(rng, counts, out)
        seen[out.tobytes()] = seen.get(out.tobytes(), 0) + 1
    assert len(seen) == factorial(6) // (factorial(2) * factorial(1) * factorial(3))  # 60
    assert chisquare(list(seen.values())).pvalue > 1e-3
    for counts in ([1, 1, 99_998], [33_333, 33_333, 33_334], [5] * 40):
        out = np.zeros(sum(counts), dtype=np.uint8)
        relabel_groups(rng, np.array(counts), out)
        assert np.bincount(out, minlength=len(counts)).tolist() == list(counts)


def test_two_group_block_sums_match_spdd_and_progress_is_reported(rng):
    from fairviz import metrics
    from fairviz.permute import relabel, spdd_null

    n, n1 = 50_000, 12_345
    xs = np.sort(np.round(rng.beta(2, 3, n), 4))  # ties too
    seen = []
    null = spdd_null(xs, [n - n1, n1], 24, 5, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (24, 24) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    np.testing.assert_array_equal(null, spdd_null(xs, [n - n1, n1], 24, 5))  # progress, slicing change nothing
    for r, sd in enumerate(np.random.SeedSequence(5).spawn(24)[:6]):
        c = np.zeros(n, dtype=np.uint8)
        relabel(np.random.Generator(np.random.PCG64(sd)), n, n1, c)
        assert null[r] == pytest.approx(metrics.spdd(xs, c), abs=1e-13)


def test_k_group_block_sums_match_spdd(rng):
    from fairviz import metrics
    from fairviz.permute import observed_spdd, relabel_groups, spdd_null

    for n, counts, ties in ((40_000, [10_000, 20_000, 9_000, 1_000], True), (9_000, [300] * 30, False)):
        xs = np.sort(np.round(rng.random(n), 3) if ties else rng.random(n))
        counts = np.array(counts)
        null = spdd_null(xs, counts, 6, 11)
        for r, sd in enumerate(np.random.SeedSequence(11).spawn(6)):
            c = np.zeros(n, dtype=np.uint8)
            relabel_groups(np.random.Generator(np.random.PCG64(sd)), counts, c)
            assert null[r] == pytest.approx(metrics.spdd(xs, c), abs=1e-12)
            assert observed_spdd(xs, c, counts) == pytest.approx(metrics.spdd(xs, c), abs=1e-12)


def test_permutation_matches_naive_loop_two_groups(rng):
    n = 400
    g = rng.integers(0, 2, n)
    s = np.round(np.clip(rng.beta(2, 5, n) + 0.04 * g, 0, 1), 3)  # some ties
    res = permutation_test(s, g, n_perm=150, random_state=7)
    null = _naive_relabel_null(s, g, 150, 7)
    np.testing.assert_allclose(res.null_values, null, rtol=0, atol=1e-12)
    assert res.observed == pytest.approx(wasserstein_distance(s[g == 0], s[g == 1]), abs=1e-12)
    assert res.p_value == pytest.approx((1 + np.sum(null >= res.observed - 1e-12)) / 151)
    assert res.null_mean == pytest.approx(null.mean())
    assert res.null_quantiles[0.95] == pytest.approx(np.quantile(null, 0.95))


def test_permutation_matches_naive_loop_three_groups_and_speo(rng):
    metrics = pytest.importorskip("fairviz.metrics")
    n = 300
    g = rng.choice([0, 1, 2], n)
    s = np.round(rng.random(n) ** (1 + 0.3 * g), 2)
    y = np.round(np.clip(s + rng.normal(0, 0.2, n), 0, 1), 2)
    res = permutation_test(s, g, n_perm=60, random_state=3)
    null = _naive_relabel_null(s, g, 60, 3)
    np.testing.assert_allclose(res.null_values, null, atol=1e-12)
    assert res.observed == pytest.approx(metrics.spdd(s, g), abs=1e-12)
    res = permutation_test(s, g, y, metric="speo", n_perm=60, random_state=3)
    null = _naive_speo_null(s, y, g, 60, 3)
    np.testing.assert_allclose(res.null_values, null, atol=1e-12)
    assert res.observed == pytest.approx(metrics.speo(s, y, g), abs=1e-12)


def test_permutation_many_groups_takes_the_documented_shuffles(rng):
    metrics = pytest.importorskip("fairviz.metrics")
    n = 2_000
    g = np.concatenate([np.arange(300), rng.choice(300, n - 300)])  # more than FAST_PERM_MAX_GROUPS: the generic path
    s = np.round(rng.random(n), 2)
    res = permutation_test(s, g, n_perm=15, random_state=4)
    null = _naive_null(s, g, 15, 4, lambda xs, c, _: metrics.spdd(xs, c))
    np.testing.assert_allclose(res.null_values, null, atol=1e-12)


def test_permutation_of_twenty_groups_relabels(rng):
    n = 3_000
    g = np.concatenate([np.arange(20), rng.choice(20, n - 20)])
    s = np.round(rng.random(n), 2)
    y = np.clip(s + rng.normal(0, 0.2, n), 0, 1)
    res = permutation_test(s, g, n_perm=12, random_state=4)
    np.testing.assert_allclose(res.null_values, _naive_relabel_null(s, g, 12, 4), atol=1e-12)
    res = permutation_test(s, g, y, metric="speo", n_perm=8, random_state=4)
    np.testing.assert_allclose(res.null_values, _naive_speo_null(s, y, g, 8, 4), atol=1e-12)


def test_permutation_progress_does_not_change_the_result(rng):
    s = rng.random(500)
    y = rng.random(500)
    g = rng.integers(0, 3, 500)
    seen = []
    a = permutation_test(s, g, y, metric="speo", n_perm=40, random_state=1)
    b = permutation_test(s, g, y, metric="speo", n_perm=40, random_state=1, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(a.null_values, b.null_values)
    assert seen[-1] == (40, 40) and [d for d, _ in seen] == sorted({d for d, _ in seen})


def test_permutation_detects_real_gap_and_not_chance(rng):
    n = 600
    g = rng.integers(0, 2, n)
    real = permutation_test(np.clip(rng.beta(2, 5, n) + 0.2 * g, 0, 1), g, n_perm=200)
    assert real.p_value == pytest.approx(1 / 201)
    null_ps = [permutation_test(rng.random(200), rng.integers(0, 2, 200), n_perm=99, random_state=i).p_value
               for i in range(30)]
    assert 0.25 < np.mean(null_ps) < 0.75  # p-values are uniform under the null
    assert isinstance(real, PermutationResult) and real.chance_level == real.null_quantiles[0.95]
    d = real.to_dict()
    assert set(d) >= {"observed", "p_value", "null_mean", "null_quantiles", "n_perm"}


def test_chance_level_shrinks_like_one_over_sqrt_n(rng):
    small = permutation_test(rng.random(400), rng.integers(0, 2, 400), n_perm=300)
    large = permutation_test(rng.random(6400), rng.integers(0, 2, 6400), n_perm=300)
    assert small.null_mean / large.null_mean == pytest.approx(4.0, rel=0.2)


def test_permutation_bad_input():
    with pytest.raises(ValueError, match="metric"):
        permutation_test([0.1, 0.2], [0, 1], metric="auc")
    with pytest.raises(ValueError, match="labels"):
        permutation_test([0.1, 0.2], [0, 1], metric="speo")
    with pytest.raises(ValueError, match="two groups"):
        permutation_test([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="n_perm"):
        permutation_test([0.1, 0.2], [0, 1], n_perm=0)
    with pytest.raises(ValueError, match="length"):
        permutation_test([0.1, 0.2], [0, 1, 1])


# ------------------------------------------------------------------------ DP(τ) band
def test_dp_band_matches_the_dkw_box_by_brute_force(rng):
    metrics = pytest.importorskip("fairviz.metrics")
    optimize = pytest.importorskip("scipy.optimize")
    from fairviz.significance import dp_band

    n = (150, 90, 40)
    s = np.r_[rng.beta(2, 5, n[0]), rng.beta(3, 4, n[1]), rng.beta(2, 2, n[2])]
    g = np.repeat([0, 1, 2], n)
    curve = metrics.dp_curve(s, g)
    taus = np.array([0.0, 0.2, 0.35, 0.5, 0.7, 0.99])
    band = dp_band(curve, {0: n[0], 1: n[1], 2: n[2]}, taus=taus, level=0.9)
    np.testing.assert_allclose(band.value, curve.at(taus), atol=1e-12)
    # each group's radius solves 2·exp(−2nε²) = 1 − 0.9^(1/3) (DKW–Massart, Šidák over 3 groups)
    for ng, r in zip(n, band.radius):
        eps = optimize.brentq(lambda e, ng=ng: 2 * np.exp(-2 * ng * e * e) - (1 - 0.9 ** (1 / 3)), 1e-9, 1.0)
        assert r == pytest.approx(eps, rel=1e-9)
    # the band: the smallest and largest max − min over the choices of rates inside the boxes
    for j, t in enumerate(taus):
        rates = [np.mean(s[g == k] > t) for k in range(3)]
        box = [(max(0.0, p - r), min(1.0, p + r)) for p, r in zip(rates, band.radius)]
        # the extremes are reached with every rate at a box end or at another box's end
        ends = np.ravel(box)
        cand = [np.unique(np.clip(ends, a, b)) for a, b in box]
        corners = np.array(np.meshgrid(*cand)).reshape(3, -1)
        spread = corners.max(axis=0) - corners.min(axis=0)
        assert band.low[j] == pytest.approx(spread.min(), abs=1e-12)
        assert band.high[j] == pytest.approx(spread.max(), abs=1e-12)
    assert band.level == 0.9 and "all τ at once" in band.label
    with pytest.raises(ValueError, match="level"):
        dp_band(curve, list(n), level=1.0)
    with pytest.raises(ValueError, match="group_counts"):
        dp_band(curve, [n[0]])


@pytest.mark.parametrize("delta", [0.0, 0.1])
def test_dp_band_covers_the_whole_true_curve(delta):
    # Scores 0.1 + 0.8·Beta(3, 3), group 1 shifted by δ: the true DP(τ) is known at every τ.
    # 100 seeded trials of 300 rows: the band must contain the true curve on the whole grid in
    # ≥ 93 of them (nominal 95 %; a pointwise percentile bootstrap band never contains the
    # true 0 of a fair model). The full study is bench/bench_band.py.
    metrics = pytest.importorskip("fairviz.metrics")
    stats = pytest.importorskip("scipy.stats")
    from fairviz.significance import dp_band

    taus = np.linspace(0.0, 1.0, 101)
    true = np.abs(stats.beta.sf((taus - 0.1) / 0.8, 3, 3) - stats.beta.sf((taus - 0.1 - delta) / 0.8, 3, 3))
    rng = np.random.default_rng(11)
    g = np.arange(300) % 2
    covered = 0
    for _ in range(100):
        x = 0.1 + 0.8 * rng.beta(3.0, 3.0, 300) + delta * g
        band = dp_band(metrics.dp_curve(x, g), [150, 150], taus=taus)
        covered += bool(np.all((band.low <= true + 1e-12) & (true <= band.high + 1e-12)))
    assert covered >= 93, covered


def test_shared_nulls_reuse_the_first_draws_of_a_longer_test():
    """Inside `shared_nulls`, a shorter test of the same data and seed reads the first draws of a
    longer one: exactly the numbers of a fresh test, for the fast SPDD path, more groups and SPEO."""
    from fairviz.significance import shared_nulls

    rng = np.random.default_rng(3)
    x = rng.random(400)
    y = np.clip(x + rng.normal(0, 0.2, 400), 0, 1)
    for g, metric in ((rng.integers(0, 2, 400), "spdd"), (rng.integers(0, 3, 400), "spdd"),
                      (rng.integers(0, 2, 400), "speo")):
        fresh = permutation_test(x, g, y, metric=metric, n_perm=30, random_state=5)
        with shared_nulls() as store:
            long = permutation_test(x, g, y, metric=metric, n_perm=60, random_state=5)
            short = permutation_test(x, g, y, metric=metric, n_perm=30, random_state=5)
            other_seed = permutation_test(x, g, y, metric=metric, n_perm=30, random_state=6)
        assert len(store) == 2
        np.testing.assert_array_equal(long.null_values[:30], fresh.null_values)
        np.testing.assert_array_equal(short.null_values, fresh.null_values)
        assert short.p_value == fresh.p_value and short.null_quantiles == fresh.null_quantiles
        assert not np.array_equal(other_seed.null_values, fresh.null_values)
        # the same groups under other names (codes follow first appearance) are the same test
        with shared_nulls(store):
            renamed = permutation_test(x, np.where(g == 0, "a", np.where(g == 1, "b", "c")), y, metric=metric,
                                       n_perm=30, random_state=5)
        np.testing.assert_array_equal(renamed.null_values, fresh.null_values)
    assert fresh.resolution == 1 / 31 and fresh.to_dict()["p_value_resolution"] == 1 / 31


def test_shared_nulls_do_not_mix_data_or_unseeded_draws():
    from fairviz.significance import shared_nulls

    rng = np.random.default_rng(4)
    x, g = rng.random(300), rng.integers(0, 2, 300)
    with shared_nulls() as store:
        a = permutation_test(x, g, n_perm=20, random_state=1)
        b = permutation_test(x[::-1].copy(), g, n_perm=20, random_state=1)
        permutation_test(x, g, n_perm=20, random_state=None)
    assert len(store) == 2 and a.observed != b.observed
    with shared_nulls(store), shared_nulls() as inner:  # a nested block keeps the outer store
        permutation_test(x, g, n_perm=10, random_state=2)
    assert inner is store and len(store) == 3


def test_two_group_speo_permutations_match_the_metric_on_each_shuffle(rng):
    """The two-group SPEO statistic against `metrics.speo` on the same shuffles (ties, a group
    with no label above some τ, and the generic many-tag kernel for three groups)."""
    metrics = pytest.importorskip("fairviz.metrics")
    n = 300
    g = rng.choice(["b", "a"], n, p=[0.8, 0.2])
    s = np.round(rng.random(n) ** (1 + 0.3 * (g == "a")), 2)
    y = np.round(np.clip(s + rng.normal(0, 0.2, n), 0, 1), 1)
    y[(g == "a") & (y > 0.8)] = 0.5
    res = permutation_test(s, g, y, metric="speo", n_perm=40, random_state=9)
    null = _naive_speo_null(s, y, g, 40, 9)
    np.testing.assert_allclose(res.null_values, null, atol=1e-12)
    assert res.observed == pytest.approx(metrics.speo(s, y, g), abs=1e-12)
