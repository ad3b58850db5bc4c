"""Differentiable fairness penalties for training (torch; CPU or CUDA, no host round trips
beyond the ones boolean indexing needs).

- `wasserstein_loss(pred, s)`: W1 between the two groups' predictions in a batch, by matching
  quantiles. Both sorted groups are read off at one common set of quantile levels, so groups
  of different sizes are compared at the same levels (truncating the larger group to the
  smaller one's size instead compares the smaller group with the bottom of the larger one: two
  identical uniform groups of 20 and 44 then score ≈ 0.27 instead of ≈ 0.08). By default the
  common levels are the union of both groups' levels {i/n0} ∪ {j/n1}, which makes the loss the
  exact W1 between the two empirical distributions (= `fairviz.metrics.spdd` on the batch);
  ``n_quantiles=K`` uses the K mid-point levels (k + ½)/K instead (cheaper for big batches).
- `scaled_wasserstein_loss(pred, s)`: W1 divided by the batch's score std, i.e. W1 between the
  groups' *standardised* scores. W1 in score units is linear in the spread of the scores while
  the MSE is quadratic in it, so a W1 penalty is cheapest to pay by shrinking every score
  towards one constant (and past some weight the constant is the optimum). Divided by the std
  the term is the same for c·pred + t (c > 0): it can only be lowered by changing the *shape*
  of the groups' distributions, never by shrinking them.
- `shape_wasserstein_loss(pred, s)`: the training form of the same idea. Its value is W1 (score
  units, comparable with `wasserstein_loss`), its gradient is W1's with the component along the
  score scale removed: ∇W1 − (W1/σ)·∇σ. Unlike the gradient of W1/σ it does not grow like 1/σ
  when the scores are still nearly constant (as at initialisation).
- `mmd_loss(x, s)`: squared maximum mean discrepancy with a mixture of Gaussian kernels whose
  bandwidths come from the batch (median heuristic × {¼, ½, 1, 2, 4}).
- `mean_gap_loss(z, s)`: squared distance between the two group means of a representation.

Groups ``s`` are 0/1 per row (bool, int or float tensors, numpy arrays or lists). A batch that
holds one group only gives 0 (a zero that still carries a gradient), never NaN.
"""

from __future__ import annotations

import torch

from fairviz.dro import chi2_dro_constant, chi2_dro_loss, cvar_loss

__all__ = [
    "mean_gap_loss", "mmd_loss", "scaled_wasserstein_loss", "shape_wasserstein_loss", "wasserstein_loss", "MMD_SCALES",
    "cvar_loss", "chi2_dro_loss", "chi2_dro_constant",
]

MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def _group_vector(x: torch.Tensor, s, name: str, what: str) -> torch.Tensor:
    """s as a (B,) tensor on x's device, one value per row of x (a (B, 1) column is accepted)."""
    s_t = torch.as_tensor(s, device=x.device)
    if s_t.dim() == 2 and s_t.shape[1] == 1:
        s_t = s_t[:, 0]
    if s_t.dim() != 1 or s_t.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}: s must be one {what} per row ({x.shape[0]} rows), got shape {tuple(s_t.shape)}"
        )
    return s_t


def _split(x: torch.Tensor, s, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of x for group 0 and group 1 (x (B, ...), s (B,) in {0, 1})."""
    s_t = _group_vector(x, s, name, "0/1 group value")
    if s_t.dtype == torch.bool:
        one = s_t
    else:
        one = s_t == 1
        if bool(((s_t != 0) & ~one).any()):
            raise ValueError(f"{name}: s must hold only 0 and 1 (1 = privileged group)")
    return x[~one], x[one]


def _zero(x: torch.Tensor) -> torch.Tensor:
    """0 connected to the graph of x (a defined, zero gradient)."""
    return (x * 0.0).sum()


def _flat_pred(pred: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(pred):
        raise ValueError("pred must be a torch tensor")
    if pred.dim() == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.dim() != 1:
        raise ValueError(f"pred must have shape (B,) or (B, 1), got {tuple(pred.shape)}")
    return pred


def wasserstein_loss(pred: torch.Tensor, s, n_quantiles: int | None = None) -> torch.Tensor:
    """W1 between the predictions of group 0 and group 1 in the batch (scalar tensor).

    pred: (B,) or (B, 1) scores; s: (B,) 0/1. ``n_quantiles=None``: exact W1 between the two
    empirical distributions (common levels = the union of both groups' levels). An integer K:
    mean over the levels (k + ½)/K of |Q0 − Q1| (step quantiles). Differentiable almost
    everywhere (through the sort); 0 with a gradient when the batch holds one group only.
    """
    p = _flat_pred(pred)
    a, b = _split(p, s, "wasserstein_loss")
    na, nb = a.shape[0], b.shape[0]
    if na == 0 or nb == 0:
        return _zero(p)
    a = torch.sort(a).values
    b = torch.sort(b).values
    dev = p.device
    if n_quantiles is None:
        if na == nb:
            return (a - b).abs().mean()
        # breakpoints of the merged quantile levels, in units of 1 / (na · nb)
        e = torch.cat(
            [
                torch.arange(1, na + 1, device=dev, dtype=torch.int64) * nb,
                torch.arange(1, nb + 1, device=dev, dtype=torch.int64) * na,
            ]
        )
        e = torch.unique(e, sorted=True)
        width = torch.diff(e, prepend=torch.zeros(1, device=dev, dtype=torch.int64))
        ia = torch.div(e - 1, nb, rounding_mode="floor")  # ceil(u·na) − 1 with u = e / (na·nb)
        ib = torch.div(e - 1, na, rounding_mode="floor")
        w = width.to(p.dtype) / float(na * nb)
        return ((a[ia] - b[ib]).abs() * w).sum()
    K = int(n_quantiles)
    if K < 1:
        raise ValueError(f"n_quantiles must be a positive integer or None, got {n_quantiles!r}")
    k2 = 2 * torch.arange(K, device=dev, dtype=torch.int64) + 1  # u = k2 / (2K)
    ia = torch.div(k2 * na + 2 * K - 1, 2 * K, rounding_mode="floor") - 1  # ceil(u·na) − 1
    ib = torch.div(k2 * nb + 2 * K - 1, 2 * K, rounding_mode="floor") - 1
    return (a[ia] - b[ib]).abs().mean()


def scaled_wasserstein_loss(pred: torch.Tensor, s, eps: float = 1e-4) -> torch.Tensor:
    """W1 between the groups' predictions over the batch std of all predictions (scalar, unitless).

    pred: (B,) or (B, 1); s: (B,) 0/1. Equals the exact W1 between the two groups' standardised
    scores (pred − mean) / std, with std the population std of the whole batch (both groups) plus
    `eps` (so a constant batch gives 0, not NaN). Invariant to pred → c·pred + t for c > 0 up to
    `eps`, so its gradient has no component along the score scale. 0 with a gradient when the
    batch holds one group only.
    """
    p = _flat_pred(pred)
    return _scale_free(p, lambda: wasserstein_loss(p, s), eps, "scaled_wasserstein_loss")


def _scale_free(p: torch.Tensor, distance, eps: float, name: str) -> torch.Tensor:
    """distance() / (σ + eps), σ the population std of the batch p (B,); distance() alone for B < 2."""
    if not eps >= 0:
        raise ValueError(f"{name}: eps must be >= 0, got {eps!r}")
    w = distance()
    if p.shape[0] < 2:
        return w
    return w / (p.std(unbiased=False) + eps)


def _shape_only(p: torch.Tensor, distance, eps: float, name: str) -> torch.Tensor:
    """σ·distance()/(σ + eps) with the first σ held fixed: the value of the distance, the gradient
    of σ₀·distance/σ (no component along the score scale)."""
    scaled = _scale_free(p, distance, eps, name)
    if p.shape[0] < 2:
        return scaled
    return p.detach().std(unbiased=False) * scaled


def shape_wasserstein_loss(pred: torch.Tensor, s, eps: float = 1e-4) -> torch.Tensor:
    """W1 between the groups' predictions, with no gradient along the score scale (scalar tensor).

    Value: σ·W1/(σ + eps) ≈ `wasserstein_loss(pred, s)` (σ the batch's population std). Gradient:
    that of σ₀·`scaled_wasserstein_loss` with σ₀ = σ held fixed, i.e. ∇W1 − (W1/σ)·∇σ up to
    `eps`: the penalty moves the groups' distributions towards each other but never pays for
    fairness by shrinking every score towards a constant.
    """
    p = _flat_pred(pred)
    return _shape_only(p, lambda: wasserstein_loss(p, s), eps, "shape_wasserstein_loss")


def _as_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.is_tensor(x):
        raise ValueError(f"{name}: x must be a torch tensor")
    if x.dim() == 1:
        return x[:, None]
    if x.dim() != 2:
        raise ValueError(f"{name}: x must have shape (B,) or (B, d), got {tuple(x.shape)}")
    return x


def mmd_loss(x: torch.Tensor, s, scales=MMD_SCALES, bandwidth: float | None = None) -> torch.Tensor:
    """Squared MMD between the rows of group 0 and group 1 (biased V-statistic, ≥ 0).

    x: (B,) or (B, d). Kernel: the mean of Gaussian kernels exp(−‖u − v‖² / (2·c·h)) over
    c in ``scales``, h = the median pairwise squared distance in the batch (treated as a
    constant; 1 when all rows coincide), or ``bandwidth`` when given. 0 with a gradient when
    the batch holds one group only.
    """
    X = _as_rows(x, "mmd_loss")
    a, b = _split(X, s, "mmd_loss")
    if a.shape[0] == 0 or b.shape[0] == 0:
        return _zero(X)
    h = _bandwidth(X, bandwidth, "mmd_loss")
    kaa, kbb, kab = (_kernel(u, v, h, scales) for u, v in ((a, a), (b, b), (a, b)))
    return kaa.mean() + kbb.mean() - 2.0 * kab.mean()


def _bandwidth(X: torch.Tensor, bandwidth: float | None, name: str) -> torch.Tensor:
    """The kernels' base bandwidth h (squared units of X): `bandwidth`, or the batch median."""
    if bandwidth is None:
        return _median_sq_dist(X)
    if not float(bandwidth) > 0:
        raise ValueError(f"{name}: bandwidth must be positive, got {bandwidth!r}")
    return torch.tensor(float(bandwidth), device=X.device, dtype=X.dtype)


def _kernel(u: torch.Tensor, v: torch.Tensor, h: torch.Tensor, scales) -> torch.Tensor:
    """(len(u), len(v)) mean over c in `scales` of exp(−‖u − v‖² / (2·c·h)); u, v: (n, d)."""
    d2 = (u[:, None, :] - v[None, :, :]).pow(2).sum(-1)
    return torch.stack([torch.exp(-d2 / (2.0 * c * h)) for c in scales]).mean(0)


def _median_sq_dist(X: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        d2_all = torch.cdist(X.detach(), X.detach()).pow(2)
        n = X.shape[0]
        off = d2_all[~torch.eye(n, dtype=torch.bool, device=X.device)]
        h = off.median() if off.numel() else torch.ones((), device=X.device, dtype=X.dtype)
        return torch.where(h > 0, h, torch.ones_like(h))


def mean_gap_loss(z: torch.Tensor, s) -> torch.Tensor:
    """‖mean(z | s = 0) − mean(z | s = 1)‖² for a representation z (B, d) or (B,)."""
    Z = _as_rows(z, "mean_gap_loss")
    a, b = _split(Z, s, "mean_gap_loss")
    if a.shape[0] == 0 or b.shape[0] == 0:
        return _zero(Z)
    return (a.mean(0) - b.mean(0)).pow(2).sum()


# ---------------------------------------------------------------------------------------------
# k groups
#
# Groups ``s`` are non-negative integer codes 0..k-1 per row (bool and 0/1 work too). Only the
# groups present in the batch count: an absent group is skipped, and a batch with fewer than two
# groups gives 0 with a gradient. For k = 2 every term below is the binary term above (same
# value up to float rounding, same gradient): the k-group SPDD and the pooled form are W1
# between the two groups, the pairwise MMD and mean gap have one pair.
#   spdd_loss        ∫ (max − min) of the groups' selection rates (the paper's SPDD)
#   w1_pooled_loss   each group's W1 to the batch's pooled scores
#   shape_k_loss     either of the two without its gradient along the score scale (fairoffset)
#   mmd_k_loss       squared MMD, mean over pairs of groups
#   mean_gap_k_loss  squared distance of group means of Z, mean over pairs of groups

__all__ += ["spdd_loss", "w1_pooled_loss", "shape_k_loss", "mmd_k_loss", "mean_gap_k_loss"]


def _codes(x: torch.Tensor, s, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes (B,) int64 on x's device, present (G,) the group codes that occur, ascending)."""
    s_t = _group_vector(x, s, name, "group code")
    if s_t.dtype != torch.bool and (s_t.is_floating_point() or s_t.is_complex()):
        if bool((s_t != torch.round(s_t.real)).any()):
            raise ValueError(f"{name}: s must hold integer group codes 0, 1, 2, ...")
    codes = s_t.long()
    if codes.numel() and int(codes.min()) < 0:
        raise ValueError(f"{name}: s must hold group codes >= 0 (rows with an unknown group must be left out)")
    return codes, torch.unique(codes)


def _group_cdfs(p: torch.Tensor, codes: torch.Tensor, present: torch.Tensor):
    """Pooled sorted scores and each present group's empirical CDF between them.

    Returns (widths (N-1,) = gaps between consecutive sorted scores, carrying the gradient;
    cdf (N-1, G) = share of group g at or below the j-th sorted score, constant pieces).
    """
    z, order = torch.sort(p)
    onehot = (codes[order][:, None] == present[None, :]).to(p.dtype)  # (N, G)
    cdf = torch.cumsum(onehot, 0)[:-1] / onehot.sum(0)  # (N-1, G)
    return torch.diff(z), cdf


def spdd_loss(pred: torch.Tensor, s) -> torch.Tensor:
    """The paper's SPDD for k groups on a batch: ∫ (max_g − min_g) P(Ŷ > τ | S = g) dτ (scalar).

    pred: (B,) or (B, 1) scores; s: (B,) group codes. Exact for the empirical distributions:
    between two consecutive pooled scores every selection rate is constant, so the integral is
    Σ_j (z_{j+1} − z_j)·(max_g F_g − min_g F_g) over the sorted scores z (F_g = 1 − rate). The
    gradient flows through the sort into the gaps (almost everywhere the exact derivative).
    Equals `fairviz.metrics.spdd` on the batch's present groups; W1 for two groups.
    """
    p = _flat_pred(pred)
    codes, present = _codes(p, s, "spdd_loss")
    if present.numel() < 2:
        return _zero(p)
    widths, cdf = _group_cdfs(p, codes, present)
    gap = cdf.max(1).values - cdf.min(1).values
    return (widths * gap).sum()


def w1_pooled_loss(pred: torch.Tensor, s) -> torch.Tensor:
    """(2 / G) · Σ_g W1(group g's scores, the batch's pooled scores) over the G present groups.

    The pooled distribution holds every row of the batch. The factor 2/G makes two groups give
    exactly W1 between them (W1(g, pooled) = share of the other group × W1, and the shares add
    to 1); for k groups it is twice the mean distance of a group to the pool.
    """
    p = _flat_pred(pred)
    codes, present = _codes(p, s, "w1_pooled_loss")
    G = present.numel()
    if G < 2:
        return _zero(p)
    widths, cdf = _group_cdfs(p, codes, present)
    n = p.shape[0]
    pooled = torch.arange(1, n, device=p.device, dtype=p.dtype) / n  # (N-1,)
    return (2.0 / G) * (widths[:, None] * (cdf - pooled[:, None]).abs()).sum()


def shape_k_loss(pred: torch.Tensor, s, form: str = "spdd", eps: float = 1e-4) -> torch.Tensor:
    """`shape_wasserstein_loss` for k groups: the value of `spdd_loss` (``form="spdd"``) or
    `w1_pooled_loss` (``"pooled"``), the gradient ∇D − (D/σ)·∇σ (none along the score scale)."""
    p = _flat_pred(pred)
    fns = {"spdd": spdd_loss, "pooled": w1_pooled_loss}
    if form not in fns:
        raise ValueError(f"shape_k_loss: form must be one of {sorted(fns)}, got {form!r}")
    return _shape_only(p, lambda: fns[form](p, s), eps, "shape_k_loss")


def _pair_means(K: torch.Tensor, codes: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(G, G) block means of a (B, B) matrix: entry (g, h) = mean of K over rows g × columns h."""
    onehot = (codes[:, None] == present[None, :]).to(K.dtype)  # (B, G)
    counts = onehot.sum(0)
    return (onehot.T @ K @ onehot) / (counts[:, None] * counts[None, :])


def mmd_k_loss(x: torch.Tensor, s, scales=MMD_SCALES, bandwidth: float | None = None) -> torch.Tensor:
    """Mean over the pairs of present groups of the squared MMD between their rows (≥ 0).

    Same kernel and bandwidth rule as `mmd_loss` (the bandwidth is one for the whole batch, so
    every pair is measured with the same kernel). x: (B,) or (B, d).
    """
    X = _as_rows(x, "mmd_k_loss")
    codes, present = _codes(X, s, "mmd_k_loss")
    G = present.numel()
    if G < 2:
        return _zero(X)
    K = _kernel(X, X, _bandwidth(X, bandwidth, "mmd_k_loss"), scales)  # (B, B)
    M = _pair_means(K, codes, present)  # (G, G)
    diag = torch.diagonal(M)
    mmd2 = diag[:, None] + diag[None, :] - 2.0 * M  # (G, G), zero diagonal
    iu = torch.triu_indices(G, G, offset=1, device=X.device)
    return mmd2[iu[0], iu[1]].mean()


def mean_gap_k_loss(z: torch.Tensor, s) -> torch.Tensor:
    """Mean over the pairs of present groups of ‖mean(z | g) − mean(z | h)‖² (z (B, d) or (B,))."""
    Z = _as_rows(z, "mean_gap_k_loss")
    codes, present = _codes(Z, s, "mean_gap_k_loss")
    G = present.numel()
    if G < 2:
        return _zero(Z)
    onehot = (codes[:, None] == present[None, :]).to(Z.dtype)  # (B, G)
    means = (onehot.T @ Z) / onehot.sum(0)[:, None]  # (G, d)
    iu = torch.triu_indices(G, G, offset=1, device=Z.device)
    return (means[iu[0]] - means[iu[1]]).pow(2).sum(1).mean()
