"""The bag of little bootstraps: counts, reproducibility, reduction to the exact bootstrap,
statistics of weighted subsets against brute force, options, and what the outputs say."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from fairviz import metrics
from fairviz.cli import main as cli_main
from fairviz.metrics import LittleBootstrap, prepare
from fairviz.metrics._bootstrap import _replicates, _SortedBoot
from fairviz.metrics._little import (
    LITTLE_MIN_ROWS,
    _subset_rows,
    _weighted_midranks,
    little_replicates,
    plan_bootstrap,
    weighted_pearson,
)
from fairviz.metrics._prepared import PreparedAudit
from fairviz.metrics._resample import _Counts, _rng

STATS = ("spdd", "speo", "pcc", "srcc")


def _data(n=3000, k=3, seed=3, ties=True):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, k, n)
    x = rng.random(n)
    y = 0.5 * rng.random(n) + 0.5 * x
    if ties:
        x, y = np.round(x, 2), np.round(y, 1)
    return x, g, y


def _full(p):
    return {"spdd": p.spdd(), "speo": p.speo(), "pcc": p.pcc(), "srcc": p.srcc()}


def test_counts_sum_to_full_group_sizes_over_a_subset():
    codes = np.repeat([0, 1, -1], [37, 52, 7])  # padding at the end, N = 96
    gen = _Counts(codes, np.array([1000, 3000]))
    out = np.empty(96, dtype=np.uint8)
    for seed in range(20):
        gen.draw(_rng(seed), out)
        assert out[:37].sum(dtype=np.int64) == 1000 and out[37:89].sum(dtype=np.int64) == 3000
        assert not out[89:].any()


def test_counts_over_a_subset_are_uniform_multinomial():
    gen = _Counts(np.zeros(8, dtype=np.intp), np.array([40]))
    out = np.empty(8, dtype=np.uint8)
    first = []
    for seed in range(4000):
        gen.draw(_rng(seed), out)
        first.append(int(out[0]))
    # the first row's count is Binomial(40, 1/8): compare its distribution with a chi-square test
    obs = np.bincount(first, minlength=41)[:41]
    exp = sps.binom.pmf(np.arange(41), 40, 1 / 8) * len(first)
    keep = exp > 5
    chi = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()) + 0.0
    assert sps.chi2.sf(chi, keep.sum() - 1) > 1e-3


def test_a_count_over_255_raises_instead_of_wrapping():
    gen = _Counts(np.zeros(8, dtype=np.intp), np.array([8 * 400]))
    with pytest.raises(OverflowError, match="uint8"):
        gen.draw(_rng(0), np.empty(8, dtype=np.uint8))


def test_engine_on_weighted_subset_matches_brute_force_repetition():
    x, g, y = _data(400, 2, seed=5)
    full_counts = np.array([900, 700])
    p = PreparedAudit.from_codes(x, g, (0, 1), y, counts=full_counts)
    eng = _SortedBoot(p, STATS)
    kept: list = []
    vals = eng.worker(kept)(np.random.SeedSequence(1).spawn(3))
    for r, c in enumerate(kept):
        reps = c.astype(np.int64)
        assert np.bincount(g, weights=reps).tolist() == [900.0, 700.0]
        xr, gr, yr = np.repeat(x, reps), np.repeat(g, reps), np.repeat(y, reps)
        ref = prepare(xr, gr, yr)
        assert vals[r, 0] == pytest.approx(ref.spdd(), abs=1e-12)
        assert vals[r, 1] == pytest.approx(ref.speo(), abs=1e-12)
        assert vals[r, 2] == pytest.approx(sps.pearsonr(xr, yr)[0], abs=1e-10)
        assert vals[r, 3] == pytest.approx(sps.spearmanr(xr, yr)[0], abs=1e-10)


def test_weighted_estimates_match_repetition_with_integer_weights():
    x, g, y = _data(300, 2, seed=9)
    w = np.where(g == 0, 3.0, 5.0)
    reps = w.astype(int)
    xr, yr = np.repeat(x, reps), np.repeat(y, reps)
    assert weighted_pearson(x, y, w) == pytest.approx(sps.pearsonr(xr, yr)[0], abs=1e-12)
    srcc = weighted_pearson(_weighted_midranks(x, w), _weighted_midranks(y, w), w)
    assert srcc == pytest.approx(sps.spearmanr(xr, yr)[0], abs=1e-12)
    assert math.isnan(weighted_pearson(np.ones(5), np.arange(5.0), np.ones(5)))


def test_one_subset_of_every_row_is_the_exact_bootstrap():
    p = prepare(*_data())
    plan = plan_bootstrap(LittleBootstrap(subsets=1, exponent=1.0, min_subset=10**9), p.counts, 40)
    assert plan.subsets == 1 and plan.sizes.tolist() == p.counts.tolist()
    little = little_replicates(p, STATS, 40, 5, plan, full=_full(p))
    exact = _replicates(p, STATS, 40, 5)
    for s in STATS:
        np.testing.assert_allclose(little[s], exact[s], rtol=0, atol=1e-12)


def test_same_seed_same_replicates_at_any_thread_count(monkeypatch):
    p = prepare(*_data(6000))
    plan = plan_bootstrap("little", p.counts, 60)
    assert plan.subsets == 10
    runs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FAIRVIZ_THREADS", threads)
        runs.append(little_replicates(p, STATS, 60, 11, plan, full=_full(p)))
    for s in STATS:
        assert np.isfinite(runs[0][s]).all()
        assert np.array_equal(runs[0][s], runs[1][s]) and np.array_equal(runs[0][s], runs[2][s])
    other = little_replicates(p, STATS, 60, 12, plan, full=_full(p))
    assert not np.array_equal(other["spdd"], runs[0]["spdd"])


def test_subsets_are_stratified_and_disjoint_when_groups_are_large():
    x, g, y = _data(20000, 2)
    p = prepare(x, g, y)
    plan = plan_bootstrap("little", p.counts, 100)
    rows = _subset_rows(p.data.codes, p.counts, plan, _rng(0))
    assert len(rows) == plan.subsets
    allrows = np.concatenate(rows)
    assert len(np.unique(allrows)) == len(allrows)  # disjoint
    for r in rows:
        assert np.bincount(p.data.codes[r], minlength=2).tolist() == plan.sizes.tolist()
        assert (p.counts / plan.sizes <= 64).all()


def test_sizes_follow_the_exponent_the_floor_and_the_ratio_cap():
    lb = LittleBootstrap()
    assert lb.sizes(np.array([500_000])).tolist() == [math.ceil(500_000 ** 0.7)]
    assert lb.sizes(np.array([300, 2000])).tolist() == [300, 500]
    assert lb.sizes(np.array([10**8])).tolist() == [-(-10**8 // 64)]


def test_auto_switches_at_the_threshold():
    assert plan_bootstrap("auto", np.array([LITTLE_MIN_ROWS // 2 - 1, LITTLE_MIN_ROWS // 2]), 1000) is None
    plan = plan_bootstrap("auto", np.array([LITTLE_MIN_ROWS // 2, LITTLE_MIN_ROWS // 2]), 1000)
    assert plan is not None and plan.subsets == 10
    assert plan_bootstrap("exact", np.array([10**6, 10**6]), 1000) is None
    assert plan_bootstrap("little", np.array([10**6, 10**6]), 4).subsets == 4  # at most n_boot subsets


@pytest.mark.parametrize("bad", ["fast", 3, None, LittleBootstrap])
def test_bad_bootstrap_option_is_a_clear_value_error(bad):
    x, g, y = _data(200)
    with pytest.raises(ValueError, match="bootstrap must be one of"):
        metrics.audit(x, g, y, n_boot=10, bootstrap=bad)


@pytest.mark.parametrize("kw", [{"subsets": 0}, {"exponent": 0.0}, {"exponent": 1.5}, {"min_subset": 0},
                                {"min_rows": -1}, {"subsets": 2.5}])
def test_bad_little_settings_are_value_errors(kw):
    with pytest.raises(ValueError, match="little bootstrap"):
        LittleBootstrap(**kw)


def test_audit_says_which_bootstrap_ran():
    x, g, y = _data(3000)
    little = metrics.audit(x, g, y, n_boot=30, n_perm=0, bootstrap="little")
    assert little.bootstrap.startswith("bag of little bootstraps: 10 subsets of")
    assert little.to_dict()["bootstrap"] == little.bootstrap
    assert metrics.audit(x, g, y, n_boot=30, n_perm=0).bootstrap.startswith("exact bootstrap")
    assert "bootstrap" not in metrics.audit(x, g, y, n_boot=0).to_dict()


@pytest.fixture
def csv_file(tmp_path):
    x, g, y = _data(2000, 2)
    path = tmp_path / "s.csv"
    pd.DataFrame({"score": x, "grp": np.where(g == 0, "a", "b"), "y": y}).to_csv(path, index=False)
    return path


def test_cli_json_and_table_say_which_bootstrap_ran(csv_file, capsys):
    args = ["audit", str(csv_file), "--score", "score", "--group", "grp", "--label", "y", "--n-boot", "20"]
    assert cli_main(args + ["--bootstrap", "little", "--subsets", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bootstrap"].startswith("bag of little bootstraps: 4 subsets")
    assert cli_main(args) == 0
    assert "intervals from the exact bootstrap" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--subsets", "0"], ["--bootstrap", "exact", "--subsets", "3"],
                                   ["--bootstrap", "fast"]])
def test_cli_bad_bootstrap_options_exit_2(csv_file, capsys, extra):
    args = ["audit", str(csv_file), "--score", "score", "--group", "grp", "--n-boot", "5"] + extra
    try:
        rc = cli_main(args)
    except SystemExit as exc:  # argparse refuses an unknown choice itself
        rc = exc.code
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_noise_floor_raises_only_the_upper_ends():
    from fairviz.uncertainty import distance_uncertainty

    rng = np.random.default_rng(0)
    reps = 0.05 + 0.002 * rng.standard_normal(400)  # replicates tight around θ̂
    null = 0.01 + 0.004 * rng.random(99)
    plain = distance_uncertainty(0.05, reps, null, 0.95)
    floor = distance_uncertainty(0.05, reps, null, 0.95, noise_floor=True)
    assert floor.upper == pytest.approx(max(plain.upper, 0.05 + np.quantile(null, 0.95)))
    assert floor.ci_high == pytest.approx(max(plain.ci_high, 0.05 + np.quantile(null, 0.975)))
    assert floor.upper > plain.upper and floor.ci_low == plain.ci_low
    assert distance_uncertainty(0.05, reps, [], 0.95, noise_floor=True).upper == plain.upper


def test_little_bootstrap_audit_bounds_are_at_least_value_plus_chance():
    x, g, y = _data(4000, 2, ties=False)
    r = metrics.audit(x, g, y, n_boot=100, n_perm=39, bootstrap="little")
    for name in ("spdd", "speo"):
        u = getattr(r, name).detail
        assert u.upper >= u.value + 0.9 * u.chance_mean
    exact = metrics.audit(x, g, y, n_boot=100, n_perm=39, bootstrap="exact")
    assert exact.spdd.detail.p_value == r.spdd.detail.p_value  # the same permutation test


@pytest.mark.parametrize("lam", [0.7, 25.6, 64.0, 100.0])
def test_poisson_table_draws_are_poisson(lam):
    """The table draw of the little bootstraps' counts against scipy's Poisson pmf (chi-square
    over the cells with expected count ≥ 20; 1,000,000 draws), and every unmarked table cell
    against the inverse CDF at both of its ends."""
    from scipy import stats

    from fairviz.metrics._resample import _PoissonTable

    table = _PoissonTable(lam)
    cells = np.arange(1 << 16)
    ok = table.table != table._MARK
    for edge in (cells / 65536.0, np.nextafter((cells + 1.0) / 65536.0, 0.0)):
        np.testing.assert_array_equal(table.table[ok], np.searchsorted(table.cdf, edge[ok], side="right"))
    n = 1_000_000
    draws = table.draw(np.random.default_rng(11), n)
    k = np.arange(draws.max() + 1)
    expected = n * stats.poisson.pmf(k, lam)
    keep = expected >= 20
    observed = np.bincount(draws, minlength=len(k))
    chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    assert draws.mean() == pytest.approx(lam, rel=0.01)
