"""The compiled kernels' settings (`fairviz._jit`): they work where numba cannot cache."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fairviz import metrics

REPO = Path(__file__).resolve().parents[1]
_NO_LOCATOR = '''
class NoLocator:  # numba finds no place for its cache: decorating with cache=True raises
    @classmethod
    def from_function(cls, py_func, py_file):
        return None
'''
_RUN = '''
import numpy as np
from fairviz import _jit, metrics
rng = np.random.default_rng(3)
x, y, g = rng.random(500), rng.random(500), rng.integers(0, 3, 500)
print(_jit._cache_available(), repr(metrics.speo(x, y, g)))
'''


def test_kernels_run_without_a_writable_cache(tmp_path):
    (tmp_path / "noloc.py").write_text(_NO_LOCATOR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)]),
           "NUMBA_CACHE_LOCATOR_CLASSES": "noloc.NoLocator"}
    out = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cached, value = out.stdout.split()
    rng = np.random.default_rng(3)
    x, y, g = rng.random(500), rng.random(500), rng.integers(0, 3, 500)
    assert cached == "False"
    assert float(value) == metrics.speo(x, y, g)
