"""Exact, threshold-free fairness metrics for scores in [0, 1] (numpy; pandas only to encode
non-integer group labels and to return the LL144 table).

Definitions (S = group, Ŷ = score, Y = label, all scores and labels in [0, 1]):

- selection rate      P(Ŷ > τ | S = g)                      (strict ``>``)
- DP(τ)               max_g P(Ŷ > τ | g) − min_g P(Ŷ > τ | g)  (two groups: the absolute gap)
- SPDD                ∫₀¹ DP(τ) dτ; for two groups this is the 1-Wasserstein distance W1 between
                      the two groups' score distributions.
- SPEO                ∫₀¹ [max_g − min_g] P(Ŷ > τ | Y > τ, S = g) dτ; a group with no Y > τ
                      counts as rate 0 at that τ (the paper's convention).

Every step function above changes only at data values, so the integrals are computed exactly
from one sort of the data (O(n log n)), with no τ grid. ``grid=50`` reproduces the paper's
evaluation instead: the mean over τ ∈ {0, 0.02, …, 0.98} (τ_j = j / 50 as doubles).

Bootstrap CIs resample rows *within each group* (group sizes stay fixed). The data are sorted
once; a resample is a vector of multinomial counts over the sorted rows, and the step-function
metrics follow from cumulative sums of those counts — no re-sorting, no resampled copies. The
counts are exactly Multinomial(n_g, uniform) per group (see `_Counts`); resamples run in
threads (FAIRVIZ_THREADS overrides the number) and do not depend on the thread count.

Speed (bench/RESULTS.md): two-group `spdd` packs the group into the sign bit of each score and
sorts those keys once (as floats), then integrates by quantile matching block by block: where
a block's two quantile functions keep their order, its share is a difference of two sums; only
blocks where they may cross are integrated interval by interval. The two-group SPDD bootstrap
uses the same idea on the ECDF gap (`_SpddBoot`).

Bad input (lengths differ, NaN/inf, values outside [0, 1], fewer than two groups, missing group
values) raises ``ValueError`` with a message that says what to fix; values are never clipped.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fairviz.uncertainty import SCHEMA_VERSION, audit_distances

__all__ = [
    "AuditResult",
    "DPCurve",
    "MetricValue",
    "STATISTICS",
    "audit",
    "bootstrap_ci",
    "dp_curve",
    "impact_ratio",
    "pcc",
    "scoring_rate_table",
    "selection_rates",
    "spdd",
    "spdd_parts",
    "speo",
    "srcc",
    "validate_inputs",
]

STATISTICS = ("spdd", "speo", "pcc", "srcc")

_U64 = np.uint64
_CHUNK = 1 << 15  # elements per chunk in the streaming kernels (a few buffers fit in L2)
_SMALL_GROUP_SHARE = 0.02


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _to_float_array(values: Any, name: str) -> np.ndarray:
    """Convert an array-like to a 1-D float64 array (no range checks)."""
    try:
        if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be numbers in [0, 1]; could not read them as numbers ({err})"
        ) from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per row), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _raise_bad_values(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    problems = []
    if not finite.all():
        bad = np.flatnonzero(~finite)
        problems.append(
            f"{name} contain {bad.size} NaN or infinite value(s) (first at index {bad[0]}); "
            "drop or fill those rows"
        )
    with np.errstate(invalid="ignore"):
        out = finite & ((arr < 0.0) | (arr > 1.0))
    if out.any():
        bad = np.flatnonzero(out)
        problems.append(
            f"{name} contain {bad.size} value(s) outside [0, 1] (first at index {bad[0]}: "
            f"{float(arr[bad[0]]):g}); rescale them to [0, 1] (values are never clipped)"
        )
    if problems:
        raise ValueError("; ".join(problems))


def _unit_interval(values: Any, name: str) -> np.ndarray:
    """1-D float64 array with every value in [0, 1], or ValueError."""
    arr = _to_float_array(values, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one row")
    lo, hi = arr.min(), arr.max()  # NaN propagates, so one test catches NaN, inf and range
    if not (lo >= 0.0 and hi <= 1.0):
        _raise_bad_values(arr, name)
    return arr


def _python_scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _sorted_labels(values: Sequence) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed, unorderable labels: sort by their text (as fairviz.theme does)
        return sorted(values, key=str)


def _encode_groups(groups: Any, n: int) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Group values -> (codes intp (n,), sorted labels tuple, counts int64 (G,))."""
    unused: list = []
    if hasattr(groups, "cat") and hasattr(groups, "to_numpy"):  # pandas categorical Series
        cats = list(groups.cat.categories)
        arr = groups.to_numpy(dtype=object)
        unused = cats
    elif type(groups).__name__ == "Categorical" and hasattr(groups, "categories"):
        cats = list(groups.categories)
        arr = np.asarray(groups, dtype=object)
        unused = cats
    elif hasattr(groups, "to_numpy") and not isinstance(groups, np.ndarray):
        arr = groups.to_numpy()
    else:
        arr = np.asarray(groups)
        if arr.dtype.kind in "US" and not isinstance(groups, np.ndarray):
            # numpy turns mixed lists such as [2, "a"] into text; keep the original values
            if any(not isinstance(v, str) for v in groups):
                arr = np.asarray(list(groups), dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"groups must be one-dimensional (one value per row), got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"scores and groups differ in length: {n} scores, {len(arr)} group values")

    codes = labels = counts = None
    if arr.dtype.kind in "biu":
        a = arr.view(np.uint8) if arr.dtype.kind == "b" else arr
        lo, hi = int(a.min()), int(a.max())
        if hi - lo <= max(4 * n, 1 << 16):
            off = a.astype(np.intp, copy=False) if lo == 0 else a.astype(np.intp) - lo
            full = np.bincount(off, minlength=hi - lo + 1)
            present = np.flatnonzero(full)
            if len(present) == hi - lo + 1:
                codes = np.ascontiguousarray(off)
            else:
                lut = np.full(hi - lo + 1, -1, dtype=np.intp)
                lut[present] = np.arange(len(present))
                codes = lut[off]
            counts = full[present].astype(np.int64)
            if arr.dtype.kind == "b":
                labels = tuple(bool(v + lo) for v in present)
            else:
                labels = tuple(_python_scalar(arr.dtype.type(v + lo)) for v in present)
    if codes is None:
        import pandas as pd

        raw_codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        missing = raw_codes < 0
        if missing.any():
            bad = np.flatnonzero(missing)
            raise ValueError(
                f"groups contain {bad.size} missing value(s) (first at index {bad[0]}); "
                "drop those rows or give them an explicit group such as 'unknown'"
            )
        uniq = [_python_scalar(u) for u in np.asarray(uniques, dtype=object)]
        ordered = _sorted_labels(uniq)
        rank = {id(u): i for i, u in enumerate(ordered)}
        # ids are stable because `ordered` holds the very objects of `uniq`
        remap = np.array([rank[id(u)] for u in uniq], dtype=np.intp)
        codes = remap[raw_codes]
        labels = tuple(ordered)
        counts = np.bincount(codes, minlength=len(labels)).astype(np.int64)
    if unused:
        empty = [c for c in unused if c not in set(labels)]
        if empty:
            raise ValueError(
                f"group(s) {empty!r} are categories of the group column but have no rows; "
                "drop unused categories (e.g. series.cat.remove_unused_categories())"
            )
    if len(labels) < 2:
        raise ValueError(
            f"need at least two groups to compare, found only {labels[0]!r} in {n} rows; "
            "check the group column"
        )
    return codes, labels, counts


@dataclass(frozen=True)
class _Data:
    x: np.ndarray  # float64 (n,) scores in [0, 1]
    codes: np.ndarray  # intp (n,) index into labels
    labels: tuple  # sorted group labels
    counts: np.ndarray  # int64 (G,) rows per group
    y: np.ndarray | None  # float64 (n,) labels in [0, 1] or None

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def n_groups(self) -> int:
        return len(self.labels)


def _prepare(scores, groups, labels=None, *, need_labels: bool = False) -> _Data:
    x = _unit_interval(scores, "scores")
    y = None
    if labels is not None:
        y = _unit_interval(labels, "labels")
        if len(y) != len(x):
            raise ValueError(f"scores and labels differ in length: {len(x)} scores, {len(y)} labels")
    elif need_labels:
        raise ValueError("this metric needs labels (the true outcome Y in [0, 1]); pass labels=...")
    codes, glabels, counts = _encode_groups(groups, len(x))
    return _Data(x, codes, glabels, counts, y)


def validate_inputs(scores, groups, labels=None):
    """Check and convert audit inputs.

    Returns ``(scores, codes, group_labels, labels)``: scores float64 (n,) in [0, 1]; codes
    int64 (n,) indexing ``group_labels`` (a tuple of the distinct group values, sorted; mixed
    unorderable values are sorted by their text); labels float64 (n,) in [0, 1] or None.

    Raises ValueError (with the count and the first offending index) for lengths that differ,
    NaN/inf, values outside [0, 1], missing group values, fewer than two groups, n == 0.
    """
    d = _prepare(scores, groups, labels)
    return d.x, d.codes.astype(np.int64, copy=False), d.labels, d.y


# --------------------------------------------------------------------------------------------
# Sorting primitives (one sort of the data)
# --------------------------------------------------------------------------------------------


def _scratch(c: int, k: int) -> list[np.ndarray]:
    """k float64 work buffers of length c, carved from one block at staggered offsets.

    Separate page-aligned buffers of the same size alias in the L1 cache (same address bits
    modulo 4 KiB), which made the streaming kernels several times slower; one block with
    offsets 64·(2i+1) bytes apart avoids that.
    """
    stride = c + 16
    block = np.empty(k * stride + 8 * k)
    return [block[i * stride + 8 * i : i * stride + 8 * i + c] for i in range(k)]


def _value_major(x: np.ndarray, codes: np.ndarray, n_groups: int):
    """Sort (value, group) pairs by value. Returns (z float64 sorted, code (n,) small ints).

    With at most 4 groups the group code rides in the two low bits of the float's bit pattern
    (a float in [0, 1] uses only 62 bits), so one ``np.sort`` of uint64 keys does it (packing
    and unpacking stream over the data in cache-sized chunks); otherwise an argsort.
    """
    if n_groups > 4:
        order = np.argsort(x, kind="stable")
        return x[order], codes[order]
    n = len(x)
    key = np.empty(n, dtype=_U64)
    c = min(n, _CHUNK)
    (tmp,) = _scratch(c, 1)
    cbuf = tmp.view(_U64)
    for s in range(0, n, c):
        m = min(c, n - s)
        kk = key[s : s + m]
        np.add(x[s : s + m], 0.0, out=kk.view(np.float64))  # +0.0 turns -0.0 into +0.0
        np.left_shift(kk, _U64(2), out=kk)
        np.copyto(cbuf[:m], codes[s : s + m], casting="unsafe")
        np.bitwise_or(kk, cbuf[:m], out=kk)
    key.sort()
    code = np.empty(n, dtype=np.uint8)
    for s in range(0, n, c):
        m = min(c, n - s)
        kk = key[s : s + m]
        np.bitwise_and(kk, _U64(3), out=cbuf[:m])
        np.copyto(code[s : s + m], cbuf[:m], casting="unsafe")
        np.right_shift(kk, _U64(2), out=kk)
    return key.view(np.float64), code


# --------------------------------------------------------------------------------------------
# SPDD for two groups: W1 between two sorted samples by quantile matching, in one pass
# --------------------------------------------------------------------------------------------


_ONE_BITS = int(np.float64(1.0).view(_U64))


_PACK_WHOLE = 1 << 17  # up to this many rows the packing runs on whole arrays (they fit in L2)


def _pack_sign(x: np.ndarray, g: np.ndarray):
    """Keys for a two-group sort: the float's bits with the group (0/1) in the sign bit.

    Read as float64, group 1's keys are −value, so one float sort separates the groups (see
    `_split_sorted`). The same pass checks the inputs: every score bit pattern ≤ that of 1.0
    (which rules out NaN, negatives and values above 1; a −0.0 fails it too and is handled
    below) and every group value in {0, 1} (read as unsigned, so negatives fail). Returns
    (keys as float64, scores_ok, groups_01).
    """
    n = len(x)
    key = np.empty(n, dtype=_U64)
    c = n if n <= _PACK_WHOLE else _CHUNK
    gu = g.view(f"u{g.dtype.itemsize}")
    xv = x.view(_U64)
    xmax = gmax = 0
    for s in range(0, n, c):
        kk, xc, gc = key[s : s + c], xv[s : s + c], gu[s : s + c]
        xmax = max(xmax, int(xc.max()))
        gmax = max(gmax, int(gc.max()))
        np.left_shift(gc, _U64(63), out=kk, dtype=_U64)
        np.bitwise_or(kk, xc, out=kk)
    ok = xmax <= _ONE_BITS
    if not ok:
        lo, hi = x.min(), x.max()
        if lo >= 0.0 and hi <= 1.0:  # only -0.0 tripped the bit test: clear its sign bit
            neg0 = np.flatnonzero(np.signbit(x))
            key[neg0] = gu[neg0].astype(_U64) << _U64(63)
            ok = True
    return key.view(np.float64), ok, gmax <= 1


def _split_sorted(key: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort packed keys (float64, in place) -> (a, vb): group 0 ascending, and vb = −b with b
    group 1's scores ascending (both views into ``key``). ``groups``: the 0/1 groups.

    A float sort (faster than sorting the bits as integers) puts group 1 (−value) first.
    +0.0 and −0.0 compare equal and the vectorised sort may even swap their signs, so when
    zeros occur the group sizes come from ``groups`` and the zeros are laid out again.
    """
    key.sort()
    lo = int(np.searchsorted(key, 0.0, "left"))
    hi = int(np.searchsorted(key, 0.0, "right"))
    n1 = lo
    if hi > lo:
        n1 = int(np.count_nonzero(groups))
        key[lo:n1] = -0.0
        key[n1:hi] = 0.0
    return key[n1:], key[:n1][::-1]


_W1_BLOCK = 1024  # rows of group a per block in the blockwise W1 …
_W1_SUB = 32  # … and per sub-block where a block's quantile functions may cross
# finer blocks at both ends, where the two quantile functions start and end close together
_EDGE_CUTS = np.unique(np.ceil(1.2 ** np.arange(38)).astype(np.int64))


def _w1(a: np.ndarray, vb: np.ndarray, block: int = _W1_BLOCK, sub: int = _W1_SUB) -> float:
    """W1 between group a (>= 0, ascending) and b = −vb (vb <= 0, b ascending).

    Quantile matching: W1 = ∫₀¹ |Qa(u) − Qb(u)| du. In units of 1/(na·nb) the breakpoints are
    A_i = i·nb and B_j = j·na; every interval of the merged breakpoints is charged to its right
    end. Interval ending at A_i: Qa = a[i−1], Qb = b[f] with f = ⌊(A_i − 1)/na⌋, width
    min(nb, A_i − f·na). Interval ending at B_j (not equal to some A_i): Qb = b[j−1],
    Qa = a[f] with f = ⌊B_j/nb⌋, width min(na, B_j − f·nb) (0 when B_j is an A breakpoint).
    Large inputs go block by block (`_w1_blocks`), which visits most rows only to add them up.
    """
    na, nb = len(a), len(vb)
    if na * nb >= 1 << 48:  # pragma: no cover - ~3e7 rows per group
        return _w1_exact_int(a, -vb, na, nb)
    if na + nb < 8 * block:
        total = _lattice_part(a, vb, nb, strict=True) + _lattice_part(vb, a, na, strict=False)
    else:
        total = _w1_blocks(a, vb, block, sub)
    return total / (float(na) * float(nb))


def _w1_blocks(a: np.ndarray, vb: np.ndarray, block: int, sub: int) -> float:
    """na·nb·W1 by blocks of at most ``block`` rows of a (finer towards both ends, where the
    two quantile functions start and end close together), then sub-blocks of ``sub`` rows
    inside the blocks that `_settled` leaves, then the lattice (`_lattice_part`) for the rows
    of the sub-blocks left after that (where Qa and Qb cross).
    """
    na, nb = len(a), len(vb)
    cuts = np.sort(np.concatenate([np.arange(0, na, block, dtype=np.int64), _EDGE_CUTS, na - _EDGE_CUTS]))
    cuts = cuts[(cuts >= 0) & (cuts < na)]
    lo = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
    hi = np.append(lo[1:], na)
    total, left = _settled(a, vb, lo, hi)
    lo, hi = lo[left], hi[left]
    if lo.size > 8 and sub < block:  # a few blocks (the two ends, a crossing) cost less as they are
        lo, hi = _split_ranges(lo, hi, sub)
        part, left = _settled(a, vb, lo, hi)
        total += part
        lo, hi = lo[left], hi[left]
    if lo.size:
        total += _lattice_part(a, vb, nb, strict=True, rows=_ranges(lo, hi))
        total += _lattice_part(vb, a, na, strict=False, rows=_ranges(lo * nb // na, hi * nb // na))
    return total


def _settled(a: np.ndarray, vb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, np.ndarray]:
    """na·nb·∫|Qa − Qb| over the u-ranges [lo_k/na, hi_k/na] (a rows [lo_k, hi_k): sorted,
    disjoint, non-empty) where Qa ≥ Qb or Qb ≥ Qa throughout, and a mask of the other ranges.

    Where the range's smallest a is ≥ its largest b (or its smallest b ≥ its largest a),
    |Qa − Qb| = ±(Qa − Qb) on it, so its share is ±(∫Qa − ∫Qb): a sum of a rows and a sum of
    b rows with the two partial b rows at its ends. In e units (u·na·nb) the range is
    (E_lo, E_hi] and Qb = b[j] on (j·na, (j+1)·na].
    """
    na, nb = len(a), len(vb)
    E_lo, E_hi = lo * nb, hi * nb
    q_lo, q_hi = E_lo // na, E_hi // na  # b rows holding Qb just after E (q_hi = nb at the end)
    v_lo, v_hi = vb[q_lo], vb[np.minimum(q_hi, nb - 1)]
    gap = nb * _range_sums(a, lo, hi)  # ∫Qa, then + ∫(−Qb)
    gap += na * _range_sums(vb, q_lo, q_hi)
    gap += (E_hi - q_hi * na) * v_hi
    gap -= (E_lo - q_lo * na) * v_lo
    above = a[lo] >= -vb[(E_hi - 1) // na]  # smallest a ≥ largest b
    below = -v_lo >= a[hi - 1]  # smallest b ≥ largest a
    total = float(np.dot(above, gap)) - float(np.dot(below & ~above, gap))
    return total, ~(above | below)


def _split_ranges(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each range [lo_k, hi_k) cut into pieces of ``size`` rows (the last one shorter)."""
    counts = -(-(hi - lo) // size)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = np.repeat(lo, counts) + size * (np.arange(int(counts.sum()), dtype=np.int64) - first)
    return starts, np.minimum(starts + size, np.repeat(hi, counts))


def _range_sums(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ v[lo_k:hi_k] for sorted, disjoint ranges (lo_k ≤ hi_k, lo_k < len(v))."""
    if hi[-1] == len(v) and np.array_equal(lo[1:], hi[:-1]):  # a partition: one reduceat
        sums = np.add.reduceat(v, lo)
    else:
        idx = np.empty(2 * len(lo), dtype=np.int64)
        idx[0::2], idx[1::2] = lo, hi
        if idx[-1] == len(v):  # reduceat sums the last segment to the end by itself
            idx = idx[:-1]
        sums = np.add.reduceat(v, idx)[0::2]
    sums[lo == hi] = 0.0  # reduceat gives one row, not 0, for an empty range
    return sums


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) (int64)."""
    if len(lo) <= 8:  # the usual case (the two ends, a crossing or two): fewer numpy calls
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in zip(lo.tolist(), hi.tolist())])
    sizes = hi - lo
    keep = sizes > 0
    lo, sizes = lo[keep], sizes[keep]
    offsets = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) + offsets


def _lattice_part(own: np.ndarray, other: np.ndarray, n_other: int, *, strict: bool, rows=None) -> float:
    """Σ over the breakpoints e = (i+1)·n_other of ``own`` rows i (all, or ``rows``) of
    |own[i] + other[f]|·width.

    strict (the A part): f = ⌊(e − 1)/n_own⌋, width = min(n_other, e − f·n_own);
    otherwise (the B part): f = ⌊e/n_own⌋ (clipped to the last row), same width formula.
    The floors are computed as ⌊(e ∓ ½)·(1/n_own)⌋, exact while n_own·n_other < 2^48.
    """
    n_own = len(own)
    n_rows = n_own if rows is None else len(rows)
    inv, half = 1.0 / n_own, -0.5 if strict else 0.5
    total = 0.0
    for s in range(0, n_rows, _CHUNK):
        i = np.arange(s, min(n_rows, s + _CHUNK)) if rows is None else rows[s : s + _CHUNK]
        e = (i + 1).astype(np.float64)
        e *= n_other
        f = np.floor((e + half) * inv)
        e -= f * n_own  # the width
        if n_own > n_other:  # otherwise the width never exceeds n_other
            np.minimum(e, n_other, out=e)
        d = np.take(other, f.astype(np.intp), mode="clip")
        d += own[s : s + len(i)] if rows is None else own[i]
        total += float(np.dot(np.abs(d, out=d), e))
    return total


def _w1_exact_int(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> float:
    """Same as the lattice parts with int64 arithmetic (for na·nb ≥ 2^48)."""
    total = 0.0
    for s in range(0, na, _CHUNK):
        e = np.arange(s + 1, min(na, s + _CHUNK) + 1, dtype=np.int64) * nb
        f = (e - 1) // na
        w = np.minimum(e - f * na, nb)
        total += float(np.sum(np.abs(a[s : s + len(e)] - b[f]) * w))
    for s in range(0, nb, _CHUNK):
        e = np.arange(s + 1, min(nb, s + _CHUNK) + 1, dtype=np.int64) * na
        f = e // nb
        w = np.minimum(e - f * nb, na)
        total += float(np.sum(np.abs(a[np.minimum(f, na - 1)] - b[s : s + len(e)]) * w))
    return total / (float(na) * float(nb))


# --------------------------------------------------------------------------------------------
# Step-function core: ECDF counts per group over the sorted values
# --------------------------------------------------------------------------------------------


def _integrate_gap(z: np.ndarray, code: np.ndarray, n_tags: int, gap_fn, weights: np.ndarray | None = None) -> float:
    """Σ_k gap(C[:, k])·(z[k+1] − z[k]) where C[t, k] = Σ of ``weights`` (default 1) over the
    entries with tag t among z[:k+1].

    Streams over the sorted entries in chunks (memory O(chunk · tags)).
    """
    n = len(z)
    carry = np.zeros((n_tags, 1))
    total = 0.0
    c = min(_CHUNK, max(n - 1, 1))
    cum = np.empty((n_tags, c))
    cols = np.arange(c)
    for s in range(0, n - 1, c):
        m = min(c, n - 1 - s)
        C = cum[:, :m]
        C.fill(0.0)
        C[code[s : s + m], cols[:m]] = 1.0 if weights is None else weights[s : s + m]
        np.cumsum(C, axis=1, out=C)
        C += carry
        carry[:, 0] = C[:, -1]
        gap = gap_fn(C)
        dz = z[s + 1 : s + m + 1] - z[s : s + m]
        total += float(np.einsum("i,i->", gap, dz))
    return total


def _dp_gap_fn(counts: np.ndarray):
    inv = (1.0 / counts.astype(np.float64))[:, None]

    def gap(C):
        F = C * inv  # ECDF per group; max F − min F = max rate − min rate
        return _spread(F)

    return gap


def _eo_gap_fn(counts: np.ndarray):
    nn = counts.astype(np.float64)[:, None]

    def gap(C):
        A = nn - C[0::2]  # #{min(Ŷ, Y) > τ} per group
        B = nn - C[1::2]  # #{Y > τ} per group: a whole count, and A = 0 wherever B = 0
        np.maximum(B, 1.0, out=B)
        return _spread(np.divide(A, B, out=A))

    return gap


def _spdd_exact(d: _Data) -> float:
    if d.n_groups == 2:
        key, _, _ = _pack_sign(d.x, d.codes)
        return _w1(*_split_sorted(key, d.codes))
    z, code = _value_major(d.x, d.codes, d.n_groups)
    return _integrate_gap(z, code, d.n_groups, _dp_gap_fn(d.counts))


def _spdd_fast(scores, groups) -> float | None:
    """SPDD for two integer groups {0, 1}: validation and packing in one pass, one sort, W1."""
    if not isinstance(groups, np.ndarray) or groups.dtype.kind not in "biu" or groups.ndim != 1:
        return None
    x = _to_float_array(scores, "scores")
    if len(x) != len(groups) or len(x) < 2:
        return None
    key, ok, groups01 = _pack_sign(x, groups)
    if not ok:
        _raise_bad_values(x, "scores")
    if not groups01:
        return None
    a, vb = _split_sorted(key, groups)
    if len(a) == 0 or len(vb) == 0:
        return None  # one group only: the general path explains
    return _w1(a, vb)


def _check_grid(grid) -> int | None:
    if grid is None:
        return None
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be None (exact integral) or a positive integer such as 50, got {grid!r}")
    return int(grid)


def _grid_above(values: np.ndarray, codes: np.ndarray, n_groups: int, grid: int) -> np.ndarray:
    """(G, grid) counts of values > τ_j per group, τ_j = j / grid; O(n log grid), no sort."""
    taus = np.arange(grid) / grid
    b = np.searchsorted(taus, values, side="left")  # #{τ_j < v}: v > τ_j  ⇔  j < b
    hist = np.bincount(codes * (grid + 1) + b, minlength=n_groups * (grid + 1))
    hist = hist.reshape(n_groups, grid + 1)
    suffix = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # suffix[:, j] = #{b >= j}
    return suffix[:, 1:].astype(np.float64)  # column j: #{b >= j + 1} = #{v > τ_j}


def _spdd_grid(d: _Data, grid: int) -> float:
    rates = _grid_above(d.x, d.codes, d.n_groups, grid) / d.counts[:, None]
    return float(np.mean(rates.max(axis=0) - rates.min(axis=0)))


def _speo_grid(d: _Data, grid: int) -> float:
    A = _grid_above(np.minimum(d.x, d.y), d.codes, d.n_groups, grid)
    B = _grid_above(d.y, d.codes, d.n_groups, grid)
    r = np.where(B > 0, A / np.where(B > 0, B, 1.0), 0.0)
    return float(np.mean(r.max(axis=0) - r.min(axis=0)))


def _speo_entries(d: _Data):
    """The 2n breakpoints of SPEO: min(Ŷ, Y) (tag 2g) and Y (tag 2g + 1) per row."""
    vals = np.concatenate([np.minimum(d.x, d.y), d.y])
    tags = np.concatenate([2 * d.codes, 2 * d.codes + 1])
    return vals, tags


def _speo_exact(d: _Data) -> float:
    vals, tags = _speo_entries(d)
    z, tag = _value_major(vals, tags, 2 * d.n_groups)
    return _integrate_gap(z, tag, 2 * d.n_groups, _eo_gap_fn(d.counts))


# --------------------------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------------------------


def spdd(scores, groups, grid: int | None = None) -> float:
    """Statistical parity distance: ∫₀¹ DP(τ) dτ, exactly (the default) or on a τ grid.

    scores: (n,) in [0, 1]; groups: (n,) any hashable values, at least two distinct.
    ``grid=None``: the exact integral of the step function DP(τ) (for two groups this equals
    the 1-Wasserstein distance between the group score distributions). ``grid=50``: the
    paper's evaluation, the mean of DP(τ) over τ ∈ {0, 0.02, …, 0.98} with a strict ``>``.
    Returns a float in [0, 1]. Cost: one sort, O(n log n).
    """
    g = _check_grid(grid)
    if g is None:
        fast = _spdd_fast(scores, groups)
        if fast is not None:
            return float(fast)
    d = _prepare(scores, groups)
    if g is not None:
        return _spdd_grid(d, g)
    return float(_spdd_exact(d))


def speo(scores, labels, groups, grid: int | None = None) -> float:
    """Equal-opportunity distance: ∫₀¹ [max_g − min_g] P(Ŷ > τ | Y > τ, S = g) dτ.

    The threshold moves on the score and the label together. A group with no Y > τ counts as
    rate 0 at that τ. Exact by default (the rates are step functions of τ: counts of
    min(Ŷ, Y) > τ over counts of Y > τ per group, from one sort of the 2n breakpoints);
    ``grid=50`` gives the paper's mean over τ ∈ {0, 0.02, …, 0.98}.
    """
    g = _check_grid(grid)
    d = _prepare(scores, groups, labels, need_labels=True)
    if g is not None:
        return _speo_grid(d, g)
    return float(_speo_exact(d))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ac = _unit_peak(a - a.mean())
    bc = _unit_peak(b - b.mean())
    if ac is None or bc is None:
        return math.nan
    saa = float(np.einsum("i,i->", ac, ac))
    sbb = float(np.einsum("i,i->", bc, bc))
    if saa <= 0.0 or sbb <= 0.0:
        return math.nan
    r = float(np.einsum("i,i->", ac, bc)) / math.sqrt(saa * sbb)
    return max(-1.0, min(1.0, r))


def _unit_peak(centred: np.ndarray) -> np.ndarray | None:
    """``centred`` divided by its largest magnitude, or None when it is all zeros.

    Squaring raw deviations of tiny (subnormal) spreads underflows to 0 and would call a
    non-constant column constant; scaling to a peak of 1 first keeps the correlation exact.
    """
    peak = float(np.max(np.abs(centred)))
    if peak == 0.0:
        return None
    return centred / peak


def _pair(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    x = _unit_interval(scores, "scores")
    y = _unit_interval(labels, "labels")
    if len(x) != len(y):
        raise ValueError(f"scores and labels differ in length: {len(x)} scores, {len(y)} labels")
    if len(x) < 2:
        raise ValueError("need at least two rows for a correlation")
    return x, y


def pcc(scores, labels) -> float:
    """Pearson correlation of scores and labels (NaN when either is constant)."""
    x, y = _pair(scores, labels)
    return _corr(x, y)


def _tie_blocks(v: np.ndarray):
    """order (stable argsort), block starts in sorted order, block id per sorted position."""
    order = np.argsort(v, kind="stable")
    vs = v[order]
    new = np.empty(len(v), dtype=bool)
    new[0] = True
    np.not_equal(vs[1:], vs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    block_id = np.cumsum(new) - 1
    return order, starts, block_id


def _midranks(v: np.ndarray) -> np.ndarray:
    order, starts, block_id = _tie_blocks(v)
    ends = np.append(starts[1:], len(v))
    mid = (starts + ends + 1) / 2.0  # average of the 1-based ranks starts+1 .. ends
    r = np.empty(len(v))
    r[order] = mid[block_id]
    return r


def srcc(scores, labels) -> float:
    """Spearman rank correlation (average ranks for ties; NaN when either is constant)."""
    x, y = _pair(scores, labels)
    return _corr(_midranks(x), _midranks(y))


def _check_tau(tau) -> float:
    try:
        t = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a number (a threshold on the score), got {tau!r}") from None
    if not math.isfinite(t):
        raise ValueError(f"tau must be finite, got {tau!r}")
    return t


def _rates_at(d: _Data, tau: float) -> np.ndarray:
    above = np.bincount(d.codes, weights=(d.x > tau), minlength=d.n_groups)
    return above / d.counts


def selection_rates(scores, groups, tau) -> dict:
    """P(Ŷ > τ | S = g) for each group (strict ``>``), as {group: rate}."""
    t = _check_tau(tau)
    d = _prepare(scores, groups)
    return {g: float(r) for g, r in zip(d.labels, _rates_at(d, t))}


def _ratios(rates: np.ndarray) -> np.ndarray:
    top = rates.max()
    if top <= 0:
        return np.full(len(rates), math.nan)
    return rates / top


def impact_ratio(scores, groups, tau) -> dict:
    """Each group's selection rate at τ over the highest group's rate, as {group: ratio}.

    The four-fifths rule flags ratios below 0.8. When no group has anyone above τ the ratio is
    undefined and every value is NaN.
    """
    t = _check_tau(tau)
    d = _prepare(scores, groups)
    return {g: float(r) for g, r in zip(d.labels, _ratios(_rates_at(d, t)))}


def scoring_rate_table(scores, groups):
    """NYC Local Law 144 style table: one row per group (pandas DataFrame).

    Columns: ``group``, ``n``, ``share`` (n / total), ``scoring_rate`` (share of the group
    scoring strictly above the median score of the full sample), ``impact_ratio`` (scoring
    rate over the highest group's), ``small_group`` (share < 2%; such groups may be excluded
    from the impact-ratio calculation under the LL144 rules).
    """
    import pandas as pd

    d = _prepare(scores, groups)
    med = float(np.median(d.x))
    rates = _rates_at(d, med)
    share = d.counts / d.n
    return pd.DataFrame(
        {
            "group": list(d.labels),
            "n": d.counts.astype(np.int64),
            "share": share,
            "scoring_rate": rates,
            "impact_ratio": _ratios(rates),
            "small_group": share < _SMALL_GROUP_SHARE,
        }
    )


# --------------------------------------------------------------------------------------------
# The DP(τ) curve
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DPCurve:
    """The exact step function DP(τ) on [0, 1].

    ``thresholds`` (k+1,): interval edges, increasing, ``[0] = 0.0``, ``[-1] = 1.0`` (the
    interior edges are the distinct scores in (0, 1)). ``values`` (k,): DP(τ) for τ in
    ``[thresholds[i], thresholds[i+1])``. ``rates`` (n_groups, k): P(Ŷ > τ | S = g) on each
    interval, rows in the order of ``groups``. DP(τ) = 0 outside [0, 1).
    """

    thresholds: np.ndarray
    values: np.ndarray
    groups: tuple
    rates: np.ndarray

    def _index(self, tau) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        if np.isnan(t).any():
            raise ValueError("tau contains NaN")
        i = np.searchsorted(self.thresholds, t, side="right") - 1
        inside = (t >= 0.0) & (t < 1.0)
        return t, np.clip(i, 0, len(self.values) - 1), inside

    def at(self, tau) -> np.ndarray:
        """DP at each τ (array-like or scalar) -> float64 array of the same length."""
        t, i, inside = self._index(tau)
        return np.where(inside, self.values[i], 0.0)

    def rates_at(self, tau) -> np.ndarray:
        """Selection rates P(Ŷ > τ | g) -> (n_groups, len(tau)); 1 below 0, 0 from 1 on."""
        t, i, inside = self._index(tau)
        out = self.rates[:, i]
        return np.where(inside[None, :], out, np.where(t[None, :] < 0.0, 1.0, 0.0))

    def integral(self) -> float:
        """∫₀¹ DP(τ) dτ (= `spdd`)."""
        return float(np.einsum("i,i->", self.values, np.diff(self.thresholds)))


def _spread(rows) -> np.ndarray:
    """max − min over a sequence of equal-length rows (elementwise, no axis-0 reduction)."""
    rows = list(rows)
    if len(rows) == 2:
        out = np.subtract(rows[0], rows[1])
        return np.abs(out, out=out)
    hi = rows[0].copy()
    lo = rows[0].copy()
    for r in rows[1:]:
        np.maximum(hi, r, out=hi)
        np.minimum(lo, r, out=lo)
    np.subtract(hi, lo, out=hi)
    return hi


def _dp_curve(d: _Data) -> DPCurve:
    z, code = _value_major(d.x, d.codes, d.n_groups)
    n = len(z)
    last = np.empty(n, dtype=bool)
    np.not_equal(z[1:], z[:-1], out=last[:-1])
    last[-1] = True
    distinct = bool(last.all())  # the usual case for continuous scores: no gather needed
    ends = None if distinct else np.flatnonzero(last)
    vals = z if distinct else z[ends]
    k = int(np.searchsorted(vals, 1.0, side="left"))  # left edges are the distinct values < 1
    G = d.n_groups
    prepend = k == 0 or vals[0] > 0.0
    off = int(prepend)
    rates = np.empty((G, k + off))
    hit = np.empty(n if not distinct else k, dtype=bool)
    cum = None if distinct else np.empty(n)
    for g in range(G):
        row = rates[g, off:]
        if distinct:  # C_g at sorted position i = #{group g among the first i + 1}
            np.equal(code[:k], g, out=hit)
            np.cumsum(hit, out=row, dtype=np.float64)
        else:
            np.equal(code, g, out=hit)
            np.cumsum(hit, out=cum, dtype=np.float64)
            np.take(cum, ends[:k], out=row)
        row *= -1.0 / float(d.counts[g])
        row += 1.0
    if prepend:
        rates[:, 0] = 1.0
    thresholds = np.empty(k + off + 1)
    thresholds[0] = 0.0
    thresholds[off : k + off] = vals[:k]
    thresholds[-1] = 1.0
    values = _spread(rates)
    return DPCurve(thresholds=thresholds, values=values, groups=d.labels, rates=rates)


def dp_curve(scores, groups) -> DPCurve:
    """The exact DP(τ) step function and per-group selection-rate curves (one sort)."""
    return _dp_curve(_prepare(scores, groups))


def _parts(curve: DPCurve) -> dict:
    w = np.diff(curve.thresholds)
    rates = curve.rates
    top = rates[0].copy()
    for r in rates[1:]:
        np.maximum(top, r, out=top)
    winners = [r == top for r in rates]
    n_win = np.zeros(len(top))
    for m in winners:
        n_win += m
    area = curve.values * w / n_win  # DP on each interval, shared by the groups at the top
    return {g: float(np.einsum("i,i->", m.astype(np.float64), area)) for g, m in zip(curve.groups, winners)}


def spdd_parts(scores, groups) -> dict:
    """Split SPDD by who is favoured: {group: area where its selection rate is the highest}.

    For two groups: ∫ max(DP₊, 0) dτ and ∫ max(DP₋, 0) dτ (the values sum to `spdd`). With
    more groups, DP(τ) on each interval goes to the group with the highest rate (shared
    equally on ties), so the values again sum to `spdd`.
    """
    return _parts(_dp_curve(_prepare(scores, groups)))


# --------------------------------------------------------------------------------------------
# Bootstrap: within-group multinomial counts over the sorted rows
# --------------------------------------------------------------------------------------------
#
# A resample draws n_g rows with replacement inside each group g, i.e. a count vector that is
# Multinomial(n_g, uniform) over the group's rows. Counts are generated block by block (so
# that the metric kernels consume them while they are in cache), exactly:
#   1. split each group's n_g draws among the blocks: Multinomial(n_g, rows-in-block / n_g);
#   2. inside a block, draw iid Poisson(1) counts per row (a 15-bit table lookup, refined in
#      double precision for the few table cells that straddle a CDF step), then add or remove
#      the difference to the block target uniformly: given their total, iid Poisson counts are
#      multinomial, adding iid uniform draws or removing a uniformly chosen subset of the
#      drawn balls keeps them multinomial.

_CELL_BITS = 15
_NCELL = 1 << _CELL_BITS


def _poisson_tables():
    k = np.arange(40)
    pmf = np.exp(-1.0 - np.array([math.lgamma(i + 1.0) for i in k]))
    cdf = np.minimum(np.cumsum(pmf), 1.0)
    lo = np.arange(_NCELL) / _NCELL
    hi = np.nextafter((np.arange(_NCELL) + 1.0) / _NCELL, 0.0)
    c_lo = np.searchsorted(cdf, lo, side="right")  # Poisson(1) inverse CDF: min{k: u < F(k)}
    c_hi = np.searchsorted(cdf, hi, side="right")
    amb = c_lo != c_hi
    order = np.concatenate([np.flatnonzero(~amb), np.flatnonzero(amb)])
    first_amb = int((~amb).sum())
    return c_lo[order].astype(np.float64), first_amb, order[first_amb:].astype(np.float64), cdf


_PTAB, _PAMB0, _PAMB_CELL, _PCDF = _poisson_tables()
_PTAB_MAX = int(_PTAB[:_PAMB0].max())
_DRAW_STEP = 1 << 20  # counts drawn per pass; long passes keep two threads from taking turns on the GIL
_AMB_MARK = 0x80  # table cells that straddle a CDF step carry this bit until resolved
_PTAB8 = _PTAB.astype(np.uint8)
_PTAB8[_PAMB0:] |= _AMB_MARK
_HIGH_BITS = np.uint64(0x8080808080808080)
_BYTE_SUM = np.uint64(0x0101010101010101)  # (w · this) >> 56 = sum of w's bytes (each ≤ 31)


def _byte_sum(words: np.ndarray, tmp: np.ndarray) -> int:
    """Sum of all bytes of ``words`` (uint64), valid while every byte is ≤ 31."""
    np.multiply(words, _BYTE_SUM, out=tmp)
    np.right_shift(tmp, np.uint64(56), out=tmp)
    return int(np.add.reduce(tmp))


def _draw_cells(rng: np.random.Generator, m: int) -> np.ndarray:
    """m iid uniform 15-bit table cells (uint16), from the raw 64-bit output of the generator."""
    raw = rng.bit_generator.random_raw(-(-m // 4))
    H = raw.view(np.uint16)[:m]
    np.right_shift(H, np.uint16(1), out=H)
    return H


def _resolve_cells(rng: np.random.Generator, cells: np.ndarray) -> np.ndarray:
    """Poisson(1) counts for draws that fell in table cells straddling a CDF step."""
    u = (_PAMB_CELL[cells - _PAMB0] + rng.random(len(cells))) * (1.0 / _NCELL)
    return np.searchsorted(_PCDF, u, side="right").astype(np.float64)


class _Counts:
    """Exact within-group multinomial resampling counts (uint8) over a sequence of positions.

    ``seq_codes`` (N,): the group code at each position (−1 = padding: never drawn); N must be
    a multiple of 8. One call of `draw` fills a count vector in which group g's positions hold
    Multinomial(n_g, uniform) counts: iid Poisson(1) counts, then the difference to n_g added
    as iid uniform draws or removed as a uniformly random subset of the drawn balls.
    """

    def __init__(self, seq_codes: np.ndarray, counts: np.ndarray):
        seq_codes = np.asarray(seq_codes)
        self.N = len(seq_codes)
        if self.N % 8:
            raise AssertionError("sequence length must be a multiple of 8")
        self.counts = np.asarray(counts, dtype=np.int64)
        self.G = len(self.counts)
        self.rows = [np.flatnonzero(seq_codes == g) for g in range(self.G)]
        self.pad = np.flatnonzero(seq_codes < 0)
        if self.G == 2:
            self.m1 = np.where(seq_codes == 1, np.uint8(255), np.uint8(0)).astype(np.uint8).view(np.uint64)
        else:
            self.local = np.where(seq_codes < 0, self.G, seq_codes).astype(np.intp)

    def draw(self, rng: np.random.Generator, out: np.ndarray, tmp: np.ndarray | None = None) -> None:
        """Fill ``out`` (uint8, length N) with one resample's counts."""
        N = self.N
        cmax = _PTAB_MAX
        step = _DRAW_STEP
        two = self.G == 2
        total = t1 = 0
        if tmp is None:
            tmp = np.empty(min(N, step) // 8, dtype=np.uint64)
        eight = np.arange(8)
        for a in range(0, N, step):
            o = out[a : a + step]
            m8 = len(o) // 8
            H = _draw_cells(rng, len(o))
            for t in range(0, len(o), 1 << 16):  # take casts H to intp: keep that copy in cache
                np.take(_PTAB8, H[t : t + (1 << 16)], out=o[t : t + (1 << 16)], mode="clip")
            words = o.view(np.uint64)
            tw = tmp[:m8]
            np.bitwise_and(words, _HIGH_BITS, out=tw)
            marked = np.flatnonzero(tw)
            if marked.size:  # resolve the cells that straddle a CDF step, in double precision
                cand = (marked[:, None] * 8 + eight).ravel()
                amb = cand[o[cand] >= _AMB_MARK]
                cnt = _resolve_cells(rng, H[amb])
                o[amb] = cnt
                cmax = max(cmax, int(cnt.max()))
            if two:  # totals while the chunk is in cache (padding counts as group 0 here)
                if cmax <= 31:
                    total += _byte_sum(words, tw)
                    np.bitwise_and(words, self.m1[a // 8 : a // 8 + m8], out=tw)
                    t1 += _byte_sum(tw, tw)
                else:
                    total += int(np.add.reduce(o, dtype=np.int64))
                    t64 = np.bitwise_and(words, self.m1[a // 8 : a // 8 + m8], out=tw)
                    t1 += int(np.add.reduce(t64.view(np.uint8), dtype=np.int64))
        if self.pad.size:
            if two:
                total -= int(np.add.reduce(out[self.pad], dtype=np.int64))
            out[self.pad] = 0
        if two:
            totals = (total - t1, t1)
        else:
            totals = np.bincount(self.local, weights=out, minlength=self.G + 1)[: self.G]
        for g in range(self.G):
            have = int(round(totals[g]))
            d = have - int(self.counts[g])
            rows = self.rows[g]
            if d < 0:  # too few: add -d iid uniform draws over the group's rows
                np.add.at(out, rows[np.sort(rng.integers(0, len(rows), size=-d))], 1)
            elif d > 0:
                _remove_balls(rng, out, rows, d, have, cmax)


def _remove_balls(rng, c: np.ndarray, rows: np.ndarray, d: int, have: int, cmax: int) -> None:
    """Remove d of the ``have`` balls on ``rows`` (counts ``c``), a uniformly random subset.

    Balls are (row, slot < count) pairs. Draw k pairs uniformly over rows × [0, cmax) and keep
    the distinct ones that are balls: by symmetry they form a uniformly random set of balls
    (given its size); a uniformly random d-subset of it is then a uniform d-subset of all
    balls. The draws are sorted first so that the lookups walk memory in order.
    """
    while True:
        k = int(1.3 * d * cmax * len(rows) / have) + 64
        rr = rows[np.sort(rng.integers(0, len(rows), size=k))]
        slot = rng.integers(0, cmax, size=k)
        ok = slot < c[rr]
        keys = np.sort(rr[ok].astype(np.int64) * cmax + slot[ok])
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.size else keys
        if keys.size >= d:
            break
    if keys.size > d:
        keys = keys[np.sort(rng.choice(keys.size, size=d, replace=False))]
    np.subtract.at(c, keys // cmax, 1)


def _seed_sequences(random_state, n_boot: int) -> list:
    if isinstance(random_state, np.random.Generator):
        root = np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    elif isinstance(random_state, np.random.SeedSequence):
        root = random_state
    else:
        if random_state is not None and (
            isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))
        ):
            raise ValueError(f"random_state must be None, an int, a SeedSequence or a Generator, got {random_state!r}")
        root = np.random.SeedSequence(None if random_state is None else int(random_state))
    return root.spawn(n_boot)


def _n_threads(work: float) -> int:
    env = os.environ.get("FAIRVIZ_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    if work < 4e6:
        return 1
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        avail = os.cpu_count() or 1
    return max(1, min(avail, 8))


def _run_replicates(make_worker, seeds: list, n_out: int, work: float, batch: int = 1) -> np.ndarray:
    """Evaluate resamples in batches, one worker per thread -> (n_boot, n_out).

    ``make_worker()`` returns ``f(list of SeedSequence) -> (len, n_out)``. Resample r always
    uses the generator seeded by seeds[r], so results do not depend on the number of threads.
    """
    B = len(seeds)
    out = np.empty((B, n_out))
    k = min(_n_threads(work), -(-B // batch))

    def run(lo: int, hi: int) -> None:
        f = make_worker()
        for a in range(lo, hi, batch):
            b = min(hi, a + batch)
            out[a:b] = np.asarray(f(seeds[a:b]), dtype=np.float64).reshape(b - a, n_out)

    if k <= 1:
        run(0, B)
    else:
        cuts = (np.linspace(0, -(-B // batch), k + 1).astype(int) * batch).clip(max=B)
        with concurrent.futures.ThreadPoolExecutor(max_workers=k) as pool:
            for fut in [pool.submit(run, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]:
                fut.result()
    return out


def _rng(seed) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


class _SpddBoot:
    """SPDD replicates for two groups, a batch of resamples at a time.

    Sorted positions k (padded to N = nb·BS, in blocks of BS) carry W_k = c_k·s_k, with c the
    resample's counts and s = n1 (group 0), −n0 (group 1), 0 (padding). E_k = Σ_{m≤k} W_m =
    n0·n1·(F0 − F1) just after position k, an exact float64 integer, and
    SPDD*·n0·n1 = Σ_k |E_k|·dz_k with dz_k = z[k+1] − z[k].

    Inside a block, E stays within [E0 − n0·T1, E0 + n1·T0] (E0: E before the block; Tg: the
    resample's count of group g in the block). When that range does not straddle 0, |E| = σ·E
    on the whole block (σ = ±1) and the block's share is σ·(E0·Σ dz + Σ_m c_m·P_m) with
    P_m = s_m·Σ_{k≥m in the block} dz_k: two dot products per block give Σ c·P, T0 and T1
    for every resample of the batch. Only the few blocks whose range straddles 0 (where
    the two ECDFs cross or meet, e.g. at the ends) are summed position by position.
    """

    def __init__(self, d: _Data, block: int = 1024, chunk: int = 1 << 14, batch: int = 8):
        z, code = _value_major(d.x, d.codes, 2)
        n = len(z)
        n0, n1 = int(d.counts[0]), int(d.counts[1])
        BS = max(8, min(int(block), -(-n // 8) * 8) // 8 * 8)  # _Counts needs N % 8 == 0
        nb = -(-n // BS)
        N = nb * BS
        code_p = np.full(N, -1, dtype=np.intp)
        code_p[:n] = code
        dz = np.zeros(N)
        dz[: n - 1] = np.diff(z)
        s = np.where(code_p == 0, float(n1), np.where(code_p == 1, -float(n0), 0.0)).reshape(nb, BS)
        dz = dz.reshape(nb, BS)
        tail = np.cumsum(dz[:, ::-1], axis=1)[:, ::-1]  # Σ_{k≥m in the block} dz_k
        self.P = s * tail
        self.K = float(1 << (255 * BS).bit_length())  # > any block's T0 (counts are uint8)
        self.tag = np.select([code_p == 0, code_p == 1], [1.0, self.K], 0.0).reshape(nb, BS)
        self.block_dz = tail[:, 0].copy()
        self.s, self.dz = s, dz
        self.BS, self.nb, self.N, self.n, self.n0, self.n1 = BS, nb, N, n, float(n0), float(n1)
        self.chunk = max(1, int(chunk) // BS) * BS
        self.batch = int(batch)
        self.gen = _Counts(code_p, d.counts)
        self.z, self.code = z, code
        self.norm = float(n0) * float(n1)
        self.exact_blocks = 0  # blocks summed position by position (diagnostics and tests)

    def _block_sums(self, C: np.ndarray, X: np.ndarray):
        """Per block and resample ((nb, B) each): Σ c·P, T0 and T1 (C: (B, N) uint8 counts).

        T0 and T1 come from one dot product with is0 + K·is1 (K a power of two above any T0,
        so both are exact). einsum rather than matmul: OpenBLAS calls from two threads run
        one at a time here.
        """
        B, BS = len(C), self.BS
        cp = np.empty((self.nb, B))
        tt = np.empty((self.nb, B))
        for a in range(0, self.N, self.chunk):
            m = min(self.chunk, self.N - a)
            blocks = slice(a // BS, (a + m) // BS)
            Xc = X[:B, :m]
            np.copyto(Xc, C[:, a : a + m])
            X3 = Xc.reshape(B, m // BS, BS)
            cp[blocks] = np.einsum("bkj,kj->kb", X3, self.P[blocks])
            tt[blocks] = np.einsum("bkj,kj->kb", X3, self.tag[blocks])
        T1 = np.floor(tt * (1.0 / self.K))
        return cp, tt - self.K * T1, T1

    def _exact_blocks(self, C: np.ndarray, E0: np.ndarray, bi: np.ndarray, ri: np.ndarray, acc: np.ndarray) -> None:
        """Add Σ_k |E_k|·dz_k over blocks bi of resamples ri to acc[ri], position by position."""
        Cb = C.reshape(len(C), self.nb, self.BS)
        step = max(1, (1 << 16) // self.BS)
        for a in range(0, len(bi), step):
            b, r = bi[a : a + step], ri[a : a + step]
            W = Cb[r, b] * self.s[b]
            np.cumsum(W, axis=1, out=W)
            W += E0[b, r][:, None]
            np.abs(W, out=W)
            np.add.at(acc, r, np.einsum("pj,pj->p", W, self.dz[b]))
        self.exact_blocks += len(bi)

    def worker(self, keep: list | None = None):
        C = np.empty((self.batch, self.N), dtype=np.uint8)
        X = np.empty((self.batch, self.chunk))
        tmp = np.empty(min(self.N, _DRAW_STEP) // 8, dtype=np.uint64)

        def run(seeds) -> np.ndarray:
            B = len(seeds)
            for r, sd in enumerate(seeds):
                self.gen.draw(_rng(sd), C[r], tmp)
                if keep is not None:
                    keep.append(C[r, : self.n].astype(np.float64))
            cp, T0, T1 = self._block_sums(C[:B], X)
            U = self.n1 * T0 - self.n0 * T1  # E gained over each block (exact integers)
            E0 = np.cumsum(U, axis=0) - U
            pos = E0 - self.n0 * T1 >= 0.0
            neg = E0 + self.n1 * T0 <= 0.0
            sign = np.where(pos, 1.0, np.where(neg, -1.0, 0.0))
            acc = np.einsum("br,br->r", sign, E0 * self.block_dz[:, None] + cp)
            bi, ri = np.nonzero(~(pos | neg))
            if bi.size:
                self._exact_blocks(C[:B], E0, bi, ri, acc)
            return acc / self.norm

        return run


class _GenericBoot:
    """Replicates of any statistics from count vectors over the rows (in row order)."""

    def __init__(self, d: _Data, stats: Sequence[str]):
        self.d = d
        self.stats = tuple(stats)
        n = d.n
        seq = np.full(-(-n // 8) * 8, -1, dtype=np.intp)
        seq[:n] = d.codes
        self.gen = _Counts(seq, d.counts)
        if "spdd" in self.stats:
            order = np.argsort(d.x, kind="stable")
            self.sp_order = order
            self.sp_z = d.x[order]
            self.sp_code = d.codes[order]
            self.sp_gap = _dp_gap_fn(d.counts)
        if "speo" in self.stats:
            vals, tags = _speo_entries(d)
            order = np.argsort(vals, kind="stable")
            self.eo_rows = np.concatenate([np.arange(n), np.arange(n)])[order]
            self.eo_tag = tags[order]
            self.eo_z = vals[order]
            self.eo_gap = _eo_gap_fn(d.counts)
        if "pcc" in self.stats:
            xc = d.x - d.x.mean()
            yc = d.y - d.y.mean()
            self.pc = np.stack([xc, yc, xc * xc, yc * yc, xc * yc])
        if "srcc" in self.stats:
            self.rk = [_tie_blocks(d.x), _tie_blocks(d.y)]

    @staticmethod
    def _weighted_corr(c: np.ndarray, m: np.ndarray, n: int) -> float:
        sx, sy, sxx, syy, sxy = np.einsum("i,ki->k", c, m)
        vxx = sxx - sx * sx / n
        vyy = syy - sy * sy / n
        vxy = sxy - sx * sy / n
        if vxx <= 1e-12 * max(sxx, 1e-300) or vyy <= 1e-12 * max(syy, 1e-300):
            return math.nan
        return max(-1.0, min(1.0, vxy / math.sqrt(vxx * vyy)))

    def _ranks(self, c: np.ndarray, which: int) -> np.ndarray:
        order, starts, block_id = self.rk[which]
        cs = c[order]
        T = np.add.reduceat(cs, starts)
        mid = np.cumsum(T) - T + (T + 1.0) / 2.0
        r = np.empty(len(c))
        r[order] = mid[block_id]
        return r

    def compute(self, c: np.ndarray) -> list[float]:
        d = self.d
        n = d.n
        out = []
        for s in self.stats:
            if s == "spdd":
                cs = c[self.sp_order]
                out.append(_integrate_gap(self.sp_z, self.sp_code, d.n_groups, self.sp_gap, cs))
            elif s == "speo":
                ce = c[self.eo_rows]
                out.append(_integrate_gap(self.eo_z, self.eo_tag, 2 * d.n_groups, self.eo_gap, ce))
            elif s == "pcc":
                out.append(self._weighted_corr(c, self.pc, n))
            elif s == "srcc":
                mid = (n + 1) / 2.0
                rx = self._ranks(c, 0) - mid
                ry = self._ranks(c, 1) - mid
                m = np.stack([rx, ry, rx * rx, ry * ry, rx * ry])
                out.append(self._weighted_corr(c, m, n))
        return out

    def worker(self, keep: list | None = None):
        c8 = np.empty(self.gen.N, dtype=np.uint8)
        c = np.empty(self.gen.N)
        n = self.d.n

        def run(seeds):
            out = []
            for sd in seeds:
                self.gen.draw(_rng(sd), c8)
                np.copyto(c, c8)
                if keep is not None:
                    keep.append(c[:n].copy())
                out.append(self.compute(c[:n]))
            return out

        return run


def _replicates(d: _Data, stats: Sequence[str], n_boot: int, random_state, *, keep: dict | None = None) -> dict:
    """Bootstrap replicate values {statistic: (n_boot,) array}; ``keep`` collects the counts
    (row order for the generic path, sorted order for two-group SPDD) — for tests."""
    seeds = _seed_sequences(random_state, n_boot)
    out: dict[str, np.ndarray] = {}
    generic = [s for s in stats if s != "spdd" or d.n_groups != 2]
    if "spdd" in stats and d.n_groups == 2:
        sb = _SpddBoot(d)
        k = None if keep is None else keep.setdefault("spdd", [])
        out["spdd"] = _run_replicates(lambda: sb.worker(k), seeds, 1, d.n * n_boot, sb.batch)[:, 0]
        if keep is not None:
            keep["spdd_sorted"] = (sb.z, sb.code)
    if generic:
        gb = _GenericBoot(d, generic)
        k = None if keep is None else keep.setdefault("generic", [])
        vals = _run_replicates(lambda: gb.worker(k), seeds, len(generic), 4 * d.n * n_boot)
        for i, s in enumerate(generic):
            out[s] = vals[:, i]
    return out


def _check_boot_args(n_boot, level, *, allow_zero: bool) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise ValueError(f"n_boot must be an integer, got {n_boot!r}")
    if n_boot < (0 if allow_zero else 1):
        raise ValueError(f"n_boot must be at least {0 if allow_zero else 1}, got {n_boot}")
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95, got {level!r}") from None
    if not 0.0 < lv < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    return int(n_boot), lv


def _percentile_ci(reps: np.ndarray, level: float) -> tuple[float, float]:
    r = reps[np.isfinite(reps)]
    if r.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return float(lo), float(hi)


def _check_statistic(statistic) -> str:
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}; got {statistic!r}")
    return statistic


def bootstrap_ci(
    statistic: str,
    scores,
    groups,
    labels=None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state=0,
) -> tuple[float, float]:
    """Percentile bootstrap CI ``(low, high)`` for "spdd", "speo", "pcc" or "srcc".

    For the distances (SPDD, SPEO) this interval is biased upward and never contains a fair
    model's 0; `audit` shows the test-inversion interval and upper bound of
    `fairviz.uncertainty` instead (docs/STATISTICS.md).

    Rows are resampled with replacement within each group (group sizes stay fixed); the data
    are sorted once and each resample is a vector of multinomial counts over the sorted rows.
    ``random_state`` (int, None, SeedSequence or Generator) fixes the draws; results do not
    depend on the number of threads (set FAIRVIZ_THREADS to choose it).
    """
    stat = _check_statistic(statistic)
    n_boot, lv = _check_boot_args(n_boot, level, allow_zero=False)
    d = _prepare(scores, groups, labels, need_labels=stat != "spdd")
    reps = _replicates(d, (stat,), n_boot, random_state)[stat]
    return _percentile_ci(reps, lv)


# --------------------------------------------------------------------------------------------
# audit()
# --------------------------------------------------------------------------------------------


def _json_float(v: float | None):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class MetricValue:
    """A point estimate with its CI (NaN when not computed): the bootstrap percentile CI for
    PCC / SRCC; for the distances SPDD / SPEO the test-inversion CI of
    `fairviz.uncertainty.DistanceUncertainty` (``detail``: upper bound, p-value, chance level)."""

    value: float
    ci_low: float
    ci_high: float
    detail: Any = None  # fairviz.uncertainty.DistanceUncertainty for SPDD / SPEO

    def to_dict(self) -> dict:
        if self.detail is not None:
            return self.detail.to_dict()
        return {"value": _json_float(self.value), "ci_low": _json_float(self.ci_low),
                "ci_high": _json_float(self.ci_high)}


@dataclass(frozen=True)
class AuditResult:
    """Everything `audit` computes. Metrics need labels for ``speo``/``pcc``/``srcc`` (else None)."""

    n: int
    group_counts: dict
    spdd: MetricValue
    speo: MetricValue | None
    pcc: MetricValue | None
    srcc: MetricValue | None
    spdd_grid50: float
    speo_grid50: float | None
    spdd_parts: dict
    level: float
    n_boot: int
    groups: tuple = field(default=())

    def to_dict(self) -> dict:
        """JSON-serialisable dict (NaN becomes None; group keys become strings)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "n": int(self.n), "spdd": self.spdd.to_dict()}
        for name in ("speo", "pcc", "srcc"):
            mv = getattr(self, name)
            if mv is not None:
                out[name] = mv.to_dict()
        out["spdd_grid50"] = _json_float(self.spdd_grid50)
        if self.speo_grid50 is not None:
            out["speo_grid50"] = _json_float(self.speo_grid50)
        out["spdd_parts"] = {str(g): _json_float(v) for g, v in self.spdd_parts.items()}
        out["groups"] = {str(g): int(c) for g, c in self.group_counts.items()}
        out["level"] = float(self.level)
        out["n_boot"] = int(self.n_boot)
        return out

    def to_frame(self):
        """pandas DataFrame with columns metric, value, ci_low, ci_high."""
        import pandas as pd

        rows = []
        for name in ("spdd", "speo", "pcc", "srcc"):
            mv = getattr(self, name)
            if mv is not None:
                rows.append((name, mv.value, mv.ci_low, mv.ci_high))
        rows.append(("spdd_grid50", self.spdd_grid50, math.nan, math.nan))
        if self.speo_grid50 is not None:
            rows.append(("speo_grid50", self.speo_grid50, math.nan, math.nan))
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])


def audit(scores, groups, labels=None, *, n_boot: int = 1000, level: float = 0.95, random_state=0,
          n_perm: int | None = None) -> AuditResult:
    """Audit scores (and optionally labels) by group: every metric with a CI.

    scores: (n,) in [0, 1]; groups: (n,) hashable, ≥ 2 groups; labels: (n,) in [0, 1] or None.
    SPDD (exact, with CI), its grid=50 variant and its split by favoured group; with labels
    also SPEO (exact + grid=50), PCC and SRCC with CIs. ``n_boot=0`` skips the bootstrap (CIs
    are NaN). PCC / SRCC: percentile intervals at ``level`` from resampling within groups.
    SPDD / SPEO (distances, biased upward): the intervals, upper bounds and permutation test
    of `fairviz.uncertainty` (``n_perm`` group-label shuffles; None: a work budget, and none
    when ``n_boot=0``).
    """
    n_boot, lv = _check_boot_args(n_boot, level, allow_zero=True)
    d = _prepare(scores, groups, labels)
    has_y = d.y is not None
    stats = ("spdd", "speo", "pcc", "srcc") if has_y else ("spdd",)
    values = {"spdd": float(_spdd_exact(d))}
    if has_y:
        values["speo"] = float(_speo_exact(d))
        values["pcc"] = _corr(d.x, d.y) if d.n >= 2 else math.nan
        values["srcc"] = _corr(_midranks(d.x), _midranks(d.y)) if d.n >= 2 else math.nan
    reps = _replicates(d, stats, n_boot, random_state) if n_boot > 0 else {}
    if n_perm is None and n_boot == 0:
        n_perm = 0
    dist = audit_distances(d.x, d.codes, d.y, values, reps, level=lv, n_perm=n_perm, random_state=random_state)

    def mv(name: str) -> MetricValue:
        if name in dist:
            u = dist[name]
            return MetricValue(values[name], u.ci_low, u.ci_high, u)
        lo, hi = _percentile_ci(reps[name], lv) if name in reps else (math.nan, math.nan)
        return MetricValue(values[name], lo, hi)

    curve = _dp_curve(d)
    return AuditResult(
        n=d.n,
        group_counts={g: int(c) for g, c in zip(d.labels, d.counts)},
        spdd=mv("spdd"),
        speo=mv("speo") if has_y else None,
        pcc=mv("pcc") if has_y else None,
        srcc=mv("srcc") if has_y else None,
        spdd_grid50=_spdd_grid(d, 50),
        speo_grid50=_speo_grid(d, 50) if has_y else None,
        spdd_parts=_parts(curve),
        level=lv,
        n_boot=n_boot,
        groups=d.labels,
    )
