"""Bias injection (sampling and rater bias) and group-balanced splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairviz.data import balanced_splits, inject_bias, inject_label_bias
from fairviz.data.bias import band_shares
from fairviz.data.splits import label_bands

ALPHAS = [1, 2, 3, 4]


def synthetic_like(n: int = 4000, seed: int = 0, priv_share: float = 0.5):
    """Labels like make_synthetic's (mean of three noisy raters of q, independent of S)."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(n)
    raters = np.clip(0.5 + 0.18 * q[:, None] + 0.1 * rng.standard_normal((n, 3)), 0, 1)
    groups = (rng.random(n) < priv_share).astype(np.int64)
    return raters.mean(axis=1), groups


def high_share(labels, groups, threshold, privileged=1):
    return band_shares(labels, groups, threshold=threshold, privileged=privileged)


# ----------------------------------------------------------------------------------------------
# Sampling bias
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("priv_share", [0.5, 0.4])
def test_inject_bias_band_shares(alpha, priv_share):
    y, g = synthetic_like(priv_share=priv_share)
    threshold = np.quantile(y, 0.5)
    idx = inject_bias(y, g, alpha, seed=1)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, each row at most once
    assert idx.min() >= 0 and idx.max() < len(y)
    hi, lo = high_share(y[idx], g[idx], threshold)
    target = alpha / (alpha + 1)
    assert abs(hi - target) <= 0.02
    assert abs(lo - (1 - target)) <= 0.02
    # as many rows as possible: in each band the subsampled group keeps nothing it could keep
    for band in (y[idx] > threshold, y[idx] <= threshold):
        kept_p, kept_u = int((g[idx][band] == 1).sum()), int((g[idx][band] == 0).sum())
        assert kept_p > 0 and kept_u > 0
    if alpha == 1 and priv_share == 0.5:
        assert len(idx) > 0.95 * len(y)


def test_inject_bias_keeps_the_favoured_group_whole_in_each_band():
    y, g = synthetic_like()
    threshold = np.quantile(y, 0.5)
    idx = inject_bias(y, g, 4, seed=0)
    kept = np.zeros(len(y), dtype=bool)
    kept[idx] = True
    high = y > threshold
    # alpha:1 needs alpha favoured rows per other row: the favoured group is the scarce one, kept
    # whole, and the other group is subsampled
    assert kept[high & (g == 1)].all()  # high band: every privileged row kept
    assert kept[~high & (g == 0)].all()  # low band: every unprivileged row kept
    assert not kept[high & (g == 0)].all() and not kept[~high & (g == 1)].all()


def test_inject_bias_other_privileged_value_and_split():
    y, g = synthetic_like(seed=3)
    labels = np.where(g == 1, "b", "a")
    idx = inject_bias(y, labels, 3, privileged="a", split=0.7, seed=0)
    threshold = np.quantile(y, 0.7)
    hi, lo = band_shares(y[idx], labels[idx], threshold=threshold, privileged="a")
    assert abs(hi - 0.75) <= 0.02 and abs(lo - 0.25) <= 0.02


def test_inject_bias_deterministic_by_seed():
    y, g = synthetic_like()
    a = inject_bias(y, g, 3, seed=7)
    b = inject_bias(list(y), list(g), 3, seed=7)
    c = inject_bias(y, g, 3, seed=8)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


# ----------------------------------------------------------------------------------------------
# Rater bias
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("priv_share", [0.5, 0.4])
def test_inject_label_bias_band_shares_and_multiset(alpha, priv_share):
    y, g = synthetic_like(priv_share=priv_share)
    threshold = np.quantile(y, 0.5)
    yb = inject_label_bias(y, g, alpha, seed=1)
    assert yb.shape == y.shape and yb.dtype == np.float64
    assert np.array_equal(np.sort(yb), np.sort(y))  # every row kept, label multiset unchanged
    hi, lo = high_share(yb, g, threshold)
    top = int((y > threshold).sum())
    # the target alpha/(alpha+1), or as close as the number of privileged rows allows
    feasible = min(alpha / (alpha + 1), (g == 1).sum() / top)
    assert abs(hi - feasible) <= 0.02
    if priv_share == 0.5:
        assert abs(lo - 1 / (alpha + 1)) <= 0.02


def test_inject_label_bias_favours_privileged_and_stays_close_to_truth():
    y, g = synthetic_like()
    gaps, corrs = [], []
    for alpha in ALPHAS:
        yb = inject_label_bias(y, g, alpha, seed=0)
        gaps.append(yb[g == 1].mean() - yb[g == 0].mean())
        corrs.append(np.corrcoef(yb, y)[0, 1])
        # within a group, the order of candidates is kept (a rank-preserving relabelling)
        for grp in (0, 1):
            m = g == grp
            assert np.all(np.diff(yb[m][np.argsort(y[m], kind="stable")]) >= 0)
    assert abs(gaps[0]) < 0.02  # alpha = 1 only evens out the top band
    assert all(b > a for a, b in zip(gaps, gaps[1:]))  # bias grows with alpha
    assert corrs[-1] > 0.6


def test_inject_label_bias_deterministic_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(1, 8, size=600) / 7.0  # Likert-like labels: many ties
    g = np.tile([0, 1], 300)
    a = inject_label_bias(y, g, 2, seed=4)
    b = inject_label_bias(y, g, 2, seed=4)
    assert a.tobytes() == b.tobytes()
    assert np.array_equal(np.sort(a), np.sort(y))
    hi, _ = band_shares(a, g, threshold=np.quantile(y, 0.5))
    assert abs(hi - 2 / 3) <= 0.02


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=60),
    st.floats(1, 6),
    st.floats(0.05, 0.95),
)
def test_bias_outputs_are_well_formed(rows, alpha, split):
    y = np.array([r[0] for r in rows])
    g = np.array([int(r[1]) for r in rows])
    if len(set(g.tolist())) < 2:
        g[0], g[1] = 0, 1
    yb = inject_label_bias(y, g, alpha, split=split)
    assert np.array_equal(np.sort(yb), np.sort(y))
    idx = inject_bias(y, g, alpha, split=split)
    assert len(np.unique(idx)) == len(idx) and (len(idx) == 0 or (idx.min() >= 0 and idx.max() < len(y)))


@pytest.mark.parametrize("fn", [inject_bias, inject_label_bias])
@pytest.mark.parametrize(
    "labels, groups, kwargs, match",
    [
        ([0.1, 0.9], [0, 1], {"alpha": 0.5}, "alpha"),
        ([0.1, 0.9], [0, 1], {"alpha": float("nan")}, "alpha"),
        ([0.1, 0.9], [0, 1], {"alpha": 2, "split": 0.0}, "split"),
        ([0.1, 0.9], [0, 1], {"alpha": 2, "split": 1.0}, "split"),
        ([0.1, 0.9], [1, 1], {"alpha": 2}, "two groups"),
        ([0.1, 0.9], ["a", "b"], {"alpha": 2}, "privileged"),
        ([0.1, 0.9, 0.3], [0, 1], {"alpha": 2}, "rows"),
        ([0.1, float("nan")], [0, 1], {"alpha": 2}, "NaN"),
    ],
)
def test_bias_input_validation(fn, labels, groups, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(labels, groups, **kwargs)


# ----------------------------------------------------------------------------------------------
# Balanced splits
# ----------------------------------------------------------------------------------------------
def _assert_balanced(idx, labels, groups, bands=10):
    band = label_bands(labels, bands)
    for b in np.unique(band):
        in_b = idx[band[idx] == b]
        counts = [int((groups[in_b] == v).sum()) for v in np.unique(groups)]
        assert len(set(counts)) == 1, f"band {b}: group counts {counts}"


@pytest.mark.parametrize("priv_share", [0.5, 0.3])
def test_balanced_splits_partition_and_balance(priv_share):
    y, g = synthetic_like(priv_share=priv_share)
    sp = balanced_splits(y, g, seed=0)
    assert set(sp) == {"train", "val", "test"}
    allidx = np.concatenate([sp["train"], sp["val"], sp["test"]])
    assert np.array_equal(np.sort(allidx), np.arange(len(y)))  # disjoint and complete
    for name in ("val", "test"):
        assert np.all(np.diff(sp[name]) > 0)
        _assert_balanced(sp[name], y, g)
        assert (g[sp[name]] == 1).mean() == 0.5
    # default sizes on 4000 rows: ~30 % test, ~15 % validation; a test split this large keeps
    # the finite-sample floor of SPDD small
    assert 1150 <= len(sp["test"]) <= 1200
    assert 560 <= len(sp["val"]) <= 600
    if priv_share < 0.5:
        # the minority group sets the count; the leftover majority goes to train
        assert (g[sp["train"]] == 1).mean() < priv_share


def test_balanced_splits_then_bias_on_train_only():
    y, g = synthetic_like()
    sp = balanced_splits(y, g, seed=2)
    train = sp["train"]
    yb = y.copy()
    yb[train] = inject_label_bias(y[train], g[train], 4, seed=2)
    # evaluation rows keep their true labels and stay balanced
    for name in ("val", "test"):
        assert np.array_equal(yb[sp[name]], y[sp[name]])
        _assert_balanced(sp[name], y, g)
    hi, _ = band_shares(yb[train], g[train], threshold=np.quantile(y[train], 0.5))
    assert abs(hi - 0.8) <= 0.02
    kept = train[inject_bias(y[train], g[train], 4, seed=2)]
    hi, _ = band_shares(y[kept], g[kept], threshold=np.quantile(y[train], 0.5))
    assert abs(hi - 0.8) <= 0.02


def test_balanced_splits_deterministic_and_options():
    y, g = synthetic_like(n=1000)
    a = balanced_splits(y, g, seed=5)
    b = balanced_splits(y, g, seed=5)
    c = balanced_splits(y, g, seed=6)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert not np.array_equal(a["test"], c["test"])
    no_val = balanced_splits(y, g, val_fraction=0.0, test_fraction=0.5, bands=4, seed=0)
    assert len(no_val["val"]) == 0 and 480 <= len(no_val["test"]) <= 510  # per-band rounding
    _assert_balanced(no_val["test"], y, g, bands=4)
    edges = balanced_splits(y, g, bands=[0.4, 0.6], seed=0)
    _assert_balanced(edges["test"], y, g, bands=[0.4, 0.6])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"test_fraction": 0.7, "val_fraction": 0.3}, "< 1"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"bands": 0}, "bands"),
        ({"bands": [0.5, 0.2]}, "increasing"),
    ],
)
def test_balanced_splits_validation(kwargs, match):
    y, g = synthetic_like(n=200)
    with pytest.raises(ValueError, match=match):
        balanced_splits(y, g, **kwargs)


def test_balanced_splits_errors_on_one_group_and_mismatch():
    with pytest.raises(ValueError, match="two groups"):
        balanced_splits([0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(ValueError, match="rows"):
        balanced_splits([0.1, 0.2, 0.3], [0, 1])
    # the same label/group checks as bias injection, with the same messages
    for labels, groups, match in (([[0.1, 0.2]], [0, 1], "labels must be one-dimensional"),
                                  ([0.1, 0.2], [[0, 1]], "groups must be one-dimensional"),
                                  ([], [], "labels is empty"),
                                  ([0.1, float("inf")], [0, 1], "NaN/inf")):
        for fn in (balanced_splits, lambda y, g: inject_bias(y, g, 2.0), lambda y, g: inject_label_bias(y, g, 2.0)):
            with pytest.raises(ValueError, match=match):
                fn(labels, groups)
    # every band holds a single group -> nothing can be balanced
    with pytest.raises(ValueError, match="test split is empty"):
        balanced_splits([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], bands=2)


def test_sample_bias_k_groups():
    """k = 4 groups of different sizes: each group keeps alpha^(t_r - 1) of its high-band rows and
    alpha^(-t_r) of its low-band rows (counted here from the kept rows, t_r = r / 3), labels are
    untouched, P(high | group) rises along the group order from 1/(1 + alpha) towards
    alpha/(1 + alpha) when the bands are equal, and a 3-group, 3-row input keeps a row per band."""
    rng = np.random.default_rng(0)
    n = 4000
    g = rng.choice(4, n, p=[0.1, 0.2, 0.3, 0.4])
    y = rng.uniform(size=n)
    high = y > np.quantile(y, 0.5)
    for alpha in (1.0, 2.0, 4.0):
        keep = inject_bias(y, g, alpha, seed=1)
        assert np.array_equal(keep, np.unique(keep)) and keep.dtype == np.int64
        kept = np.zeros(n, bool)
        kept[keep] = True
        for r in range(4):
            t_r = r / 3
            for band, share in ((high, alpha ** (t_r - 1)), (~high, alpha ** -t_r)):
                rows = band & (g == r)
                assert kept[rows].sum() == max(1, int(np.floor(share * rows.sum() + 0.5)))
        p_high = np.array([high[keep][g[keep] == r].mean() for r in range(4)])
        if alpha > 1:
            assert np.all(np.diff(p_high) > 0)
            assert p_high[0] == pytest.approx(1 / (1 + alpha), abs=0.04)
            assert p_high[3] == pytest.approx(alpha / (1 + alpha), abs=0.04)
        else:
            assert len(keep) == n
        assert np.array_equal(keep, inject_bias(y, g, alpha, seed=1))  # deterministic
    assert not np.array_equal(inject_bias(y, g, 4.0, seed=1), inject_bias(y, g, 4.0, seed=2))
    assert inject_bias([0.1, 0.5, 0.9, 0.95], [0, 1, 2, 2], 4.0).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="leave privileged unset"):
        inject_bias(y, g, 2.0, privileged=3)


def test_label_bias_k_groups():
    """k = 4 groups of different sizes: the multiset of labels is kept, the top band's selection
    rate of the most favoured group is alpha x the least favoured's, and the rates rise along the
    group order; alpha = 1 leaves the rates about equal; privileged is refused."""
    rng = np.random.default_rng(0)
    n = 4000
    g = rng.choice(4, n, p=[0.1, 0.2, 0.3, 0.4])
    y = np.clip(0.5 + 0.18 * rng.standard_normal(n), 0, 1)
    threshold = np.quantile(y, 0.5)
    for alpha in (1.0, 2.0, 4.0):
        yb = inject_label_bias(y, g, alpha, seed=1)
        assert np.array_equal(np.sort(yb), np.sort(y))
        rates = np.array([np.mean(yb[g == c] > threshold) for c in range(4)])
        assert rates[3] / rates[0] == pytest.approx(alpha, rel=0.05)
        if alpha > 1:
            assert np.all(np.diff(rates) > 0)
        assert np.array_equal(yb, inject_label_bias(y, g, alpha, seed=1))  # deterministic
    with pytest.raises(ValueError, match="leave privileged unset"):
        inject_label_bias(y, g, 2.0, privileged=3)
