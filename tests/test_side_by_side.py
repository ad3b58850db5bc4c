"""`fairviz.side_by_side`: results in order, the same on threads and in forked workers, and a
dead worker falls back to threads (forking runs in a subprocess: a fork of the test process
would copy its threads)."""

import subprocess
import sys

from fairviz.side_by_side import run_side_by_side


def _square_plus(state, item):
    return state + item * item


def test_threads_keep_the_order():
    assert run_side_by_side(_square_plus, 10, [3, 1, 2], processes=False) == [19, 11, 14]
    assert run_side_by_side(_square_plus, 0, [], processes=False) == []


_SCRIPT = """
import os, sys
from fairviz.side_by_side import run_side_by_side

def work(parent, item):
    if item == "die" and os.getpid() != parent:
        os._exit(3)  # the worker dies
    return (item, os.getpid() != parent)

parent = os.getpid()
print(run_side_by_side(work, parent, ["a", "b", "c"], processes=True))
print(run_side_by_side(work, parent, ["a", "die"], processes=True))
"""


def test_forked_workers_and_the_fallback_to_threads():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout
    forked, fallback = out.strip().splitlines()
    assert forked == "[('a', True), ('b', True), ('c', True)]"  # each ran in a worker process
    assert fallback == "[('a', False), ('die', False)]"  # the pool broke: all done again here
