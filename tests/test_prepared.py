"""Prepare once, derive everything: `metrics.PreparedAudit` against independent references, and
each sort running once however many numbers are asked for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from fairviz import metrics as M
from fairviz import permute_speo
from fairviz.app_services.audit_view import view_intervals, view_permutation
from fairviz.app_services.budget import permutation_count
from fairviz.groups import audit_attributes, audit_intervals
from fairviz.metrics import _prepared
from fairviz.significance import permutation_test


def _data(rng, n, n_groups, ties):
    x = rng.random(n)
    if ties:
        x = np.round(x * 20) / 20
    g = np.array(list("abcde"))[rng.integers(0, n_groups, n)]
    y = np.clip(x + rng.normal(0, 0.2, n), 0, 1)
    if ties:
        y = np.round(y * 10) / 10
    return x, g, y


@pytest.mark.parametrize("n_groups", [2, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_prepared_matches_independent_references(rng, n_groups, ties):
    x, g, y = _data(rng, 3000, n_groups, ties)
    p = M.prepare(x, g, y)
    groups = sorted(set(g))
    assert p.groups == tuple(groups)
    if n_groups == 2:
        assert abs(p.spdd() - ss.wasserstein_distance(x[g == "a"], x[g == "b"])) < 1e-12
    for tau in (0.0, 0.25, 0.5, 0.95):
        want = {k: float(np.mean(x[g == k] > tau)) for k in groups}
        assert p.selection_rates(tau) == pytest.approx(want, abs=1e-15)
        top = max(want.values())
        assert p.impact_ratio(tau) == pytest.approx({k: v / top for k, v in want.items()}, abs=1e-15)
    med = np.median(x)
    table = p.scoring_rate_table()
    assert list(table["scoring_rate"]) == pytest.approx([np.mean(x[g == k] > med) for k in groups], abs=1e-15)
    assert p.pcc() == pytest.approx(ss.pearsonr(x, y)[0], abs=1e-12)
    assert p.srcc() == pytest.approx(ss.spearmanr(x, y)[0], abs=1e-12)
    # the brute-force integral of DP(τ) over the curve's own intervals
    curve = p.dp_curve()
    mids = (curve.thresholds[:-1] + curve.thresholds[1:]) / 2
    brute = [max(np.mean(x[g == k] > t) for k in groups) - min(np.mean(x[g == k] > t) for k in groups) for t in mids]
    assert np.allclose(curve.values, brute, atol=1e-12)
    assert p.spdd() == pytest.approx(float(np.dot(brute, np.diff(curve.thresholds))), abs=1e-12)


@pytest.mark.parametrize("n_groups", [2, 3])
def test_one_call_functions_and_audit_give_the_prepared_numbers(rng, n_groups):
    x, g, y = _data(rng, 2000, n_groups, ties=True)
    p = M.prepare(x, g, y)
    assert M.spdd(x, g) == p.spdd() and M.speo(x, y, g) == p.speo()
    assert M.spdd(x, g, grid=50) == p.spdd(grid=50) and M.speo(x, y, g, grid=50) == p.speo(grid=50)
    assert M.spdd_parts(x, g) == p.spdd_parts()
    pd.testing.assert_frame_equal(M.scoring_rate_table(x, g), p.scoring_rate_table())
    a = M.audit(x, g, y, n_boot=30, random_state=3, n_perm=19)
    b = M.audit_prepared(M.prepare(x, g, y), n_boot=30, random_state=3, n_perm=19)
    assert a.to_dict() == b.to_dict()


def test_each_sort_runs_once(rng, monkeypatch):
    x, g, y = _data(rng, 4000, 2, ties=False)
    calls = []
    real = _prepared._value_major

    def counting(values, codes, n_groups):
        calls.append(len(values))
        return real(values, codes, n_groups)

    class CountingBreakpoints(permute_speo.SpeoBreakpoints):
        def __init__(self, scores, labels, label_order=None):
            calls.append(2 * len(scores))
            super().__init__(scores, labels, label_order)

    monkeypatch.setattr(_prepared, "_value_major", counting)
    monkeypatch.setattr(permute_speo, "SpeoBreakpoints", CountingBreakpoints)
    p = M.prepare(x, g, y)
    M.audit_prepared(p, n_boot=20, n_perm=9)
    p.dp_curve()
    p.scoring_rate_table()
    p.selection_rates(0.3)
    p.spdd_parts()
    assert sorted(calls) == [len(x), 2 * len(x)]  # the scores once, the 2n SPEO breakpoints once


def test_groupings_of_the_same_rows_share_correlations(rng):
    x, g, y = _data(rng, 3000, 3, ties=True)
    h = np.where(rng.random(len(x)) < 0.5, "u", "v")
    multi = audit_attributes(x, {"g": g, "h": h}, y, n_boot=0, intersections=False)
    pg, ph = multi.results["g"].prepared, multi.results["h"].prepared
    assert pg._cache["ties0"] is ph._cache["ties0"]  # one rank order for both groupings
    for r in multi.results.values():
        assert r.audit.srcc.value == pytest.approx(ss.spearmanr(x, y)[0], abs=1e-12)


def test_audit_without_kept_sorts_gives_the_same_numbers(rng):
    """keep_sorts=False: each grouping forgets its sort and curve once audited (the report holds
    one grouping's at a time); every number is the same, and asking again re-derives them."""
    x, g, y = _data(rng, 3000, 3, ties=True)
    h = np.where(rng.random(len(x)) < 0.5, "u", "v")
    kept = audit_attributes(x, {"g": g, "h": h}, y, n_boot=0, tau=0.4)
    dropped = audit_attributes(x, {"g": g, "h": h}, y, n_boot=0, tau=0.4, keep_sorts=False)
    for name, res in dropped.results.items():
        assert "sorted" not in res.prepared._cache and "curve" not in res.prepared._cache
        assert "ties0" in res.prepared._cache  # what the groupings share stays
        assert res.audit.to_dict() == kept.results[name].audit.to_dict()
        np.testing.assert_array_equal(res.prepared.dp_curve().values, kept.results[name].prepared.dp_curve().values)


def test_intervals_and_permutations_from_the_audited_view(rng):
    x, g, y = _data(rng, 3000, 3, ties=False)
    g = g.astype(object)
    g[:40] = ""  # missing: the view is the known rows
    multi = audit_attributes(x, {"g": g}, y, n_boot=0, intersections=False)
    view = multi.results["g"]
    known = g != ""
    want = M.audit(x[known], g[known], y[known], n_boot=25, random_state=0)
    assert audit_intervals(view, 25).to_dict() == want.to_dict()
    # the page's intervals: SPDD's test with the page's shuffle count (the cards' test), SPEO's automatic
    page = M.audit(x[known], g[known], y[known], n_boot=25, random_state=0,
                   n_perm={"spdd": permutation_count(int(known.sum()), 3)})
    assert view_intervals(view, 25).to_dict() == page.to_dict()
    assert page.spdd.detail.n_perm == permutation_count(int(known.sum()), 3)
    assert page.speo.detail.n_perm == want.speo.detail.n_perm
    got = view_permutation(view, 30)
    ref = permutation_test(x[known], g[known], metric="spdd", n_perm=30, random_state=0)
    assert np.array_equal(got.null_values, ref.null_values) and got.p_value == ref.p_value


def test_audit_progress_counts_resamples_then_shuffles_to_the_total(rng):
    n = 400
    x, g = rng.random(n), rng.integers(0, 2, n)
    y = np.clip(x + rng.normal(0, 0.2, n), 0, 1)
    seen = []
    res = M.audit_prepared(M.prepare(x, g, y), n_boot=30, n_perm=7, random_state=1,
                           progress=lambda done, total: seen.append((done, total)))
    assert {t for _, t in seen} == {30 + 2 * 7}  # 30 resamples, 7 shuffles for SPDD and for SPEO
    assert seen[-1] == (44, 44) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    plain = M.audit(x, g, y, n_boot=30, n_perm=7, random_state=1)
    assert res.to_dict() == plain.to_dict()  # following the progress changes no number


def test_page_intervals_keep_the_cards_shuffle_count(rng, monkeypatch):
    """Once the page computes intervals, SPDD's p-value still comes from the cards' shuffles
    (read from the shared store, not drawn again), not from the audit's smaller automatic count."""
    from fairviz.app_services import budget
    from fairviz.significance import shared_nulls
    from fairviz.uncertainty import permutation_plan

    x, g, y = _data(rng, 2000, 2, ties=False)
    monkeypatch.setattr(budget, "PERMUTATION_BUDGET", 77 * 0.1 * 2000)  # the cards' test: 77 shuffles
    view = audit_attributes(x, {"g": g}, y, n_boot=0, intersections=False).results["g"]
    with shared_nulls() as store:
        cards = view_permutation(view, permutation_count(view.n, 2))
        drawn = len(store)
        res = view_intervals(view, 30)
    assert cards.n_perm == 77 and res.spdd.detail.n_perm == 77
    assert res.spdd.detail.p_value == cards.p_value
    assert len(store) == drawn + 1  # SPEO's null is new; SPDD's was read
    assert res.speo.detail.n_perm == permutation_plan(view.n, 2, True, None)["speo"]


def test_permutation_plan_per_metric():
    from fairviz.uncertainty import permutation_plan

    auto = permutation_plan(10**6, 2, True, None)
    assert permutation_plan(10**6, 2, True, {"spdd": 1000}) == {"spdd": 1000, "speo": auto["speo"]}
    assert permutation_plan(10**6, 2, True, 7) == {"spdd": 7, "speo": 7}
    assert permutation_plan(10**6, 2, False, {"speo": 5}) == {"spdd": auto["spdd"]}
    with pytest.raises(ValueError, match="names metrics"):
        permutation_plan(100, 2, True, {"pcc": 3})
    with pytest.raises(ValueError, match="integer"):
        permutation_plan(100, 2, True, {"spdd": -1})
