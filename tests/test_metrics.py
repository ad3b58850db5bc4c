"""fairviz.metrics against references nobody here wrote (scipy, fair-scoring, fairlearn) and
against brute force at every threshold."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairviz import metrics as M
from fairviz.metrics import _bootstrap, _resample, _sort, _validate, _w1

# ------------------------------------------------------------------------------------------
# helpers: brute force straight from the definitions
# ------------------------------------------------------------------------------------------


def bf_rates(x, g, tau):
    """P(x > tau | g) for each sorted group label."""
    x, g = np.asarray(x), np.asarray(g)
    return np.array([(x[g == lab] > tau).mean() for lab in sorted(set(g.tolist()))])


def bf_dp(x, g, tau):
    r = bf_rates(x, g, tau)
    return r.max() - r.min()


def bf_eo_gap(x, y, g, tau):
    x, y, g = map(np.asarray, (x, y, g))
    r = []
    for lab in sorted(set(g.tolist())):
        m = g == lab
        B = (y[m] > tau).sum()
        A = ((x[m] > tau) & (y[m] > tau)).sum()
        r.append(A / B if B else 0.0)
    return max(r) - min(r)


def bf_integral(fn, points):
    """∫₀¹ of a right-continuous step function that only jumps at `points` (exact)."""
    edges = np.unique(np.concatenate([[0.0, 1.0], np.asarray(points, dtype=float)]))
    edges = edges[(edges >= 0) & (edges <= 1)]
    return sum(fn(edges[i]) * (edges[i + 1] - edges[i]) for i in range(len(edges) - 1))


def w1_scipy(x, g):
    x, g = np.asarray(x), np.asarray(g)
    labs = sorted(set(g.tolist()))
    return ss.wasserstein_distance(x[g == labs[0]], x[g == labs[1]])


def two_groups(rng, n0, n1, ties=None):
    a = rng.random(n0)
    b = rng.beta(2, 5, n1)
    if ties is not None:
        a, b = np.round(a, ties), np.round(b, ties)
    x = np.concatenate([a, b])
    g = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    p = rng.permutation(n0 + n1)
    return x[p], g[p]


# ------------------------------------------------------------------------------------------
# SPDD = W1 (scipy, fair-scoring)
# ------------------------------------------------------------------------------------------

CASES = {
    "random": (500, 700, None),
    "heavy ties": (400, 300, 1),
    "two decimals": (1000, 50, 2),
    "size one vs many": (1, 200, None),
    "many vs size one": (300, 1, None),
    "one vs one": (1, 1, None),
    "very unequal": (5, 20000, None),
    "equal sizes": (256, 256, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_spdd_equals_scipy_wasserstein(name, rng):
    n0, n1, ties = CASES[name]
    x, g = two_groups(rng, n0, n1, ties)
    ref = w1_scipy(x, g)
    assert abs(M.spdd(x, g) - ref) < 1e-12
    # the same through the general (string labels) path, the curve and the parts
    gs = np.where(g == 1, "b", "a")
    assert abs(M.spdd(x, gs) - ref) < 1e-12
    assert abs(M.dp_curve(x, g).integral() - ref) < 1e-12
    assert abs(sum(M.spdd_parts(x, g).values()) - ref) < 1e-12


def test_spdd_all_equal_and_extremes(rng):
    assert M.spdd(np.full(50, 0.3), np.arange(50) % 2) == 0.0
    x = np.r_[np.zeros(10), np.ones(10)]
    g = np.r_[np.zeros(10, int), np.ones(10, int)]
    assert M.spdd(x, g) == pytest.approx(1.0, abs=1e-15)
    # negative zero is zero (it must not flip into the other group's sign bit)
    x = np.array([-0.0, 0.5, 0.0, 0.25, -0.0, 1.0])
    g = np.array([0, 0, 1, 1, 1, 0])
    assert abs(M.spdd(x, g) - w1_scipy(np.abs(x), g)) < 1e-15


def test_integer_lattice_fallback_agrees(rng):
    # the int64 version used when n0·n1 ≥ 2^48 (float floors would no longer be exact)
    for n0, n1 in [(1, 1), (3, 7), (50, 2), (123, 77)]:
        a, b = np.sort(rng.random(n0)), np.sort(rng.random(n1))
        assert abs(_w1._w1_exact_int(a, b, n0, n1) - ss.wasserstein_distance(a, b)) < 1e-12


@pytest.mark.parametrize("gdtype", [np.int64, np.int32, np.uint8, bool])
def test_spdd_fast_path_group_dtypes(gdtype, rng):
    x, g = two_groups(rng, 300, 500)
    assert abs(M.spdd(x, g.astype(gdtype)) - w1_scipy(x, g)) < 1e-12
    # integer groups other than {0, 1} take the general path
    assert abs(M.spdd(x, (g * 7 + 3).astype(np.int64)) - w1_scipy(x, g)) < 1e-12


def test_spdd_array_likes(rng):
    x, g = two_groups(rng, 40, 60)
    ref = w1_scipy(x, g)
    assert M.spdd(list(x), list(g)) == pytest.approx(ref, abs=1e-12)
    assert M.spdd(pd.Series(x, index=np.arange(100) * 3), pd.Series(g).map({0: "f", 1: "m"})) == pytest.approx(ref, abs=1e-12)
    assert M.spdd(x.reshape(-1, 1), pd.Categorical(g)) == pytest.approx(ref, abs=1e-12)
    assert M.spdd(x.astype(np.float32).astype(np.float64), g) == pytest.approx(
        w1_scipy(x.astype(np.float32).astype(np.float64), g), abs=1e-12
    )


def test_spdd_matches_fair_scoring(rng):
    fs = pytest.importorskip("fairscoring.metrics")
    metric = fs.WassersteinMetric(fairness_type="IND", name="independence")
    for n0, n1, ties in [(300, 200, None), (150, 900, 2)]:
        x, g = two_groups(rng, n0, n1, ties)
        target = (rng.random(len(x)) < 0.5).astype(int)
        ref = metric.bias(x, target, g, groups=[0, 1], favorable_target=1, min_score=0.0, max_score=1.0).bias
        assert abs(M.spdd(x, g) - ref) < 1e-12


# ------------------------------------------------------------------------------------------
# DP(τ): brute force at many thresholds, including exactly at data values
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_groups", [2, 3, 6])
def test_dp_curve_matches_brute_force(n_groups, rng):
    n = 400
    x = np.round(rng.random(n), 2)
    x[:5] = [0.0, 1.0, 0.5, 0.5, 0.02]
    g = rng.integers(0, n_groups, n)
    curve = M.dp_curve(x, g)
    t = curve.thresholds
    assert t[0] == 0.0 and t[-1] == 1.0 and np.all(np.diff(t) > 0)
    assert curve.values.shape == (len(t) - 1,) and curve.rates.shape == (n_groups, len(t) - 1)
    assert curve.groups == tuple(range(n_groups))
    data_vals = np.unique(x)
    taus = np.concatenate([
        data_vals,  # exactly at data values (strict >)
        np.nextafter(data_vals, -1.0),
        np.nextafter(data_vals, 2.0),
        rng.random(200),
        [0.0, 1.0, -0.5, 1.5],
    ])
    want_dp = np.array([bf_dp(x, g, tau) for tau in taus])
    want_rates = np.stack([bf_rates(x, g, tau) for tau in taus], axis=1)
    np.testing.assert_allclose(curve.at(taus), want_dp, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.rates_at(taus), want_rates, rtol=0, atol=1e-15)
    assert M.spdd(x, g) == pytest.approx(bf_integral(lambda tau: bf_dp(x, g, tau), x), abs=1e-12)
    assert curve.integral() == pytest.approx(M.spdd(x, g), abs=1e-14)


def test_multi_group_spdd_brute_force(rng):
    # 3 groups (packed path) and 7 groups (argsort path)
    for k in (3, 7):
        x = rng.random(300) ** rng.integers(1, 3, 300)
        g = np.array([f"g{i}" for i in rng.integers(0, k, 300)])
        want = bf_integral(lambda tau, x=x, g=g: bf_dp(x, g, tau), x)
        assert M.spdd(x, g) == pytest.approx(want, abs=1e-12)
        parts = M.spdd_parts(x, g)
        assert set(parts) == set(g.tolist())
        assert sum(parts.values()) == pytest.approx(want, abs=1e-12)


def test_spdd_parts_two_groups_brute_force(rng):
    x, g = two_groups(rng, 200, 300, 2)
    plus = bf_integral(lambda t: max(bf_rates(x, g, t)[0] - bf_rates(x, g, t)[1], 0.0), x)
    minus = bf_integral(lambda t: max(bf_rates(x, g, t)[1] - bf_rates(x, g, t)[0], 0.0), x)
    parts = M.spdd_parts(x, g)
    assert parts[0] == pytest.approx(plus, abs=1e-12)
    assert parts[1] == pytest.approx(minus, abs=1e-12)


# ------------------------------------------------------------------------------------------
# grid = 50 (the paper's evaluation)
# ------------------------------------------------------------------------------------------


def test_grid50_equals_brute_force_means(rng):
    n = 600
    # scores and labels sitting exactly on grid points exercise the strict '>'
    x = np.where(rng.random(n) < 0.5, rng.integers(0, 51, n) / 50, rng.random(n))
    y = np.where(rng.random(n) < 0.5, rng.integers(0, 51, n) / 50, rng.random(n))
    g = rng.integers(0, 3, n)
    taus = np.arange(50) / 50
    want_dp = np.mean([bf_dp(x, g, t) for t in taus])
    want_eo = np.mean([bf_eo_gap(x, y, g, t) for t in taus])
    assert M.spdd(x, g, grid=50) == pytest.approx(want_dp, abs=1e-15)
    assert M.speo(x, y, g, grid=50) == pytest.approx(want_eo, abs=1e-15)
    assert M.spdd(x, g, grid=7) == pytest.approx(np.mean([bf_dp(x, g, t) for t in np.arange(7) / 7]), abs=1e-15)


@pytest.mark.parametrize("grid", [7, 50, 1000])
def test_grid_counts_at_and_beside_the_grid_points(rng, grid):
    """Scores on the grid points τ_j = j / grid and one float either side of them, where an
    estimate ⌈v·grid⌉ can be off by one, against the brute-force rates."""
    taus = np.arange(grid) / grid
    pts = np.concatenate([taus, [1.0]])
    x = np.clip(np.concatenate([pts, np.nextafter(pts, 2.0), np.nextafter(pts, -1.0), rng.random(300)]), 0, 1)
    g = rng.integers(0, 3, len(x))
    assert M.spdd(x, g, grid=grid) == pytest.approx(np.mean([bf_dp(x, g, t) for t in taus]), abs=1e-15)


@pytest.mark.parametrize("grid", [None, 50])
def test_speo_group_without_positive_labels_counts_as_rate_zero(grid):
    # by hand: group "a" (x = y = 0.3) has no Y > τ from τ = 0.3 on, so its rate is 0 there while
    # "b" (x = y = 0.9) keeps rate 1 until 0.9: the gap is 1 on [0.3, 0.9) and 0 elsewhere.
    # Counting such a group as rate 1 would give 0 instead.
    x = y = np.array([0.3, 0.9])
    g = np.array(["a", "b"])
    assert M.speo(x, y, g, grid=grid) == pytest.approx(0.6, abs=1e-12)


def test_speo_many_groups_without_positive_labels_matches_brute_force(rng):
    n = 300
    g = rng.integers(0, 3, n)
    y = np.where(g == 0, 0.5 * rng.random(n), rng.random(n))  # group 0 has no Y above 0.5
    x = rng.random(n)
    taus = np.arange(50) / 50
    assert M.speo(x, y, g, grid=50) == pytest.approx(np.mean([bf_eo_gap(x, y, g, t) for t in taus]), abs=1e-15)
    exact = bf_integral(lambda t: bf_eo_gap(x, y, g, t), np.concatenate([x, y, np.minimum(x, y)]))
    assert M.speo(x, y, g) == pytest.approx(exact, abs=1e-12)


# ------------------------------------------------------------------------------------------
# SPEO
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_groups", [2, 3])
def test_speo_exact_against_brute_force(n_groups, rng):
    n = 300
    x = np.round(rng.random(n), 2)
    y = np.clip(np.round(x + rng.normal(0, 0.2, n), 2), 0, 1)
    g = rng.integers(0, n_groups, n)
    exact = M.speo(x, y, g)
    # exact piecewise brute force (all breakpoints)
    assert exact == pytest.approx(bf_integral(lambda t: bf_eo_gap(x, y, g, t), np.r_[x, y]), abs=1e-12)
    # fine-grid brute force, within the grid error (each of the ≤ 2n jumps can cost 1/K)
    K = 4000
    fine = np.mean([bf_eo_gap(x, y, g, t) for t in (np.arange(K) + 0.5) / K])
    assert abs(exact - fine) < 2 * len(np.unique(np.r_[x, y])) / K


def test_speo_group_without_positives_counts_as_zero():
    # group 1 has no Y > τ for τ >= 0.3: its rate is 0 there (the paper's convention)
    x = np.array([0.9, 0.8, 0.7, 0.6, 0.9, 0.1])
    y = np.array([0.9, 0.9, 0.9, 0.9, 0.3, 0.2])
    g = np.array([0, 0, 0, 0, 1, 1])
    want = bf_integral(lambda t: bf_eo_gap(x, y, g, t), np.r_[x, y])
    assert M.speo(x, y, g) == pytest.approx(want, abs=1e-15)
    assert want > 0.4  # mostly group 0 with rate > 0 against group 1 at 0


# ------------------------------------------------------------------------------------------
# correlations, rates, tables
# ------------------------------------------------------------------------------------------


def test_pcc_srcc_match_scipy(rng):
    x = rng.random(500)
    y = np.clip(0.6 * x + rng.normal(0, 0.2, 500), 0, 1)
    assert M.pcc(x, y) == pytest.approx(ss.pearsonr(x, y)[0], abs=1e-12)
    assert M.srcc(x, y) == pytest.approx(ss.spearmanr(x, y)[0], abs=1e-12)
    xt, yt = np.round(x, 1), np.round(y, 1)  # heavy ties: average ranks
    assert M.srcc(xt, yt) == pytest.approx(ss.spearmanr(xt, yt)[0], abs=1e-12)
    assert math.isnan(M.pcc(np.full(10, 0.5), rng.random(10)))
    assert math.isnan(M.srcc(rng.random(10), np.zeros(10)))


def test_pcc_of_tiny_spreads_is_not_mistaken_for_constant():
    # hypothesis found this: squaring a subnormal deviation underflows to 0.
    assert M.pcc([0.0, 1.0], [0.0, 2.22507386e-313]) == pytest.approx(1.0)
    x = np.array([0.0, 1e-300, 3e-300, 2e-300])
    y = np.array([0.0, 1e-310, 4e-310, 2e-310])
    assert M.pcc(x, y) == pytest.approx(ss.pearsonr(x / 1e-300, y / 1e-310)[0], abs=1e-12)
    assert M.pcc(x[::-1], y) == pytest.approx(ss.pearsonr(x[::-1] / 1e-300, y / 1e-310)[0], abs=1e-12)


def test_selection_rates_and_demographic_parity_vs_fairlearn(rng):
    fl = pytest.importorskip("fairlearn.metrics")
    n = 500
    x = np.round(rng.random(n), 2)
    g = rng.choice(["a", "b", "c"], n)
    for tau in [0.0, 0.1, 0.37, 0.5, 0.99, 1.0] + list(rng.choice(x, 5)):
        rates = M.selection_rates(x, g, tau)
        assert list(rates) == ["a", "b", "c"]
        np.testing.assert_allclose(list(rates.values()), bf_rates(x, g, tau), atol=1e-15)
        yhat = (x > tau).astype(int)
        ref = fl.demographic_parity_difference(np.zeros(n, int), yhat, sensitive_features=g)
        assert max(rates.values()) - min(rates.values()) == pytest.approx(ref, abs=1e-12)
        assert M.dp_curve(x, g).at(tau)[0] == pytest.approx(ref, abs=1e-12)
        ratios = M.impact_ratio(x, g, tau)
        top = max(rates.values())
        if top > 0:
            assert ratios == pytest.approx({k: v / top for k, v in rates.items()})
            assert max(ratios.values()) == 1.0
    assert all(math.isnan(v) for v in M.impact_ratio(x, g, 1.0).values())


def test_scoring_rate_table(rng):
    n = 1000
    x = rng.random(n)
    g = np.where(rng.random(n) < 0.015, "tiny", np.where(rng.random(n) < 0.5, "a", "b"))
    t = M.scoring_rate_table(x, g)
    assert list(t.columns) == ["group", "n", "share", "scoring_rate", "impact_ratio", "small_group"]
    med = np.median(x)
    for row in t.itertuples():
        m = g == row.group
        assert row.n == m.sum()
        assert row.share == pytest.approx(m.mean())
        assert row.scoring_rate == pytest.approx((x[m] > med).mean())
        assert row.small_group == (m.mean() < 0.02)
    assert t.impact_ratio.max() == 1.0
    assert t.set_index("group").loc["tiny", "small_group"]


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores, groups, fragment",
    [
        ([0.1, np.nan, 0.3, np.inf], [0, 1, 0, 1], "2 NaN or infinite value(s) (first at index 1)"),
        ([0.1, 0.2, 1.5, -0.1, 0.4], [0, 1, 0, 1, 0], "2 value(s) outside [0, 1] (first at index 2: 1.5)"),
        ([0.1, 0.2, 0.3], [0, 1], "differ in length: 3 scores, 2 group values"),
        ([0.1, 0.2, 0.3], ["a", "a", "a"], "need at least two groups"),
        ([0.1, 0.2, 0.3], ["a", None, "b"], "1 missing value(s) (first at index 1)"),
        ([0.1, 0.2, 0.3], [1.0, np.nan, 0.0], "1 missing value(s) (first at index 1)"),
        ([], [], "empty"),
        (["x", "0.2"], [0, 1], "must be numbers"),
        (np.ones((3, 2)) * 0.5, [0, 1, 0], "one-dimensional"),
    ],
)
def test_bad_input_messages(scores, groups, fragment):
    for fn in (lambda: M.spdd(scores, groups), lambda: M.dp_curve(scores, groups), lambda: M.validate_inputs(scores, groups)):
        with pytest.raises(ValueError) as err:
            fn()
        assert fragment in str(err.value)
        assert "\n" not in str(err.value)


def test_bad_labels_and_other_arguments(rng):
    x = rng.random(10)
    g = np.arange(10) % 2
    with pytest.raises(ValueError, match="labels contain 1 value"):
        M.speo(x, np.r_[rng.random(9), 2.0], g)
    with pytest.raises(ValueError, match="differ in length"):
        M.speo(x, rng.random(9), g)
    with pytest.raises(ValueError, match="grid must be"):
        M.spdd(x, g, grid=0)
    with pytest.raises(ValueError, match="tau must be"):
        M.selection_rates(x, g, "high")
    with pytest.raises(ValueError, match="remove_unused_categories"):
        M.spdd(x, pd.Categorical(g, categories=[0, 1, 2]))
    with pytest.raises(ValueError, match="statistic must be one of"):
        M.bootstrap_ci("auc", x, g)
    with pytest.raises(ValueError, match="needs labels"):
        M.bootstrap_ci("pcc", x, g)
    with pytest.raises(ValueError, match="level"):
        M.bootstrap_ci("spdd", x, g, level=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        M.bootstrap_ci("spdd", x, g, n_boot=0)


def test_validate_inputs_contract(rng):
    s, codes, labels, y = M.validate_inputs([0.2, 0.4, 0.9], ["m", "f", "m"], [1, 0, 1])
    assert s.dtype == np.float64 and codes.dtype == np.int64 and y.dtype == np.float64
    assert labels == ("f", "m") and codes.tolist() == [1, 0, 1]
    _, codes, labels, _ = M.validate_inputs([0.1, 0.2, 0.3], np.array([5, 9, 5]))
    assert labels == (5, 9) and codes.tolist() == [0, 1, 0] and type(labels[0]) is int
    _, _, labels, _ = M.validate_inputs([0.1, 0.2, 0.3], [2, "a", 1])  # mixed: sorted by text
    assert labels == (1, 2, "a")


# ------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["continuous", "ties", "some_ties", "three_groups", "binary_labels",
                                  "six_groups_ties"])
def test_bootstrap_engine_equals_naive_recompute_with_the_same_draws(rng, case):
    # every statistic of a resample, read from its counts, equals the statistic recomputed on
    # the explicitly resampled rows (row i repeated c_i times), on continuous and tie-heavy data
    n = 240
    k = {"three_groups": 3, "six_groups_ties": 6}.get(case, 2)
    g = rng.integers(0, k, n) if k > 2 else (rng.random(n) < 0.35).astype(int)
    x = rng.random(n) if case in ("continuous", "binary_labels") else np.round(rng.random(n), 1)
    if case == "some_ties":  # mostly distinct values with a few tied blocks in both columns
        x = np.round(rng.random(n), 3)
    if case == "binary_labels":
        y = (rng.random(n) < x).astype(float)
    else:
        digits = {"continuous": 6, "some_ties": 3}.get(case, 1)
        y = np.clip(np.round(x + rng.normal(0, 0.25, n), digits), 0, 1)
    d = _validate._prepare(x, g, y)
    keep: dict = {}
    reps = _bootstrap._replicates(d, ("spdd", "speo", "pcc", "srcc"), 25, 7, keep=keep)
    assert len(keep["counts"]) == 25
    for r, c in enumerate(keep["counts"]):
        ci = np.rint(c).astype(int)
        assert np.array_equal(ci, c)
        assert np.bincount(g, weights=ci).tolist() == np.bincount(g).tolist()  # sizes kept
        xx, yy, gg = np.repeat(x, ci), np.repeat(y, ci), np.repeat(g, ci)
        want_spdd = ss.wasserstein_distance(xx[gg == 0], xx[gg == 1]) if k == 2 else M.spdd(xx, gg)
        assert reps["spdd"][r] == pytest.approx(want_spdd, abs=1e-12)
        assert reps["speo"][r] == pytest.approx(M.speo(xx, yy, gg), abs=1e-12)
        assert reps["pcc"][r] == pytest.approx(ss.pearsonr(xx, yy)[0], abs=1e-12)
        assert reps["srcc"][r] == pytest.approx(ss.spearmanr(xx, yy)[0], abs=1e-12)
    # a statistic's replicates do not depend on which others are asked for
    alone = _bootstrap._replicates(d, ("srcc",), 25, 7)["srcc"]
    np.testing.assert_array_equal(alone, reps["srcc"])


def test_many_group_kernels_on_tie_heavy_data_equal_naive(rng):
    n = 300
    g = rng.integers(0, 5, n)
    x = np.round(rng.random(n), 2)
    y = np.clip(np.round(x + rng.normal(0, 0.3, n), 2), 0, 1)
    keep: dict = {}
    reps = _bootstrap._replicates(_validate._prepare(x, g, y), ("spdd", "speo"), 6, 2, keep=keep)
    for r, c in enumerate(keep["counts"]):
        ci = c.astype(int)
        xx, yy, gg = np.repeat(x, ci), np.repeat(y, ci), np.repeat(g, ci)
        assert reps["spdd"][r] == pytest.approx(M.spdd(xx, gg), abs=1e-12)
        assert reps["speo"][r] == pytest.approx(M.speo(xx, yy, gg), abs=1e-12)


@pytest.mark.parametrize("shift, block", [(0.15, 64), (0.0, 64), (0.3, 40), (0.15, 4096)])
def test_two_group_spdd_bootstrap_kernel_equals_scipy_on_each_resample(rng, shift, block):
    # Blocks whose sign is settled take the one-product shortcut, the others are summed
    # position by position: both kinds occur here (shift 0: nearly all blocks are exact).
    n = 3001
    g = (rng.random(n) < 0.4).astype(int)
    x = np.clip(np.round(rng.beta(2, 3, n) + shift * g, 3), 0, 1)
    d = _validate._prepare(x, g)
    boot = _bootstrap._SpddBoot(d, block=block, chunk=256, batch=3)
    keep: list = []
    run = boot.worker(keep)
    seeds = _resample._seed_sequences(9, 7)
    reps = np.concatenate([run(seeds[:3]), run(seeds[3:6]), run(seeds[6:])])
    for r, c in enumerate(keep):
        ci = np.rint(c).astype(int)
        zz, cc = np.repeat(boot.z, ci), np.repeat(boot.code, ci)
        assert np.bincount(cc, minlength=2).tolist() == np.bincount(g).tolist()
        assert reps[r] == pytest.approx(ss.wasserstein_distance(zz[cc == 0], zz[cc == 1]), abs=1e-12)
    pairs = boot.nb * len(seeds)
    if shift > 0 and block == 64:
        assert 0 < boot.exact_blocks < pairs / 2
    if shift == 0:
        assert boot.exact_blocks > pairs / 2


def test_bootstrap_multi_group_spdd_equals_naive(rng):
    n = 150
    x = rng.random(n)
    g = rng.integers(0, 3, n)
    d = _validate._prepare(x, g)
    keep: dict = {}
    reps = _bootstrap._replicates(d, ("spdd",), 15, 3, keep=keep)
    for r, c in enumerate(keep["counts"]):
        ci = c.astype(int)
        assert reps["spdd"][r] == pytest.approx(M.spdd(np.repeat(x, ci), np.repeat(g, ci)), abs=1e-12)


def test_resampling_counts_are_within_group_multinomial():
    # tiny groups: compare the joint distribution of the counts with the multinomial pmf
    codes = np.array([0, 1, 0, 1, 1, 0, -1, -1])  # groups of 3 and 3, two padding slots
    gen = _resample._Counts(codes, np.array([3, 3]))
    rng = np.random.default_rng(1)
    out = np.empty(8, np.uint8)
    draws = 6000
    seen: dict = {}
    for _ in range(draws):
        gen.draw(rng, out)
        assert out[6] == 0 and out[7] == 0
        assert out[[0, 2, 5]].sum() == 3 and out[[1, 3, 4]].sum() == 3
        key = tuple(out[[0, 2, 5]])
        seen[key] = seen.get(key, 0) + 1
    # Multinomial(3, 1/3 each): 10 outcomes
    outcomes = [(a, b, 3 - a - b) for a in range(4) for b in range(4 - a)]
    expected = np.array([math.factorial(3) / (math.factorial(a) * math.factorial(b) * math.factorial(c)) / 27
                         for a, b, c in outcomes]) * draws
    observed = np.array([seen.get(o, 0) for o in outcomes])
    assert observed.sum() == draws
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < ss.chi2.ppf(0.999, df=len(outcomes) - 1)


def test_resampling_counts_large_group_moments():
    n = 20000
    codes = (np.arange(n) % 5 == 0).astype(np.intp)  # groups of 16000 and 4000
    gen = _resample._Counts(codes, np.bincount(codes))
    rng = np.random.default_rng(2)
    out = np.empty(n, np.uint8)
    acc = np.zeros(n)
    acc2 = np.zeros(n)
    R = 60
    for _ in range(R):
        gen.draw(rng, out)
        assert np.bincount(codes, weights=out).tolist() == [16000, 4000]
        acc += out
        acc2 += out.astype(float) ** 2
    mean = acc.sum() / (R * n)
    var = (acc2.sum() / (R * n)) - (acc / R).mean() ** 2
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert var == pytest.approx(1.0, abs=0.05)  # Binomial(n_g, 1/n_g) ≈ Poisson(1)


def test_bootstrap_ci_reproducible_and_thread_independent(rng, monkeypatch):
    x, g = two_groups(rng, 300, 200)
    y = np.clip(x + rng.normal(0, 0.1, 500), 0, 1)
    d = _validate._prepare(x, g, y)
    monkeypatch.setenv("FAIRVIZ_THREADS", "1")
    one = _bootstrap._replicates(d, M.STATISTICS, 40, 11)
    monkeypatch.setenv("FAIRVIZ_THREADS", "3")
    three = _bootstrap._replicates(d, M.STATISTICS, 40, 11)
    for k in one:
        np.testing.assert_array_equal(one[k], three[k])
    lo, hi = M.bootstrap_ci("spdd", x, g, n_boot=200, random_state=5)
    assert (lo, hi) == M.bootstrap_ci("spdd", x, g, n_boot=200, random_state=5)
    lo2, hi2 = M.bootstrap_ci("spdd", x, g, n_boot=200, level=0.5, random_state=5)
    assert lo <= lo2 <= hi2 <= hi
    assert lo < M.spdd(x, g) < hi
    M.bootstrap_ci("spdd", x, g, n_boot=5, random_state=np.random.default_rng(1))
    M.bootstrap_ci("spdd", x, g, n_boot=5, random_state=np.random.SeedSequence(3))


def test_two_group_spdd_bootstrap_thread_independent_over_many_blocks(rng, monkeypatch):
    x, g = two_groups(rng, 9000, 11000)
    d = _validate._prepare(x, g)
    monkeypatch.setenv("FAIRVIZ_THREADS", "1")
    one = _bootstrap._replicates(d, ("spdd",), 37, 4)["spdd"]
    monkeypatch.setenv("FAIRVIZ_THREADS", "3")
    three = _bootstrap._replicates(d, ("spdd",), 37, 4)["spdd"]
    np.testing.assert_array_equal(one, three)
    assert len(set(one.tolist())) == 37


def test_bootstrap_ci_agrees_with_a_naive_resampler(rng):
    # statistical agreement with a plain numpy resample-and-recompute loop
    x, g = two_groups(rng, 120, 80)
    y = np.clip(x + rng.normal(0, 0.2, 200), 0, 1)
    idx = [np.flatnonzero(g == k) for k in (0, 1)]
    r2 = np.random.default_rng(9)
    naive_spdd, naive_pcc = [], []
    for _ in range(1500):
        rows = np.concatenate([r2.choice(ix, len(ix)) for ix in idx])
        naive_spdd.append(w1_scipy(x[rows], g[rows]))
        naive_pcc.append(np.corrcoef(x[rows], y[rows])[0, 1])
    for stat, naive in (("spdd", naive_spdd), ("pcc", naive_pcc)):
        lo, hi = M.bootstrap_ci(stat, x, g, y, n_boot=1500, random_state=1)
        nlo, nhi = np.quantile(naive, [0.025, 0.975])
        width = nhi - nlo
        assert abs(lo - nlo) < 0.15 * width and abs(hi - nhi) < 0.15 * width


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_intervals_are_two_sided_at_the_level_of_the_replicates(rng, level):
    # the replicates come from the engine; the interval ends are computed here from their
    # definitions, so a wrong level or a one-sided interval fails whatever the engine draws
    x, g = two_groups(rng, 90, 70)
    y = np.clip(x + rng.normal(0, 0.2, 160), 0, 1)
    reps = _bootstrap._replicates(_validate._prepare(x, g, y), ("spdd", "pcc"), 300, 5)
    a = 1.0 - level
    want = np.quantile(reps["pcc"], [a / 2, 1 - a / 2])
    assert M.bootstrap_ci("pcc", x, g, y, n_boot=300, level=level, random_state=5) == pytest.approx(want, abs=1e-15)
    res = M.audit(x, g, y, n_boot=300, level=level, random_state=5, n_perm=0)
    assert (res.pcc.ci_low, res.pcc.ci_high) == pytest.approx(want, abs=1e-15)
    # the distance: two-sided upper end at 1 − a/2, one-sided bound at 1 − a (docs/STATISTICS.md)
    d = res.spdd.detail
    assert d.ci_high == pytest.approx(np.quantile(reps["spdd"], 1 - a / 2), abs=1e-15)
    assert d.upper == pytest.approx(np.quantile(reps["spdd"], 1 - a), abs=1e-15)


# ------------------------------------------------------------------------------------------
# audit()
# ------------------------------------------------------------------------------------------


def test_audit_result(rng):
    x, g = two_groups(rng, 150, 100)
    y = np.clip(x + rng.normal(0, 0.2, 250), 0, 1)
    gl = np.where(g == 1, "m", "f")
    res = M.audit(x, gl, y, n_boot=120, random_state=4)
    assert res.n == 250 and res.group_counts == {"f": 150, "m": 100}
    assert res.spdd.value == pytest.approx(M.spdd(x, g), abs=1e-15)
    assert res.speo.value == pytest.approx(M.speo(x, y, g), abs=1e-15)
    assert res.pcc.value == pytest.approx(M.pcc(x, y)) and res.srcc.value == pytest.approx(M.srcc(x, y))
    assert res.spdd_grid50 == pytest.approx(M.spdd(x, g, grid=50))
    assert res.speo_grid50 == pytest.approx(M.speo(x, y, g, grid=50))
    # the distance's interval: upper end the percentile one's, lower end by test inversion
    assert res.spdd.ci_high == M.bootstrap_ci("spdd", x, gl, n_boot=120, random_state=4)[1]
    assert 0.0 <= res.spdd.ci_low <= res.spdd.value <= res.spdd.ci_high
    assert (res.pcc.ci_low, res.pcc.ci_high) == M.bootstrap_ci("pcc", x, gl, y, n_boot=120, random_state=4)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    for k in ("pcc", "srcc"):
        assert set(d[k]) == {"value", "ci_low", "ci_high"}
    for k in ("spdd", "speo"):
        assert set(d[k]) == {"value", "ci_low", "ci_high", "ci_method", "upper", "p_value", "chance_mean",
                             "chance_p95", "debiased", "n_perm"}
    assert d["schema_version"] == 2
    assert d["groups"] == {"f": 150, "m": 100}
    assert set(d["spdd_parts"]) == {"f", "m"}
    frame = res.to_frame()
    assert list(frame.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert frame.metric.tolist()[:4] == ["spdd", "speo", "pcc", "srcc"]
    with pytest.raises(AttributeError):
        res.n = 3  # frozen

    plain = M.audit(x, g, n_boot=0)
    assert plain.speo is None and plain.pcc is None and plain.speo_grid50 is None
    d = plain.to_dict()
    assert "speo" not in d and "pcc" not in d and "srcc" not in d
    assert d["spdd"]["ci_low"] is None  # NaN -> null in JSON
    json.dumps(d, allow_nan=False)


# ------------------------------------------------------------------------------------------
# invariances (hypothesis)
# ------------------------------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=64)


@st.composite
def datasets(draw, max_groups=3):
    k = draw(st.integers(min_value=2, max_value=max_groups))
    n = draw(st.integers(min_value=k, max_value=40))
    grid_vals = st.sampled_from([0.0, 0.02, 0.1, 0.5, 0.98, 1.0])
    x = draw(st.lists(st.one_of(unit, grid_vals), min_size=n, max_size=n))
    y = draw(st.lists(st.one_of(unit, grid_vals), min_size=n, max_size=n))
    g = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    g[:k] = list(range(k))  # every group present
    perm = draw(st.permutations(list(range(n))))
    return np.array(x), np.array(y), np.array(g), np.array(perm)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(max_groups=2), st.sampled_from([(1, 1), (2, 1), (3, 3), (4, 2), (8, 2), (9, 3)]))
def test_blockwise_w1_equals_scipy(data, sizes):
    # The blockwise W1 (used from 8·1024 rows up) on small data with small blocks
    # and sub-blocks: ranges settled by sign and ranges where the quantile functions cross.
    x, _, g, _ = data
    a, b = x[g == 0], x[g == 1]
    key, ok, _ = _sort._pack_sign(x, g)
    got = _w1._w1(*_sort._split_sorted(key, g), block=sizes[0], sub=sizes[1])
    assert got == pytest.approx(ss.wasserstein_distance(a, b), abs=1e-12)


@pytest.mark.parametrize("na, nb", [(5000, 4100), (4096, 1), (4100, 9000), (6000, 6000), (5000, 3), (3, 9000)])
def test_spdd_large_groups_equals_scipy(rng, na, nb):
    for a, b in [
        (rng.beta(2, 3, na), rng.beta(2.5, 2.5, nb)),  # few crossings: most blocks settled by sign
        (rng.random(na), rng.random(nb)),  # one distribution: blocks cross everywhere
        (np.round(rng.random(na), 2), np.round(rng.random(nb) ** 2, 2)),  # heavy ties
        (rng.random(na) * 0.5, 0.5 + rng.random(nb) * 0.5),  # disjoint
    ]:
        x = np.concatenate([a, b])
        g = np.r_[np.zeros(na, int), np.ones(nb, int)]
        p = rng.permutation(na + nb)
        assert M.spdd(x[p], g[p]) == pytest.approx(ss.wasserstein_distance(a, b), abs=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_invariant_under_row_permutation(data):
    x, y, g, p = data
    for grid in (None, 50):
        assert M.spdd(x[p], g[p], grid=grid) == pytest.approx(M.spdd(x, g, grid=grid), abs=1e-12)
        assert M.speo(x[p], y[p], g[p], grid=grid) == pytest.approx(M.speo(x, y, g, grid=grid), abs=1e-12)
    if len(set(x.tolist())) > 1 and len(set(y.tolist())) > 1:
        assert M.pcc(x[p], y[p]) == pytest.approx(M.pcc(x, y), abs=1e-9)
        assert M.srcc(x[p], y[p]) == pytest.approx(M.srcc(x, y), abs=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(max_groups=4), st.permutations(["q", "r", "s", "t"]))
def test_invariant_under_group_relabelling(data, names):
    x, y, g, _ = data
    relabelled = np.array(names)[g]
    assert M.spdd(x, relabelled) == pytest.approx(M.spdd(x, g), abs=1e-12)
    assert M.speo(x, y, relabelled) == pytest.approx(M.speo(x, y, g), abs=1e-12)
    parts = M.spdd_parts(x, g)
    parts_r = M.spdd_parts(x, relabelled)
    for code, v in parts.items():
        assert parts_r[names[code]] == pytest.approx(v, abs=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(max_groups=2))
def test_two_group_swap(data):
    x, y, g, _ = data
    swapped = 1 - g
    assert M.spdd(x, swapped) == pytest.approx(M.spdd(x, g), abs=1e-12)
    assert M.spdd(x, swapped) == pytest.approx(w1_scipy(x, g), abs=1e-12)
    assert M.speo(x, y, swapped) == pytest.approx(M.speo(x, y, g), abs=1e-12)
    a, b = M.spdd_parts(x, g).values()
    assert tuple(M.spdd_parts(x, swapped).values()) == pytest.approx((b, a), abs=1e-12)


# ------------------------------------------------------------------------------------------
# the one group encoder (metrics, groups, repair, significance and the video manifest use it)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["int", "str", "mixed", "float_nan", "bool"])
def test_factorize_groups_matches_brute_force(rng, kind):
    from fairviz.metrics._validate import factorize_groups

    n = 60
    pool = {"int": [5, -2, 40, 7], "str": ["b", "a", " NA ", "c"], "mixed": [1, "a", 2.5, "b"],
            "float_nan": [0.5, float("nan"), 0.25, 2.0], "bool": [True, False]}[kind]
    values = [pool[i] for i in rng.integers(0, len(pool), n)]
    missing = {"na"}

    def is_missing(v):
        return (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip().lower() in missing)

    known = [v for v in values if not is_missing(v)]
    try:
        expected = sorted(set(known))
    except TypeError:
        expected = sorted(set(known), key=str)
    arr = np.array(values, dtype=object) if kind in ("mixed", "float_nan") else np.array(values)
    codes, labels, counts = factorize_groups(arr, n, missing=missing, need_two=False)
    assert list(labels) == expected
    assert [labels[c] if c >= 0 else None for c in codes] == [None if is_missing(v) else v for v in values]
    assert counts.tolist() == [known.count(lab) for lab in expected]
    if any(isinstance(v, float) and math.isnan(v) for v in values):  # NaN is missing whatever the caller says
        with pytest.raises(ValueError, match="missing"):
            factorize_groups(arr, n)
    else:  # text such as " NA " is a group unless listed as missing
        assert len(factorize_groups(arr, n, need_two=False)[1]) == len(set(values))


@pytest.mark.parametrize("dtype", ["string", "str", "string[python]"])
def test_factorize_groups_of_pandas_text_as_of_python_strings(rng, dtype):
    """Text as pandas stores it (Arrow or its own string arrays) is encoded as stored, with the
    same codes, labels and missing rows as the same values as Python strings."""
    from fairviz.metrics._validate import factorize_groups

    pool = ["b", "a", " NA ", "c", None, "<40"]
    values = [pool[i] for i in rng.integers(0, len(pool), 80)]
    want = factorize_groups(np.array(values, dtype=object), 80, missing={"na"}, need_two=False)
    for text in (pd.array(values, dtype=dtype), pd.Series(values, dtype=dtype, index=np.arange(80) + 7)):
        got = factorize_groups(text, 80, missing={"na"}, need_two=False)
        assert got[0].tolist() == want[0].tolist() and got[1] == want[1] and got[2].tolist() == want[2].tolist()
        assert all(type(v) is str for v in got[1])
