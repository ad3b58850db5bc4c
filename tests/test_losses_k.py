"""k-group fairness terms (fairviz.losses, k-group section): values and gradients against
brute-force references (fairviz.metrics.spdd, scipy, explicit loops), absent groups, k = 2."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import scipy.stats as ss
import torch
from scipy.optimize import minimize_scalar

from fairviz import metrics
from fairviz.losses import (
    chi2_dro_constant,
    chi2_dro_loss,
    cvar_loss,
    mean_gap_k_loss,
    mean_gap_loss,
    mmd_k_loss,
    mmd_loss,
    shape_k_loss,
    shape_wasserstein_loss,
    spdd_loss,
    w1_pooled_loss,
    wasserstein_loss,
)

SIZES = [(3, 5, 2), (10, 10, 10, 10), (1, 7, 12, 4), (20, 3, 9, 30, 2)]


def kbatch(seed, sizes, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    p = torch.rand(n, generator=gen, dtype=dtype)
    s = torch.cat([torch.full((m,), g) for g, m in enumerate(sizes)])[torch.randperm(n, generator=gen)]
    return p, s


def brute_spdd(p, s):
    """∫ (max − min) of the selection rates, by evaluating the rates between every pair of
    consecutive distinct scores (the integrand is constant there)."""
    p, s = np.asarray(p, float), np.asarray(s)
    v = np.unique(p)
    total = 0.0
    for lo, hi in zip(v[:-1], v[1:]):
        rates = [np.mean(p[s == g] > lo) for g in np.unique(s)]
        total += (hi - lo) * (max(rates) - min(rates))
    return total


def brute_pooled(p, s):
    p, s = np.asarray(p, float), np.asarray(s)
    groups = np.unique(s)
    return 2.0 / len(groups) * sum(ss.wasserstein_distance(p[s == g], p) for g in groups)


def brute_mmd(x, s, h, scales=(0.25, 0.5, 1.0, 2.0, 4.0)):
    x = np.asarray(x, float).reshape(len(s), -1)

    def k(u, v):
        d2 = ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        return np.mean([np.exp(-d2 / (2 * c * h)) for c in scales], axis=0)

    vals = []
    for g, f in combinations(np.unique(s), 2):
        a, b = x[s == g], x[s == f]
        vals.append(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())
    return float(np.mean(vals))


def brute_mean_gap(z, s):
    z = np.asarray(z, float).reshape(len(s), -1)
    means = {g: z[s == g].mean(0) for g in np.unique(s)}
    return float(np.mean([((means[g] - means[f]) ** 2).sum() for g, f in combinations(sorted(means), 2)]))


@pytest.mark.parametrize("seed, sizes", list(enumerate(SIZES)))
def test_values_match_brute_force(seed, sizes):
    p, s = kbatch(seed, sizes)
    pn, sn = p.numpy(), s.numpy()
    assert float(spdd_loss(p, s)) == pytest.approx(brute_spdd(pn, sn), abs=1e-12)
    assert float(spdd_loss(p, s)) == pytest.approx(metrics.spdd(pn, sn), abs=1e-12)
    assert float(w1_pooled_loss(p, s)) == pytest.approx(brute_pooled(pn, sn), abs=1e-12)
    assert float(mmd_k_loss(p, s, bandwidth=0.05)) == pytest.approx(brute_mmd(pn, sn, 0.05), abs=1e-12)
    z = torch.randn(len(s), 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert float(mean_gap_k_loss(z, s)) == pytest.approx(brute_mean_gap(z.numpy(), sn), abs=1e-12)
    assert float(mmd_k_loss(z, s, bandwidth=2.0)) == pytest.approx(brute_mmd(z.numpy(), sn, 2.0), abs=1e-12)


def test_ties_and_input_forms():
    p, s = kbatch(7, (8, 6, 5))
    p = torch.round(p * 4) / 4  # many ties
    want = metrics.spdd(p.numpy(), s.numpy())
    assert float(spdd_loss(p, s)) == pytest.approx(want, abs=1e-12)
    assert float(spdd_loss(p[:, None], s.tolist())) == pytest.approx(want, abs=1e-12)
    assert float(spdd_loss(p, s.numpy().astype(float))) == pytest.approx(want, abs=1e-12)
    assert float(w1_pooled_loss(p, s)) == pytest.approx(brute_pooled(p.numpy(), s.numpy()), abs=1e-12)


def _fns():
    return {
        "spdd": lambda p, s: spdd_loss(p, s),
        "pooled": lambda p, s: w1_pooled_loss(p, s),
        "mmd": lambda p, s: mmd_k_loss(p, s, bandwidth=0.05),
        "gap": lambda p, s: mean_gap_k_loss(p, s),
    }


@pytest.mark.parametrize("name", list(_fns()))
@pytest.mark.parametrize("sizes", [(3, 4, 2), (5, 1, 3, 2)])
def test_gradients_match_finite_differences(name, sizes):
    """torch.autograd.gradcheck: analytic gradient vs central differences (float64; distinct
    scores, so the sort order is locally constant and SPDD / W1 are locally linear)."""
    p, s = kbatch(3, sizes)
    p = p.clone().requires_grad_(True)
    fn = _fns()[name]
    assert torch.autograd.gradcheck(lambda q: fn(q, s), (p,), eps=1e-7, atol=1e-6)


BRUTE = {
    "spdd": brute_spdd,
    "pooled": brute_pooled,
    "mmd": lambda p, s: brute_mmd(p, s, 0.05),
    "gap": brute_mean_gap,
}


@pytest.mark.parametrize("name", list(_fns()))
@pytest.mark.parametrize("seed, sizes", [(4, (3, 4, 2)), (5, (5, 1, 3, 2)), (6, (6, 2, 4, 3, 5))])
def test_gradients_match_brute_force_differences(name, seed, sizes):
    """The autograd gradient of each k-group term against central differences of its brute-force
    reference (numpy loops, independent of the torch code); distinct scores, steps far below the
    smallest gap between two scores, so no step changes the sort order."""
    p, s = kbatch(seed, sizes)
    q = p.clone().requires_grad_(True)
    _fns()[name](q, s).backward()
    pn, sn, h = p.numpy(), s.numpy(), 1e-7
    assert np.diff(np.sort(pn)).min() > 100 * h
    numeric = np.empty_like(pn)
    for i in range(len(pn)):
        up, down = pn.copy(), pn.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (BRUTE[name](up, sn) - BRUTE[name](down, sn)) / (2 * h)
    assert np.abs(q.grad.numpy()).max() > 1e-3  # a gradient worth comparing
    np.testing.assert_allclose(q.grad.numpy(), numeric, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("n0, n1", [(1, 1), (16, 16), (3, 7), (20, 44), (50, 2)])
def test_two_groups_give_the_binary_terms(n0, n1):
    """k = 2: same value (float64 to 1e-12, float32 to 1e-6) and same gradient as the binary terms."""
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        p, s = kbatch(n0 * 100 + n1, (n0, n1), dtype=dtype)
        z = torch.randn(n0 + n1, 4, generator=torch.Generator().manual_seed(n0), dtype=dtype)
        pairs = [
            (wasserstein_loss, spdd_loss, p, {}),
            (wasserstein_loss, w1_pooled_loss, p, {}),
            (mmd_loss, mmd_k_loss, p, {"bandwidth": 0.02}),
            (mmd_loss, mmd_k_loss, z, {}),
            (mean_gap_loss, mean_gap_k_loss, z, {}),
        ]
        for binary, kgroup, x, kw in pairs:
            xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            va, vb = binary(xa, s, **kw), kgroup(xb, s, **kw)
            assert float(vb.detach()) == pytest.approx(float(va.detach()), abs=tol)
            va.backward()
            vb.backward()
            torch.testing.assert_close(xb.grad, xa.grad, atol=tol * 10, rtol=1e-5)


def test_absent_groups_are_skipped():
    """Codes {0, 2, 3} (group 1 absent): finite, equal to the terms on the present groups."""
    p, s = kbatch(11, (6, 5, 7))
    s_gap = torch.tensor([0, 2, 3])[s]
    for fn in _fns().values():
        v = fn(p, s_gap)
        assert torch.isfinite(v)
        assert float(v) == pytest.approx(float(fn(p, s)), abs=1e-12)


@pytest.mark.parametrize("name", list(_fns()))
def test_one_group_gives_zero_with_a_gradient(name):
    p = torch.rand(9, dtype=torch.float64, requires_grad=True)
    v = _fns()[name](p, torch.full((9,), 2))
    assert float(v) == 0.0
    v.backward()
    assert torch.equal(p.grad, torch.zeros(9, dtype=torch.float64))


def test_bad_group_codes():
    p = torch.rand(4)
    with pytest.raises(ValueError, match="codes >= 0"):
        spdd_loss(p, [0, 1, -1, 2])
    with pytest.raises(ValueError, match="integer group codes"):
        w1_pooled_loss(p, [0, 1, 0.5, 2])
    with pytest.raises(ValueError, match="one group code per row"):
        mmd_k_loss(p, [0, 1, 2])


def test_terms_shrink_when_groups_align():
    """Moving every group onto the same scores drives all four terms to 0 (they measure the gap)."""
    v = torch.rand(12, dtype=torch.float64)
    p = torch.cat([v, v, v])
    s = torch.arange(3).repeat_interleave(12)
    for name, fn in _fns().items():
        assert abs(float(fn(p, s))) < 1e-12, name
    assert float(spdd_loss(p + 0.3 * (s == 1).double(), s)) == pytest.approx(0.3, abs=1e-12)


# --------------------------------------------------------------------------------------------
# fairoffset's shape term for k groups


@pytest.mark.parametrize("form, reference", [("spdd", brute_spdd), ("pooled", brute_pooled)])
@pytest.mark.parametrize("sizes", [(3, 4, 2), (5, 1, 3, 2), (10, 10, 10, 10)])
def test_shape_k_loss_value_and_gradient(form, reference, sizes):
    """Value: σ·D/(σ + eps) with D the brute-force distance. Gradient: ∇D − (D/σ)·∇σ
    (autograd of the plain pieces), checked against central differences of σ₀·D/σ (σ₀ fixed);
    none of it along the score scale, p → m + c·(p − m)."""
    p, s = kbatch(5, sizes)
    pn, sn = p.numpy(), s.numpy()
    D, sigma = reference(pn, sn), float(np.std(pn))
    eps = 1e-4
    q = p.clone().requires_grad_(True)
    v = shape_k_loss(q, s, form, eps)
    assert float(v) == pytest.approx(sigma * D / (sigma + eps), abs=1e-12)
    v.backward()
    # the same gradient assembled from the distance and the std
    d = p.clone().requires_grad_(True)
    plain = (spdd_loss if form == "spdd" else w1_pooled_loss)(d, s)
    (g_d,) = torch.autograd.grad(plain, d)
    (g_s,) = torch.autograd.grad(d.std(unbiased=False), d)
    torch.testing.assert_close(q.grad, sigma / (sigma + eps) * (g_d - (D / (sigma + eps)) * g_s), atol=1e-10, rtol=0)
    # central differences of σ₀·D(q)/(σ(q) + eps) with σ₀ held at the current σ
    dist = spdd_loss if form == "spdd" else w1_pooled_loss
    assert torch.autograd.gradcheck(
        lambda x: sigma * dist(x, s) / (x.std(unbiased=False) + eps), (p.clone().requires_grad_(True),),
        eps=1e-7, atol=1e-6)
    # eps = 0: exactly scale-free, so the derivative along (p − mean) is 0
    q0 = p.clone().requires_grad_(True)
    shape_k_loss(q0, s, form, 0.0).backward()
    assert abs(float(q0.grad @ (p - p.mean()))) < 1e-12


@pytest.mark.parametrize("n0, n1", [(16, 16), (3, 7), (20, 44)])
def test_shape_k_loss_with_two_groups_is_the_binary_shape_term(n0, n1):
    for form in ("spdd", "pooled"):
        p, s = kbatch(n0 + 7 * n1, (n0, n1))
        xa, xb = p.clone().requires_grad_(True), p.clone().requires_grad_(True)
        va, vb = shape_wasserstein_loss(xa, s), shape_k_loss(xb, s, form)
        assert float(vb) == pytest.approx(float(va), abs=1e-12)
        va.backward()
        vb.backward()
        torch.testing.assert_close(xb.grad, xa.grad, atol=1e-11, rtol=1e-7)


def test_shape_k_loss_edge_cases_and_bad_input():
    p = torch.rand(9, dtype=torch.float64, requires_grad=True)
    v = shape_k_loss(p, torch.full((9,), 3))  # one group: 0 with a gradient
    v.backward()
    assert float(v) == 0.0 and torch.equal(p.grad, torch.zeros(9, dtype=torch.float64))
    const = torch.full((8,), 0.4, dtype=torch.float64, requires_grad=True)
    assert float(shape_k_loss(const, torch.arange(8) % 3)) == 0.0  # a constant batch: 0, not NaN
    with pytest.raises(ValueError, match="form must be one of"):
        shape_k_loss(p, torch.arange(9) % 3, "max")
    with pytest.raises(ValueError, match="eps must be >= 0"):
        shape_k_loss(p, torch.arange(9) % 3, "spdd", -1.0)


# --------------------------------------------------------------------------------------------
# robust objectives without group labels


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.37, 1.0])
def test_cvar_matches_its_variational_form(alpha):
    ell = torch.rand(23, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x = ell.numpy()
    ref = minimize_scalar(lambda e: e + np.maximum(x - e, 0).mean() / alpha, bounds=(0, 1), method="bounded",
                          options={"xatol": 1e-12})
    assert float(cvar_loss(ell, alpha)) == pytest.approx(ref.fun, abs=1e-8)
    if alpha * 23 == int(alpha * 23) or alpha == 1.0:
        assert float(cvar_loss(ell, alpha)) == pytest.approx(np.sort(x)[::-1][: int(alpha * 23)].mean(), abs=1e-12)
    q = ell.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: cvar_loss(v, alpha), (q,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("alpha_min", [0.1, 0.2, 0.5])
def test_chi2_dro_matches_scipy_and_bounds_every_large_group(alpha_min):
    gen = torch.Generator().manual_seed(5)
    ell = torch.rand(40, generator=gen, dtype=torch.float64) ** 3
    x = ell.numpy()
    C = chi2_dro_constant(alpha_min)
    assert C == pytest.approx(np.sqrt(2 * (1 / alpha_min - 1) ** 2 + 1))
    ref = minimize_scalar(lambda e: C * np.sqrt(np.mean(np.maximum(x - e, 0) ** 2)) + e,
                          bounds=(-50, 1), method="bounded", options={"xatol": 1e-12})
    val = float(chi2_dro_loss(ell, alpha_min))
    assert val == pytest.approx(ref.fun, abs=1e-6)
    # the risk bounds the mean loss of every subgroup of share >= alpha_min (the worst such
    # subgroup is the top-loss share), and is >= the mean
    worst = np.sort(x)[::-1][: int(np.ceil(alpha_min * 40))].mean()
    assert val >= worst - 1e-9 and val >= x.mean()
    q = ell.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: chi2_dro_loss(v, alpha_min), (q,), eps=1e-7, atol=1e-5)


def test_robust_losses_bad_input():
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        cvar_loss(torch.rand(4), 0.0)
    with pytest.raises(ValueError, match="alpha_min"):
        chi2_dro_loss(torch.rand(4), 1.5)
    with pytest.raises(ValueError, match="1-D"):
        cvar_loss(torch.rand(4, 2), 0.5)
    ell = torch.rand(5, dtype=torch.float64)
    assert float(chi2_dro_loss(ell, 1.0)) == float(ell.mean())
