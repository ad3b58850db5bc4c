"""bench/bench_gpu.py runs end to end (tiny CPU setting): every stage prints a positive clips/s."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


def test_bench_gpu_tiny_smoke_run(tmp_path, monkeypatch, capsys):
    import bench_gpu

    monkeypatch.setenv("FAIRVIZ_CACHE", str(tmp_path / "cache"))  # the script sets its own; restored after
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(bench_gpu, "update_section", lambda name, body: results.write_text(body))
    assert bench_gpu.main(["--tiny", "--device", "cpu", "--pre-clips", "5", "--load-clips", "96",
                           "--batch-size", "16", "--write"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (\d+×\d+²) \| ([\d,.]+) \| ([\d,.]+) \| ([\d,.]+) \| ([\d,.]+) \|$", out, re.M)
    assert [r[0] for r in rows] == ["4×16²", "8×32²"]
    assert all(float(v.replace(",", "")) > 0 for r in rows for v in r[1:])
    assert "no GPU (CPU run)" in results.read_text()
