"""SPEO's compiled pass (`fairviz.permute_speo`: the exact metric and its permutation null)
against an independent reference: each group's rates counted by binary search at every breakpoint."""

import numpy as np
import pytest

from fairviz import metrics
from fairviz import permute_speo as ps
from fairviz.permute import relabel, relabel_groups
from fairviz.significance import permutation_test


def _reference_speo(s, y, g) -> float:
    """∫₀¹ max_g − min_g of #{g: min(s, y) > τ} / #{g: y > τ} (0 where no y > τ), summed exactly
    over the intervals between consecutive breakpoints."""
    s, y, g = (np.asarray(v) for v in (s, y, g))
    m = np.minimum(s, y)
    edges = np.unique(np.concatenate([[0.0, 1.0], m, y]))
    rates = []
    for lab in np.unique(g):
        mg, yg = np.sort(m[g == lab]), np.sort(y[g == lab])
        a = len(mg) - np.searchsorted(mg, edges[:-1], side="right")
        b = len(yg) - np.searchsorted(yg, edges[:-1], side="right")
        rates.append(a / np.maximum(b, 1))
    rates = np.array(rates)
    return float(np.sum((rates.max(axis=0) - rates.min(axis=0)) * np.diff(edges)))


def _data(rng, n, k, ties):
    s = np.round(rng.random(n), 2) if ties else rng.random(n)
    y = np.clip(s + rng.normal(0, 0.25, n), 0, 1)
    y = np.round(y, 1) if ties else y  # tie-heavy labels: many exactly 0 or 1
    g = rng.integers(0, k, n)
    g[:k] = np.arange(k)  # every group present
    return s, y, g


@pytest.mark.parametrize("k", [2, 3, 6, 16])
@pytest.mark.parametrize("ties", [False, True])
def test_observed_matches_the_metric(rng, k, ties):
    s, y, g = _data(rng, 700, k, ties)
    bp = ps.SpeoBreakpoints(s, y)
    assert ps.observed_speo(bp, g, np.bincount(g)) == pytest.approx(_reference_speo(s, y, g), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_breakpoints_are_the_2n_values_sorted(rng, ties):
    """The merge of the separately sorted A and B entries is a sort of all 2n breakpoints (each
    row once as an A and once as a B entry), with or without a given order of the labels."""
    s, y, _ = _data(rng, 5000, 2, ties)
    m = np.minimum(s, y)
    for order in (None, np.argsort(y, kind="stable"), np.argsort(-y)[::-1]):
        bp = ps.SpeoBreakpoints(s, y, label_order=order)
        z = np.where(bp.is_label, y[bp.rows], m[bp.rows])
        np.testing.assert_array_equal(z, np.sort(np.concatenate([m, y])))
        np.testing.assert_array_equal(bp.dz, np.diff(z))
        assert (np.bincount(bp.rows[bp.is_label], minlength=len(s)) == 1).all()
        assert (np.bincount(bp.rows[~bp.is_label], minlength=len(s)) == 1).all()


def test_edge_cases_match_the_metric(rng):
    n = 400
    s, g = rng.random(n), rng.integers(0, 2, n)
    cases = {
        "constant labels": np.full(n, 0.5),
        "labels all 0": np.zeros(n),
        "labels all 1": np.ones(n),
        "one group without a label above 0.6": np.where(g == 1, np.minimum(rng.random(n), 0.6), rng.random(n)),
        "scores equal labels": s.copy(),
    }
    for name, y in cases.items():
        bp = ps.SpeoBreakpoints(s, y)
        assert ps.observed_speo(bp, g, np.bincount(g)) == pytest.approx(_reference_speo(s, y, g), abs=1e-12), name
    tiny = ps.SpeoBreakpoints(np.array([0.3, 0.7]), np.array([0.5, 0.5]))
    assert ps.observed_speo(tiny, np.array([0, 1]), [1, 1]) == pytest.approx(
        _reference_speo([0.3, 0.7], [0.5, 0.5], [0, 1]), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_null_is_the_metric_of_each_documented_relabeling(rng, k):
    n, n_perm, seed = 500, 12, 21
    s, y, g = _data(rng, n, k, ties=True)
    counts = np.bincount(g)
    null = ps.speo_null(ps.SpeoBreakpoints(s, y), counts, n_perm, seed)
    for r, sd in enumerate(np.random.SeedSequence(seed).spawn(n_perm)):
        c = np.zeros(n, dtype=np.uint8)
        gen = np.random.Generator(np.random.PCG64(sd))
        relabel(gen, n, int(counts[1]), c) if k == 2 else relabel_groups(gen, counts, c)
        assert null[r] == pytest.approx(_reference_speo(s, y, c), abs=1e-12)


def test_null_does_not_depend_on_threads_slices_or_progress(rng, monkeypatch):
    s, y, g = _data(rng, 3000, 2, ties=False)
    bp, counts = ps.SpeoBreakpoints(s, y), np.bincount(g)
    monkeypatch.setenv("FAIRVIZ_THREADS", "1")
    one = ps.speo_null(bp, counts, 30, 4)
    monkeypatch.setenv("FAIRVIZ_THREADS", "3")
    seen = []
    three = ps.speo_null(bp, counts, 30, 4, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(one, three)
    assert seen[-1] == (30, 30) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    np.testing.assert_array_equal(ps.speo_null(bp, counts, 10, 4), one[:10])  # permutation r: its own seed


def test_shared_breakpoints_give_the_same_test(rng):
    s, y, g = _data(rng, 2000, 3, ties=True)
    fresh = permutation_test(s, g, y, metric="speo", n_perm=25, random_state=2)
    shared = permutation_test(s, g, y, metric="speo", n_perm=25, random_state=2, breakpoints=ps.SpeoBreakpoints(s, y))
    np.testing.assert_array_equal(fresh.null_values, shared.null_values)
    assert fresh.observed == shared.observed == pytest.approx(_reference_speo(s, y, g), abs=1e-12)
    with pytest.raises(ValueError, match="breakpoints"):
        permutation_test(s[:-1], g[:-1], y[:-1], metric="speo", n_perm=5, breakpoints=ps.SpeoBreakpoints(s, y))


def test_prepared_groupings_share_one_sort(rng):
    s, y, g = _data(rng, 1000, 2, ties=False)
    other = rng.integers(0, 3, 1000)
    a, b = metrics.prepare(s, g, y), metrics.prepare(s, other, y)
    bp = a.speo_breakpoints()
    b.share_rows(a)
    assert b.speo_breakpoints() is bp
    with pytest.raises(ValueError, match="labels"):
        metrics.prepare(s, g).speo_breakpoints()


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        ps.SpeoBreakpoints(np.zeros(3), np.zeros(2))
    bp = ps.SpeoBreakpoints(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.4, 0.9]))
    with pytest.raises(ValueError, match="at least one row"):
        ps.speo_null(bp, [3, 0], 5, 0)
    with pytest.raises(ValueError, match="add up"):
        ps.speo_null(bp, [1, 1], 5, 0)


def test_breakpoints_are_built_only_when_a_null_is_drawn(rng):
    from fairviz.significance import shared_nulls

    s, y, g = _data(rng, 500, 2, ties=False)
    calls = []

    def build():
        calls.append(1)
        return ps.SpeoBreakpoints(s, y)

    with shared_nulls():
        first = permutation_test(s, g, y, metric="speo", n_perm=20, random_state=3, breakpoints=build)
        again = permutation_test(s, g, y, metric="speo", n_perm=20, random_state=3, breakpoints=build)
    assert len(calls) == 1  # the second test read the first one's draws
    np.testing.assert_array_equal(first.null_values, again.null_values)


def test_long_sums_stay_exact(rng):
    """200,000 rows, 400,000 breakpoints: the compiled pass's partial sums against the metric."""
    s, y, g = _data(rng, 200_000, 6, ties=False)
    bp = ps.SpeoBreakpoints(s, y)
    assert ps.observed_speo(bp, g, np.bincount(g)) == pytest.approx(_reference_speo(s, y, g), abs=1e-13)


@pytest.mark.parametrize("k", [2, 5])
def test_prepared_speo_reads_shared_breakpoints(rng, k):
    """A prepared input's exact SPEO reads the breakpoints another grouping of the same rows
    sorted (no sort of its own)."""
    s, y, g = _data(rng, 2_000, k, ties=True)
    first = metrics.prepare(s, y > 0.5, y)
    first.speo_breakpoints()
    p = metrics.prepare(s, g, y)
    p.share_rows(first)
    assert p.speo() == pytest.approx(_reference_speo(s, y, g), abs=1e-12)
    assert p._cache["speo_breakpoints"] is first._cache["speo_breakpoints"]


def test_metric_with_more_groups_than_a_byte_holds(rng):
    s, y, g = _data(rng, 3_000, 300, ties=True)
    assert metrics.speo(s, y, g) == pytest.approx(_reference_speo(s, y, g), abs=1e-12)
