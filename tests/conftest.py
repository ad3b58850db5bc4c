"""Shared test set-up.

Tests never touch the user's cache: `FAIRVIZ_CACHE` points at a fresh folder per test session
unless the caller set it (CI may set it to reuse preprocessed features between runs).

Property tests (hypothesis) are repeatable by default: the same code draws the same examples on
every machine, so a clean-clone run cannot fail on a case no one has seen before. `make fuzz`
(profile ``explore``) draws fresh random examples in each round to hunt for new edge cases;
whatever it finds becomes a plain regression test.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

os.environ.setdefault("FAIRVIZ_CACHE", tempfile.mkdtemp(prefix="fairviz-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
