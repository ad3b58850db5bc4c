"""Sorting primitives: one sort of the data, with the group code packed into the float keys."""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_CHUNK = 1 << 15  # elements per chunk in the streaming kernels (a few buffers fit in L2)




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
    and unpacking stream over the data in cache-sized chunks); otherwise an argsort. The order
    of tied values is unspecified: the step integrals and curves built on this read the counts
    only where the value changes, so they do not depend on it (an unstable argsort is faster).
    """
    if n_groups > 4:
        order = np.argsort(x, kind="quicksort")
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


