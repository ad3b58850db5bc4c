"""Run a few large, independent pieces of work (one per grouping) two at a time.

numpy's kernels here make many calls of a few hundred microseconds each; two Python threads
then contend for the GIL between calls and reach only about 1.3× one thread (measured on a
2-core machine), where two processes reach 2×. So a command-line run, which owns its process,
runs the pieces in forked worker processes: they inherit the data (nothing is pickled on the
way in) and only the results come back pickled. Anything else (the app's server has many
threads, which a fork must not copy) runs them on threads. Results never depend on which.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import functools
import itertools
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fairviz._jit import warm as warm_compiled_kernels

#: From this many rows a command-line audit or report uses worker processes (below, the work
#: is too small to pay for a fork).
PROCESS_MIN_ROWS = 50_000

# state of each running call, by token: forked workers inherit it
_STATE: dict[int, Any] = {}
_TOKENS = itertools.count()
_LOCK = threading.Lock()


def _call(fn: Callable, token: int, item):
    return fn(_STATE[token], item)


def _one_thread_each() -> None:
    # each worker has a core; more threads in one would only contend for it
    os.environ.setdefault("FAIRVIZ_THREADS", "1")


def _return_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``): a
    forked worker's resident set starts as the parent's, so what the parent freed but kept
    (a few hundred MB after an audit of 10⁶ rows) would count in every worker's peak."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _in_fresh_process(call: Callable, item):
    """``call(item)`` in a process forked for it alone: what one piece leaves in its heap (the
    allocator keeps freed memory) does not add to the next piece's peak."""
    with concurrent.futures.ProcessPoolExecutor(1, multiprocessing.get_context("fork"),
                                                initializer=_one_thread_each) as pool:
        return pool.submit(call, item).result()


def run_side_by_side(fn: Callable[[Any, Any], Any], state: Any, items: Sequence, *, processes: bool,
                     workers: int = 2) -> list:
    """``[fn(state, item) for item in items]``, ``workers`` at a time: each in a process forked
    for it when ``processes`` is true and the platform forks, else on threads. ``fn`` must be a
    module-level function (sent to a worker by name); ``state`` is inherited, never pickled.
    When a worker process cannot start or dies, the work is done again on threads."""
    with _LOCK:
        token = next(_TOKENS)
        _STATE[token] = state
    try:
        workers = max(1, min(workers, len(items)))
        call = functools.partial(_call, fn, token)
        if processes and workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            _return_free_memory()
            warm_compiled_kernels()  # each worker inherits the loaded compiler
            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    return list(pool.map(functools.partial(_in_fresh_process, call), items))
            except (BrokenProcessPool, OSError):
                pass  # a worker could not start or was killed (e.g. out of memory): do it here instead
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(call, items))
    finally:
        with _LOCK:
            _STATE.pop(token, None)
