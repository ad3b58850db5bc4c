"""Compiled loops (numba) for the few kernels that numpy cannot vectorise without many passes.

A step integral over sorted breakpoints updates one group's counts per breakpoint and reads the
spread of all groups' rates; numpy needs a cumulative sum and several passes per group, a loop
needs one pass. `njit` compiles a function on its first call with given argument types, caches
the machine code on disk (beside the module, or in numba's user cache where that is read-only;
without any writable place it compiles once per process instead), and releases the GIL while it
runs, so threads run such kernels in parallel.
"""

from __future__ import annotations

import numba


def _probe(x: float) -> float:
    return x


def _cache_available() -> bool:
    """Whether numba finds a writable place for its cache (it raises at decoration otherwise)."""
    try:
        numba.njit(cache=True)(_probe)
    except RuntimeError:
        return False
    return True


_CACHE = _cache_available()
#: The settings every compiled kernel shares: on-disk cache, no GIL, IEEE semantics (no fastmath:
#: the sums must be reproducible and identical across calls).
njit = numba.njit(cache=_CACHE, nogil=True)
#: The same for a small helper of compiled loops: inlined into each caller's code (a call per
#: step of a loop cost ~12 %).
njit_inline = numba.njit(cache=_CACHE, nogil=True, inline="always")
_noop = njit(_probe)


def warm() -> None:
    """Load numba's compiler state now (about 0.5 s, once per process): call before forking
    workers, so that each inherits it instead of paying for it."""
    _noop(0.0)
