"""Run a few large, independent pieces of work (one per grouping) side by side, or one piece
beside the caller's own work.

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
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from fairviz._jit import warm as warm_compiled_kernels

#: From this many rows a command-line audit or report uses worker processes (below, the work
#: is too small to pay for a fork).
PROCESS_MIN_ROWS = 50_000


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _return_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``): a
    forked worker's resident set starts as the parent's, so what the parent freed but kept
    (a few hundred MB after an audit of 10⁶ rows) would count in every worker's peak."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _before_forking() -> None:
    _return_free_memory()
    warm_compiled_kernels()  # each worker inherits the loaded compiler


def _child(send, fn: Callable, state: Any, item: Any) -> None:
    """Body of a forked worker: ``fn(state, item)``, its result or exception sent back pickled."""
    os.environ.setdefault("FAIRVIZ_THREADS", "1")  # the workers share the cores: threads in one would contend
    try:
        out = ("ok", fn(state, item))
    except Exception as err:  # noqa: BLE001 (re-raised in the parent)
        out = ("error", err)
    try:
        send.send(out)
    except Exception as err:  # noqa: BLE001 (an unpicklable result or exception)
        send.send(("error", RuntimeError(f"a worker's result could not be sent back: {err}")))
    send.close()


class Aside:
    """``fn(state, item)`` started by `start_aside`, running while the caller does other work."""

    def __init__(self, fn: Callable, state: Any, item: Any, forked: bool):
        self._call = functools.partial(fn, state, item)
        self._proc = self._pool = self._future = None
        if forked:
            ctx = multiprocessing.get_context("fork")
            recv, send = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_child, args=(send, fn, state, item), daemon=True)
            try:
                self._proc.start()
            except OSError:  # no process to be had (limits, memory): the thread does it
                self._proc = None
            send.close()
            if self._proc is not None:
                # take the result as soon as it is sent: the worker then exits and frees its memory
                # instead of waiting, blocked on a full pipe, until the caller asks
                self._outcome = ("died", None)
                self._reader = threading.Thread(target=self._read, args=(recv,), daemon=True)
                self._reader.start()
            else:
                recv.close()
        if self._proc is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1)
            self._future = self._pool.submit(self._call)

    def _read(self, recv) -> None:
        try:
            self._outcome = recv.recv()
        except (EOFError, OSError):  # the worker died (e.g. killed for memory) or was cancelled
            pass
        finally:
            recv.close()
            self._proc.join()

    def result(self) -> Any:
        """Wait for the result; an exception of the work is raised here. A worker process that
        died (e.g. killed for memory) is replaced by doing the work in the calling thread."""
        if self._proc is None:
            try:
                return self._future.result()
            finally:
                self._pool.shutdown()
        self._reader.join()
        status, value = self._outcome
        if status == "ok":
            return value
        if status == "error":
            raise value
        return self._call()

    def cancel(self) -> None:
        """Stop the work if it runs in a process (a thread finishes it, its result unread)."""
        if self._proc is not None:
            self._proc.terminate()
            self._reader.join()
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)


def start_aside(fn: Callable[[Any, Any], Any], state: Any, item: Any, *, processes: bool) -> Aside:
    """Start ``fn(state, item)`` now — in a process forked for it when ``processes`` is true and
    the platform forks, else on a thread — and return at once; `Aside.result` waits for it.
    ``state`` and ``item`` are inherited by the fork, never pickled; the result comes back
    pickled. For one large piece of work the caller's next steps do not need (the report's
    repair beside the audit: the caller's process keeps one core, the worker takes the other)."""
    forked = processes and _can_fork()
    if forked:
        _before_forking()
    return Aside(fn, state, item, forked)


def run_side_by_side(fn: Callable[[Any, Any], Any], state: Any, items: Sequence, *, processes: bool,
                     workers: int = 2) -> list:
    """``[fn(state, item) for item in items]``, ``workers`` at a time: each in a process forked
    for it (`start_aside`: what one piece leaves in its heap does not add to the next one's
    peak) when ``processes`` is true and the platform forks, else on threads. A worker process
    that dies has its piece done again on a thread."""
    workers = max(1, min(workers, len(items)))
    forked = processes and workers > 1 and _can_fork()
    if forked:
        _before_forking()

    def one(item):
        return Aside(fn, state, item, True).result() if forked else fn(state, item)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, items))
