"""fairviz.groups: several attributes, intersections, missing values, exact W1."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from fairviz.groups import (
    GroupColumn,
    MultiAuditResult,
    audit_attributes,
    pairwise_w1,
    prepare_groups,
    w1_sorted,
    w1_to_pooled,
)


def attribute_frame(rng, n=3000):
    sex = rng.choice(["F", "M"], n, p=[0.45, 0.55]).astype(object)
    race = rng.choice(["Asian", "Black", "White", "Other"], n, p=[0.2, 0.25, 0.54, 0.01]).astype(object)
    age = rng.choice(["<40", "40+"], n).astype(object)
    s = rng.beta(2, 4, n) * 0.8 + 0.15 * (sex == "M") + 0.05 * (race == "White")
    # unknowns of every kind
    sex[:10] = None
    sex[10:15] = np.nan
    sex[15:20] = ""
    sex[20:23] = " Unknown "
    race[30:40] = "unknown"
    return np.clip(s, 0, 1), pd.DataFrame({"sex": sex, "race": race, "age": age})


# ---------------------------------------------------------------------------------- W1
@pytest.mark.parametrize("na,nb,ties", [(1000, 37, False), (1, 1, False), (500, 500, True), (3, 2000, True)])
def test_w1_sorted_matches_scipy(rng, na, nb, ties):
    a = rng.random(na)
    b = rng.random(nb) ** 2
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    assert w1_sorted(np.sort(a), np.sort(b)) == pytest.approx(wasserstein_distance(a, b), abs=1e-12)


def test_w1_sorted_identical_and_empty():
    x = np.array([0.1, 0.2, 0.2, 0.9])
    assert w1_sorted(x, x) == 0.0
    with pytest.raises(ValueError):
        w1_sorted(x, np.array([]))


def test_pairwise_and_to_pooled_match_scipy(rng):
    samples = [rng.random(k) ** p for k, p in ((300, 1), (50, 2), (7, 0.5), (1, 1))]
    pw = pairwise_w1(samples)
    assert pw.shape == (4, 4) and np.all(np.diag(pw) == 0) and np.allclose(pw, pw.T)
    for i, j in combinations(range(4), 2):
        assert pw[i, j] == pytest.approx(wasserstein_distance(samples[i], samples[j]), abs=1e-12)
    x = np.concatenate(samples)
    codes = np.concatenate([np.full(len(s), k) for k, s in enumerate(samples)])
    order = np.argsort(x, kind="stable")
    pooled = w1_to_pooled(x[order], codes[order], 4)
    for k, s in enumerate(samples):
        assert pooled[k] == pytest.approx(wasserstein_distance(s, x), abs=1e-12)


# ---------------------------------------------------------------------------- encoding
def test_prepare_groups_missing_and_intersection(rng):
    _, df = attribute_frame(rng, 200)
    cols = prepare_groups(df[["sex", "race"]], missing_values=("unknown",))
    assert list(cols) == ["sex", "race", "sex × race"]
    sex, race, both = cols["sex"], cols["race"], cols["sex × race"]
    assert isinstance(sex, GroupColumn)
    assert sex.labels == ("F", "M") and sex.n_missing == 23
    assert race.labels == ("Asian", "Black", "Other", "White") or race.labels == ("Asian", "Black", "White")
    assert race.n_missing == 10
    # intersection: missing if either is missing; labels "F × Black"
    assert both.n_missing == int(np.sum((sex.codes < 0) | (race.codes < 0)))
    assert all(" × " in lab for lab in both.labels)
    known = both.known
    expected = [f"{a} × {b}" for a, b in zip(df["sex"][known], df["race"][known])]
    assert list(both.values()) == expected
    assert sum(both.counts.values()) == int(known.sum())


def test_prepare_groups_inputs():
    cols = prepare_groups({"a": [1, 2, 1], "b": ["x", "x", "y"]}, intersections=False)
    assert list(cols) == ["a", "b"] and cols["a"].labels == (1, 2)
    one = prepare_groups(pd.Series(["p", "q", None], name="grp"))
    assert list(one) == ["grp"] and one["grp"].n_missing == 1
    plain = prepare_groups(np.array([0, 1, 1]))
    assert list(plain) == ["group"]
    three = prepare_groups({"a": [1, 2], "b": [3, 4], "c": [5, 6]}, intersections=[("a", "b"), ("a", "c")])
    assert list(three) == ["a", "b", "c", "a × b", "a × c"]
    with pytest.raises(ValueError, match="intersection"):
        prepare_groups({"a": [1, 2], "b": [3, 4]}, intersections=[("a", "zzz")])
    with pytest.raises(ValueError, match="values but there are"):
        prepare_groups({"a": [1, 2], "b": [3]})


def test_missing_values_are_configurable():
    cols = prepare_groups({"a": ["x", "N/A", "refused", "y"]}, missing_values=("refused",))
    assert cols["a"].labels == ("N/A", "x", "y") and cols["a"].n_missing == 1
    # by default only an empty cell is missing: "NA", "None", "unknown" are groups
    cols = prepare_groups({"a": ["NA", "None", "unknown", " ", None]})
    assert cols["a"].labels == ("NA", "None", "unknown") and cols["a"].n_missing == 2


# ------------------------------------------------------------------------------- audit
@pytest.fixture
def metrics():
    return pytest.importorskip("fairviz.metrics")


def test_audit_attributes_structure(rng, metrics):
    s, df = attribute_frame(rng)
    y = np.clip(s + rng.normal(0, 0.1, len(s)), 0, 1)
    res = audit_attributes(s, df[["sex", "race"]], y, n_boot=50, tau=0.5, random_state=1, missing_values=("unknown",))
    assert isinstance(res, MultiAuditResult)
    assert list(res.results) == ["sex", "race", "sex × race"] and res.attributes == ("sex", "race")
    sex = res["sex"]
    assert sex.n_missing == 23 and sex.n == len(s) - 23
    assert sex.group_counts == {"F": int(np.sum(df["sex"] == "F")), "M": int(np.sum(df["sex"] == "M"))}
    known = (df["sex"] == "F") | (df["sex"] == "M")
    # each attribute's audit is metrics.audit on the known rows
    assert sex.audit.spdd.value == pytest.approx(metrics.spdd(s[known], df["sex"][known]))
    assert sex.max_pairwise_w1 == pytest.approx(sex.spdd_max_min)  # two groups: all definitions agree
    a, b = (df["sex"] == "F").to_numpy(), (df["sex"] == "M").to_numpy()
    assert sex.max_pairwise_w1 == pytest.approx(wasserstein_distance(s[a], s[b]), abs=1e-12)
    assert sex.audit.speo is not None
    # race: "Other" is ~1 %: flagged small, counted
    race = res["race"]
    assert "Other" in race.small_groups and race.group_counts["Other"] > 0
    assert race.n_missing == 10
    inter = res["sex × race"]
    assert inter.n_missing == int(np.sum(~known | (df["race"] == "unknown")))
    assert inter.pairwise_w1.shape == (len(inter.groups), len(inter.groups))
    assert inter.impact_ratios is not None and inter.tau == 0.5
    summary = res.summary()
    assert list(summary["attribute"]) == ["sex", "race", "sex × race"]
    assert set(summary.columns) >= {"n", "n_missing", "spdd_max_pairwise", "spdd_max_min", "spdd_mean_to_pooled"}
    d = res.to_dict()
    assert d["results"]["sex"]["n_missing"] == 23 and "F" in d["results"]["sex"]["groups"]
    import json

    json.dumps(d)  # serialisable


def test_three_groups_spdd_variants(rng, metrics):
    """∫(max − min) ≥ largest pairwise W1 ≥ mean W1 to pooled, each checked against scipy."""
    n = 2400
    g = rng.choice(["A", "B", "C"], n)
    # A above B at low thresholds, C crossing them: the extreme pair changes along τ
    s = np.where(g == "A", rng.uniform(0.3, 0.6, n), np.where(g == "B", rng.uniform(0.0, 0.9, n),
                                                              rng.uniform(0.2, 1.0, n)))
    res = audit_attributes(s, {"grp": g}, n_boot=20)["grp"]
    pw = {(a, b): wasserstein_distance(s[g == a], s[g == b]) for a, b in combinations("ABC", 2)}
    assert res.max_pairwise_w1 == pytest.approx(max(pw.values()), abs=1e-12)
    for (a, b), v in pw.items():
        assert res.pairwise_w1.loc[a, b] == pytest.approx(v, abs=1e-12)
    assert res.spdd_max_min == pytest.approx(metrics.spdd(s, g))
    assert res.spdd_max_min > res.max_pairwise_w1 + 1e-3  # strictly larger when the extreme pair changes
    mean_pooled = np.mean([wasserstein_distance(s[g == k], s) for k in "ABC"])
    assert res.spdd_mean_to_pooled == pytest.approx(mean_pooled, abs=1e-12)
    assert res.spdd_mean_to_pooled <= res.max_pairwise_w1


def test_missing_rows_are_excluded_and_counted(rng, metrics):
    s, df = attribute_frame(rng, 500)
    res = audit_attributes(s, df[["sex"]], n_boot=10, missing_values=("unknown",))
    sex = res["sex"]
    assert sex.n + sex.n_missing == 500
    assert sum(sex.group_counts.values()) == sex.n
    assert int(sex.scoring_rates["n"].sum()) == sex.n


def test_small_groups_excluded_from_ratios_keep_counts(rng, metrics):
    g = np.r_[np.repeat(["A"], 1000), np.repeat(["B"], 980), np.repeat(["tiny"], 20)]
    s = np.r_[rng.uniform(0, 0.8, 1000), rng.uniform(0.1, 1, 980), rng.uniform(0.9, 1, 20)]
    res = audit_attributes(s, {"g": g}, n_boot=10, exclude_small=True)["g"]
    assert res.small_groups == ("tiny",)
    table = res.scoring_rates.set_index("group")
    assert table.loc["tiny", "excluded"] and table.loc["tiny", "n"] == 20
    assert math.isnan(table.loc["tiny", "impact_ratio"]) and table.loc["B", "reference"]


def test_attribute_with_one_known_group_is_skipped(rng, metrics):
    s = rng.random(100)
    res = audit_attributes(s, {"sex": rng.choice(["F", "M"], 100), "race": ["unknown"] * 99 + ["X"]},
                           n_boot=10, missing_values=("unknown",))
    assert "race" in res.skipped and "race" not in res.results and "sex × race" in res.skipped
    with pytest.raises(ValueError, match="two known groups"):
        audit_attributes(s, {"race": ["X"] * 100}, n_boot=10)


def test_audit_attributes_bad_input(rng, metrics):
    with pytest.raises(ValueError):
        audit_attributes([0.1, 1.5, 0.2], {"g": [0, 1, 0]}, n_boot=10)
    with pytest.raises(ValueError, match="length"):
        audit_attributes([0.1, 0.5], {"g": [0, 1]}, labels=[0.1], n_boot=10)
    with pytest.raises(ValueError, match="values but there are"):
        audit_attributes([0.1, 0.5], {"g": [0, 1, 1]}, n_boot=10)


def test_million_rows_three_attributes_is_fast(rng, metrics):
    """The target: 1,000,000 rows × 3 attributes with intersections in a few seconds (bench/ has
    the full benchmark). Here a 100k-row smoke run, exact metrics only, with a generous bound
    for a busy shared machine."""
    import time

    n = 100_000
    attrs = {"sex": rng.integers(0, 2, n), "race": rng.integers(0, 5, n), "age": rng.integers(0, 3, n)}
    s = rng.random(n)
    t = time.perf_counter()
    res = audit_attributes(s, attrs, n_boot=0)
    assert time.perf_counter() - t < 15
    assert len(res["sex × race × age"].groups) == 30


def test_exact_only_audit_matches_metrics_audit(rng, metrics):
    s, df = attribute_frame(rng, 1500)
    y = np.clip(s + rng.normal(0, 0.1, len(s)), 0, 1)
    res = audit_attributes(s, df[["sex", "race"]], y, n_boot=0, missing_values=("unknown",))
    for name in ("sex", "race", "sex × race"):
        r = res[name]
        col = prepare_groups(df[["sex", "race"]], missing_values=("unknown",))[name]
        ref = metrics.audit(s[col.known], col.values(), y[col.known], n_boot=0)
        for m in ("spdd", "speo", "pcc", "srcc"):
            assert getattr(r.audit, m).value == pytest.approx(getattr(ref, m).value, abs=1e-12), (name, m)
            assert math.isnan(getattr(r.audit, m).ci_low)
        assert r.audit.speo_grid50 == pytest.approx(ref.speo_grid50, abs=1e-12)
        assert r.audit.spdd_grid50 == pytest.approx(ref.spdd_grid50, abs=1e-12)
        assert r.audit.group_counts == ref.group_counts
        assert r.audit.spdd_parts == pytest.approx(ref.spdd_parts)
