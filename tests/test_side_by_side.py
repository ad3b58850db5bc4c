"""`fairviz.side_by_side`: results in order, the same on threads and in forked workers, a dead
worker's piece done again in the parent, and work started aside (`start_aside`) whose result,
exception or death reaches the caller (forking runs in a subprocess: a fork of the test process
would copy its threads)."""

import subprocess
import sys

import pytest

from fairviz.side_by_side import run_side_by_side, start_aside


def _square_plus(state, item):
    return state + item * item


def _fail(state, item):
    raise ValueError(f"bad {item}")


def test_threads_keep_the_order():
    assert run_side_by_side(_square_plus, 10, [3, 1, 2], processes=False) == [19, 11, 14]
    assert run_side_by_side(_square_plus, 0, [], processes=False) == []


def test_aside_on_a_thread():
    assert start_aside(_square_plus, 1, 3, processes=False).result() == 10
    with pytest.raises(ValueError, match="bad 7"):
        start_aside(_fail, None, 7, processes=False).result()


_SCRIPT = """
import os, sys, time
from fairviz.side_by_side import run_side_by_side, start_aside

def work(parent, item):
    if item == "die" and os.getpid() != parent:
        os._exit(3)  # the worker dies
    if item == "fail":
        raise KeyError("no such thing")
    if item == "sleep":
        time.sleep(60)
    return (item, os.getpid() != parent)

parent = os.getpid()
print(run_side_by_side(work, parent, ["a", "b", "c"], processes=True))
print(run_side_by_side(work, parent, ["a", "die"], processes=True))
print(start_aside(work, parent, "x", processes=True).result())
print(start_aside(work, parent, "die", processes=True).result())
try:
    start_aside(work, parent, "fail", processes=True).result()
except KeyError as err:
    print("raised", err)
t = time.perf_counter()
start_aside(work, parent, "sleep", processes=True).cancel()
print("cancelled", time.perf_counter() - t < 30)
"""


def test_forked_workers_and_the_fallback_to_the_parent():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    forked, fallback, aside, aside_dead, raised, cancelled = out.strip().splitlines()
    assert forked == "[('a', True), ('b', True), ('c', True)]"  # each ran in a worker process
    assert fallback == "[('a', True), ('die', False)]"  # the dead worker's piece: done again here
    assert aside == "('x', True)"
    assert aside_dead == "('die', False)"
    assert raised == "raised 'no such thing'"
    assert cancelled == "cancelled True"
