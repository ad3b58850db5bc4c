"""fairviz.losses: exactness against metrics.spdd / scipy, gradients, edge cases, bias."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss
import torch

from fairviz import metrics
from fairviz.losses import mean_gap_loss, mmd_loss, scaled_wasserstein_loss, shape_wasserstein_loss, wasserstein_loss


def batch(gen, n0, n1, dtype=torch.float64):
    p = torch.rand(n0 + n1, generator=gen, dtype=dtype)
    s = torch.cat([torch.zeros(n0), torch.ones(n1)])[torch.randperm(n0 + n1, generator=gen)]
    return p, s


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("n0, n1", [(1, 1), (16, 16), (64, 64), (3, 7), (20, 44), (1, 30), (50, 2)])
def test_wasserstein_loss_equals_spdd_in_float64(gen, n0, n1):
    p, s = batch(gen, n0, n1)
    got = float(wasserstein_loss(p, s))
    assert abs(got - metrics.spdd(p.numpy(), s.numpy().astype(int))) < 1e-12
    a, b = p[s == 0].numpy(), p[s == 1].numpy()
    assert abs(got - ss.wasserstein_distance(a, b)) < 1e-12


def test_wasserstein_loss_with_ties_and_shapes(gen):
    p = torch.round(torch.rand(40, generator=gen, dtype=torch.float64) * 4) / 4
    s = torch.arange(40) % 3 == 0  # bool groups, 14 vs 26
    want = metrics.spdd(p.numpy(), s.numpy())
    assert float(wasserstein_loss(p, s)) == pytest.approx(want, abs=1e-12)
    assert float(wasserstein_loss(p[:, None], s.long().tolist())) == pytest.approx(want, abs=1e-12)
    assert float(wasserstein_loss(p, s.numpy().astype(float))) == pytest.approx(want, abs=1e-12)


def test_n_quantiles_variant(gen):
    p, s = batch(gen, 37, 37)
    exact = float(wasserstein_loss(p, s))
    assert float(wasserstein_loss(p, s, n_quantiles=37)) == pytest.approx(exact, abs=1e-12)
    p, s = batch(gen, 30, 70)
    exact = float(wasserstein_loss(p, s))
    errs = [abs(float(wasserstein_loss(p, s, n_quantiles=k)) - exact) for k in (10, 100, 2100)]
    assert errs[-1] < 1e-12  # 2100 = lcm(30, 70) · 10: every merged level is hit
    assert errs[1] < 0.02


def test_identical_groups_give_zero(gen):
    v = torch.rand(25, generator=gen, dtype=torch.float64)
    p = torch.cat([v, v.flip(0)])
    s = torch.cat([torch.zeros(25), torch.ones(25)])
    assert float(wasserstein_loss(p, s)) == 0.0
    assert float(mean_gap_loss(p, s)) == pytest.approx(0.0, abs=1e-30)
    assert abs(float(mmd_loss(p, s))) < 1e-12


def test_unbiased_for_unequal_group_sizes():
    # identical uniform distributions: 20 vs 44 must look like an equal-size batch (1/20 + 1/44
    # ≈ 2/28), not like the ≈ 0.27 that truncating the larger group gives
    g = torch.Generator().manual_seed(1)
    draws = 600

    def mean_loss(n0, n1):
        p = torch.rand(draws, n0 + n1, generator=g, dtype=torch.float64)
        s = torch.cat([torch.zeros(n0), torch.ones(n1)])
        return float(np.mean([float(wasserstein_loss(row, s)) for row in p]))

    unequal, equal = mean_loss(20, 44), mean_loss(28, 28)
    assert unequal == pytest.approx(equal, rel=0.08)
    assert unequal < 0.1
    truncated = float(np.mean([
        float((torch.sort(torch.rand(20, generator=g)).values - torch.sort(torch.rand(44, generator=g)).values[:20]).abs().mean())
        for _ in range(200)
    ]))
    assert truncated > 0.25  # the biased estimate this loss avoids


def test_gradcheck(gen):
    p = torch.rand(24, generator=gen, dtype=torch.float64, requires_grad=True)
    s = (torch.arange(24) % 3 == 0).long()  # 8 vs 16
    assert torch.autograd.gradcheck(lambda q: wasserstein_loss(q, s), (p,))
    assert torch.autograd.gradcheck(lambda q: wasserstein_loss(q, s, n_quantiles=11), (p,))
    z = torch.rand(24, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q: mean_gap_loss(q, s), (z,))
    assert torch.autograd.gradcheck(lambda q: mmd_loss(q, s, bandwidth=0.3), (z,))


# --------------------------------------------------------------------------------------------
# the scale-free W1 (fairoffset's term)


@pytest.mark.parametrize("n0, n1", [(2, 2), (16, 16), (3, 7), (20, 44), (50, 2)])
def test_scaled_wasserstein_is_w1_of_standardised_scores(gen, n0, n1):
    p, s = batch(gen, n0, n1)
    x = p.numpy()
    z = (x - x.mean()) / x.std()  # population std of the whole batch
    want = ss.wasserstein_distance(z[s.numpy() == 0], z[s.numpy() == 1])
    assert float(scaled_wasserstein_loss(p, s, eps=0.0)) == pytest.approx(want, abs=1e-12)
    assert float(scaled_wasserstein_loss(p, s)) == pytest.approx(want * x.std() / (x.std() + 1e-4), abs=1e-12)


def test_scaled_wasserstein_ignores_scale_and_shift(gen):
    p, s = batch(gen, 20, 30)
    base = float(scaled_wasserstein_loss(p, s, eps=0.0))
    for c, t in ((0.01, 0.3), (0.5, -2.0), (7.0, 0.0)):
        assert float(scaled_wasserstein_loss(c * p + t, s, eps=0.0)) == pytest.approx(base, rel=1e-10)
    # while plain W1 is linear in the scale: shrinking all scores is a way down for it
    assert float(wasserstein_loss(0.1 * p, s)) == pytest.approx(0.1 * float(wasserstein_loss(p, s)), rel=1e-12)


def test_scaled_wasserstein_has_no_gradient_along_the_score_scale(gen):
    # d/dc L(m + c (p - m)) at c = 1: -W1 / std for plain W1 in these units, 0 for the scaled one
    p, s = batch(gen, 24, 40)
    m = p.mean()
    c = torch.ones((), dtype=torch.float64, requires_grad=True)
    q = m + c * (p - m)
    (g_scaled,) = torch.autograd.grad(scaled_wasserstein_loss(q, s, eps=0.0), c)
    (g_plain,) = torch.autograd.grad(wasserstein_loss(m + c * (p - m), s), c)
    assert abs(float(g_scaled)) < 1e-12
    assert float(g_plain) == pytest.approx(float(wasserstein_loss(p, s)), rel=1e-12)


def test_scaled_wasserstein_gradcheck(gen):
    p = torch.rand(24, generator=gen, dtype=torch.float64, requires_grad=True)
    s = (torch.arange(24) % 3 == 0).long()
    assert torch.autograd.gradcheck(lambda q: scaled_wasserstein_loss(q, s), (p,))
    assert torch.autograd.gradcheck(lambda q: scaled_wasserstein_loss(q[:, None], s, eps=0.0), (p,))


def test_scaled_wasserstein_edge_cases(gen):
    s = torch.tensor([0, 1, 0, 1])
    const = torch.full((4,), 0.4, requires_grad=True)
    loss = scaled_wasserstein_loss(const, s)
    loss.backward()
    assert float(loss) == 0.0 and torch.isfinite(const.grad).all()
    p = torch.rand(6, generator=gen, requires_grad=True)
    loss = scaled_wasserstein_loss(p, torch.ones(6))
    loss.backward()
    assert float(loss) == 0.0 and float(p.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="eps"):
        scaled_wasserstein_loss(p, torch.ones(6), eps=-1.0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        scaled_wasserstein_loss(p, torch.tensor([0, 1, 2, 0, 1, 0]))


@pytest.mark.parametrize("n0, n1", [(16, 16), (3, 7), (20, 44)])
def test_shape_wasserstein_is_w1_with_the_scale_component_of_its_gradient_removed(gen, n0, n1):
    p, s = batch(gen, n0, n1)
    q = p.clone().requires_grad_(True)
    loss = shape_wasserstein_loss(q, s, eps=0.0)
    assert float(loss) == pytest.approx(float(wasserstein_loss(p, s)), rel=1e-12)
    (g,) = torch.autograd.grad(loss, q)
    # reference: ∇W1 − (W1/σ)·∇σ from the two functions' own (gradchecked) gradients
    q1 = p.clone().requires_grad_(True)
    w = wasserstein_loss(q1, s)
    (gw,) = torch.autograd.grad(w, q1)
    q2 = p.clone().requires_grad_(True)
    sd = q2.std(unbiased=False)
    (gs,) = torch.autograd.grad(sd, q2)
    np.testing.assert_allclose(g.numpy(), (gw - float(w) / float(sd) * gs).numpy(), atol=1e-12)
    # no component along the scale direction p − mean, none along the shift direction 1
    u = (p - p.mean()).numpy()
    assert abs(float(g.numpy() @ u)) < 1e-12 and abs(float(g.sum())) < 1e-12
    # while plain W1's gradient along the scale is W1 itself: a pull towards a constant score
    assert float(gw.numpy() @ u) == pytest.approx(float(w), rel=1e-10)


def test_shape_wasserstein_gradient_does_not_blow_up_for_nearly_constant_scores(gen):
    p, s = batch(gen, 32, 32)
    tiny = (0.5 + 1e-3 * (p - 0.5)).requires_grad_(True)
    (g_shape,) = torch.autograd.grad(shape_wasserstein_loss(tiny, s), tiny)
    t2 = tiny.detach().clone().requires_grad_(True)
    (g_scaled,) = torch.autograd.grad(scaled_wasserstein_loss(t2, s), t2)
    assert float(g_shape.abs().max()) < 2.0 / 32  # at most W1's own per-row weight (1/n) × 2
    assert float(g_scaled.abs().max()) > 50 * float(g_shape.abs().max())  # W1/σ's grows like 1/σ


def test_one_group_batch_is_zero_with_a_gradient(gen):
    p = torch.rand(10, generator=gen, requires_grad=True)
    z = torch.rand(10, 4, generator=gen, requires_grad=True)
    for s in (torch.zeros(10), torch.ones(10, dtype=torch.long), torch.ones(10, dtype=torch.bool)):
        for fn, x in ((wasserstein_loss, p), (mmd_loss, z), (mean_gap_loss, z)):
            x.grad = None
            loss = fn(x, s)
            assert loss.dim() == 0 and float(loss.detach()) == 0.0
            loss.backward()
            assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) == 0.0


def test_gradients_finite_with_ties(gen):
    p = torch.tensor([0.5, 0.5, 0.5, 0.2, 0.5, 0.5], requires_grad=True)
    s = torch.tensor([0, 0, 1, 1, 0, 1])
    for fn in (wasserstein_loss, mmd_loss, mean_gap_loss):
        p.grad = None
        fn(p, s).backward()
        assert torch.isfinite(p.grad).all()


def test_mean_gap_and_mmd_against_numpy(gen):
    z = torch.rand(30, 5, generator=gen, dtype=torch.float64)
    s = (torch.arange(30) % 4 == 0).long()
    a, b = z[s == 0].numpy(), z[s == 1].numpy()
    assert float(mean_gap_loss(z, s)) == pytest.approx(((a.mean(0) - b.mean(0)) ** 2).sum(), abs=1e-12)
    # MMD²: biased V-statistic with the mixture kernel and the median heuristic
    X = z.numpy()
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    h = np.median(d2[~np.eye(30, dtype=bool)])

    def k(u, v):
        dd = ((u[:, None] - v[None]) ** 2).sum(-1)
        return np.mean([np.exp(-dd / (2 * c * h)) for c in (0.25, 0.5, 1, 2, 4)], axis=0)

    want = k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()
    assert float(mmd_loss(z, s)) == pytest.approx(want, rel=1e-10)
    assert float(mmd_loss(z, s)) > 0


def test_bad_group_values(gen):
    p = torch.rand(6, generator=gen)
    with pytest.raises(ValueError, match="only 0 and 1"):
        wasserstein_loss(p, torch.tensor([0, 1, 2, 0, 1, 0]))
    with pytest.raises(ValueError, match="one 0/1 group value per row"):
        mean_gap_loss(p, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        wasserstein_loss(torch.rand(3, 2), torch.tensor([0, 1, 0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(gen):
    p, s = batch(gen, 30, 50)
    want = float(wasserstein_loss(p, s))
    pc = p.cuda().requires_grad_()
    loss = wasserstein_loss(pc, s.cuda())
    loss.backward()
    assert loss.device.type == "cuda" and float(loss) == pytest.approx(want, abs=1e-12)
    z = torch.rand(80, 4, device="cuda", requires_grad=True)
    (mmd_loss(z, s.cuda()) + mean_gap_loss(z, s.cuda())).backward()
    assert torch.isfinite(z.grad).all()


def _fit_linear(term, lam: float, seed: int = 0, steps: int = 400):
    """A linear scorer trained by Adam on batches of 64 from fair data (S independent of X, y):
    returns the std of its scores and their correlation with y on all 2,000 rows."""
    g = torch.Generator().manual_seed(seed)
    n, d = 2000, 5
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    s = torch.randint(0, 2, (n,), generator=g)
    y = 0.5 + x @ torch.full((d,), 0.05, dtype=torch.float64) + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01)
    for _ in range(steps):
        idx = torch.randint(0, n, (64,), generator=g)
        p = b + x[idx] @ w
        loss = ((p - y[idx]) ** 2).mean() + (lam * term(p, s[idx]) if term is not None else 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = (b + x @ w).detach().numpy()
    return float(p.std()), float(np.corrcoef(p, y.numpy())[0, 1])


def test_no_collapse_where_plain_w1_collapses():
    # On fair data the batch W1 is all finite-sample floor (≈ σ/√32 per batch), a cost linear in
    # the score scale: plain W1 shrinks the scores towards a constant; the shape term does not.
    std0, r0 = _fit_linear(None, 0.0)
    std_w1, _ = _fit_linear(wasserstein_loss, 1.0)
    std_shape, r_shape = _fit_linear(shape_wasserstein_loss, 1.0)
    assert r0 > 0.85
    assert std_w1 < 0.3 * std0
    assert std_shape > 0.9 * std0 and r_shape > r0 - 0.02
