"""Shared test set-up.

Tests never touch the user's cache: `FAIRVIZ_CACHE` points at a fresh folder per test session
unless the caller set it (CI may set it to reuse preprocessed features between runs).
"""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("FAIRVIZ_CACHE", tempfile.mkdtemp(prefix="fairviz-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
