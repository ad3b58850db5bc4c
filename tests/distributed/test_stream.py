"""Under torchrun each process reads only its own rows of each batch from a memory-mapped cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fairviz.data.features import save_feature_cache
from tests.distributed.test_torchrun import _env, _torchrun
from tests.test_train import tiny_features

WORKER = Path(__file__).with_name("stream_worker.py")
pytestmark = pytest.mark.slow


def _run(cmd, cwd) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _training_reads(record: dict) -> list[list[int]]:
    train = set(record["train"])
    return [r["rows"] for r in record["reads"] if set(r["rows"]) <= train]


def test_each_process_reads_only_its_shard_from_the_memory_map(tmp_path):
    cache = save_feature_cache(tmp_path / "cache", tiny_features(n=192), "k", {"source": "test"})
    _run([sys.executable, str(WORKER), str(tmp_path / "single"), "32", str(cache)], tmp_path)
    _run([*_torchrun(), "--standalone", "--nproc-per-node", "2", str(WORKER),
          str(tmp_path / "multi"), "16", str(cache)], tmp_path)
    single = json.loads((tmp_path / "single.rank0.json").read_text())
    ranks = [json.loads((tmp_path / f"multi.rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world_size"] == 2
    for record in (single, *ranks):
        assert record["reads"] and all(r["mapped"] for r in record["reads"])
        train, evaluation = set(record["train"]), set(record["eval"])
        for r in record["reads"]:  # every read is a training batch or a scoring pass
            assert set(r["rows"]) <= train or set(r["rows"]) <= evaluation
    whole = _training_reads(single)
    halves = [_training_reads(r) for r in ranks]
    assert len(whole) == len(halves[0]) == len(halves[1]) > 0
    for batch, first, second in zip(whole, *halves):
        assert len(first) == len(second) == len(batch) // 2
        assert first + second == batch  # rank 0 the first half of the global batch, rank 1 the rest
        assert not set(first) & set(second)
