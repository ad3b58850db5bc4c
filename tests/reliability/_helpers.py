"""Shared pieces of the reliability tests: tiny runs, a malicious pickle, an audit-hook recorder."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

#: ModelConfig overrides that make a network of a few thousand weights (saves in milliseconds).
TINY_MODEL = dict(
    video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=3, text_hidden=2,
    regressor_hidden=4, adversary_hidden=4,
)


def make_run(seed: int = 0, name: str = "rel-run", n_val: int = 6, n_test: int = 10):
    """A complete `fairviz.train.Run` with random weights and predictions (no training)."""
    import pandas as pd
    import torch

    from fairviz.model import FairMultimodalNet, ModelConfig
    from fairviz.train import Run, TrainConfig

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mcfg = ModelConfig.from_dict({**TINY_MODEL, "n_mfcc": 5, "text_dim": 6})
    net = FairMultimodalNet(mcfg)
    n = n_val + n_test
    preds = pd.DataFrame({
        "score": rng.uniform(0, 1, n),
        "label": rng.uniform(0, 1, n),
        "group": np.arange(n) % 2,
        "split": ["val"] * n_val + ["test"] * n_test,
    })
    return Run(
        name=name,
        config=TrainConfig(method="ours", alpha=3.0, lambda_w=0.3, seed=seed, model=TINY_MODEL),
        history=[{"epoch": 1, "loss": 0.1, "val_pcc": 0.5, "val_spdd": 0.1}],
        predictions=preds,
        z=rng.normal(size=(n_test, mcfg.d_z)).astype(np.float32),
        metrics={"n": n_test, "spdd": {"value": 0.1 + seed, "ci_low": 0.05, "ci_high": 0.2}},
        state_dict={k: v.clone() for k, v in net.state_dict().items()},
        model_config=mcfg,
        info={"seed": seed},
    )


class Marker:
    """Pickles to ``open(path, "w")``: unpickling it creates the file `path` (code execution)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------------------------------------
# audit hook: see every unpickled global, os.system and subprocess while a block runs

_RECORDING: list[list] = []
_LOCK = threading.Lock()
_WATCHED = ("pickle.find_class", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
)


#: any path holding this text that is opened inside the block is recorded as ("open", args)
SENTINEL = "FAIRVIZ-SENTINEL"


def _hook(event: str, args) -> None:
    if not _RECORDING:
        return
    if event == "open" and args and SENTINEL in str(args[0]):
        with _LOCK:
            for sink in _RECORDING:
                sink.append((event, args))
    elif event.startswith(_WATCHED):
        with _LOCK:
            for sink in _RECORDING:
                sink.append((event, args))


_installed = False


@contextlib.contextmanager
def record_dangerous_events():
    """Collect (event, args) of unpickling / process start / exec inside the block."""
    global _installed
    if not _installed:  # audit hooks cannot be removed; this one is idle outside the block
        sys.addaudithook(_hook)
        _installed = True
    sink: list = []
    _RECORDING.append(sink)
    try:
        yield sink
    finally:
        _RECORDING.remove(sink)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB (psutil when installed, else /proc/<pid>/status)."""
    try:
        import psutil  # type: ignore

        return int(psutil.Process(pid).memory_info().rss // 1024)
    except ImportError:
        pass
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def tree_rss_kb(pid: int) -> int:
    """RSS of a process plus its children (streamlit may fork helpers)."""
    total = rss_kb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for c in children:
        with contextlib.suppress(OSError, RuntimeError):
            total += tree_rss_kb(int(c))
    return total


REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
ENV_BASE = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
