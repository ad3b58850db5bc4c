"""Data benchmarks: synthetic generation (and, later, feature extraction) at the default size.

    python bench/bench_data.py            # run every benchmark, update bench/RESULTS.md
    python bench/bench_data.py generate   # only the named ones

Each benchmark is a function ``bench_<name>() -> str`` returning a Markdown section; ``main()``
writes it into ``bench/RESULTS.md`` between ``<!-- bench_data_<name>:start -->`` and
``<!-- bench_data_<name>:end -->`` (other sections of the file are preserved). To add one, write
``bench_<name>()`` and list it in ``BENCHES``.

The machine is shared; wall-clock times depend on what else runs, so CPU time (this process) and
the load average are recorded next to them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, RESULTS, machine, update_section  # noqa: E402


def _timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


# ----------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------
def bench_generate(repeats: int = 2) -> str:
    """``make_synthetic()`` at the default size: wall and CPU seconds, size in memory."""
    import cv2  # noqa: F401  (import cost is not generation cost)
    import numpy as np

    from fairviz.data import synthetic

    runs = []
    data = None
    for _ in range(repeats):
        data, wall, cpu = _timed(lambda: synthetic.make_synthetic(seed=0))
        runs.append((wall, cpu))
        print(f"make_synthetic(): {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    assert data is not None
    n = len(data)
    best_wall = min(w for w, _ in runs)
    best_cpu = min(c for _, c in runs)
    mb = lambda a: a.nbytes / 1e6  # noqa: E731
    text_kb = sum(len(t) for t in data.text) / 1e3
    # the three stages, timed on a slice so the benchmark stays short
    sub = 500
    stage = {}
    _, stage["all (500)"], _ = _timed(lambda: synthetic.make_synthetic(sub, seed=0))
    _, stage["audio only, frames=1 size=16 (500)"], _ = _timed(
        lambda: synthetic.make_synthetic(sub, seed=0, frames=1, size=16)
    )
    lines = [
        "## Synthetic data generation (`bench/bench_data.py::bench_generate`)",
        "",
        f"`make_synthetic()` at the default size: **{n} candidates**, "
        f"{synthetic.DEFAULT_FRAMES} frames of {synthetic.DEFAULT_SIZE}×{synthetic.DEFAULT_SIZE} RGB, "
        f"{synthetic.DEFAULT_AUDIO_SECONDS:g} s of 16 kHz audio, one transcript each; "
        f"generator version {synthetic.GENERATOR_VERSION}, single-threaded.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| wall time, best of {repeats} | **{best_wall:.1f} s** ({n / best_wall:.0f} candidates/s) |",
        f"| CPU time (this process), best of {repeats} | {best_cpu:.1f} s |",
        f"| all runs (wall / CPU, s) | {', '.join(f'{w:.1f} / {c:.1f}' for w, c in runs)} |",
        f"| memory: video / audio / text | {mb(data.video):.0f} MB / {mb(data.audio):.0f} MB"
        f" / {text_kb:.0f} kB |",
        f"| 500 candidates, default shape | {stage['all (500)']:.2f} s wall |",
        f"| 500 candidates, 1 frame of 16×16 (≈ audio + text + latents) | "
        f"{stage['audio only, frames=1 size=16 (500)']:.2f} s wall |",
        "",
        f"Machine: {machine()}. Budget (issue 3 §6): generation + preprocessing of the default "
        "data set under 2 minutes on a 2-core CPU.",
        "",
        f"Check: same seed, byte-identical video: "
        f"{np.array_equal(data.video[:50], synthetic.make_synthetic(50, seed=0).video)}.",
    ]
    return "\n".join(lines)


def bench_features(load_repeats: int = 3) -> str:
    """First-time preprocessing of the default synthetic data set, then cached loads.

    Uses a fresh, temporary ``FAIRVIZ_CACHE`` so the first call really generates and
    preprocesses; the cached load is timed in this process and in a fresh Python process
    (imports included), which is what a user sees.
    """
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="fairviz-bench-cache-"))
    old_cache = os.environ.get("FAIRVIZ_CACHE")
    os.environ["FAIRVIZ_CACHE"] = str(tmp)
    try:
        from fairviz.data import features as F
        from fairviz.data.torch_data import GroupStratifiedBatchSampler, InterviewDataset

        spans: dict[str, list[float]] = {}  # stage -> [wall start, wall end, cpu start, cpu end]

        def progress(done: int, total: int, stage: str) -> None:
            now, cpu = time.perf_counter(), time.process_time()
            span = spans.setdefault(stage, [now, now, cpu, cpu])
            span[1], span[3] = now, cpu

        load0 = os.getloadavg()
        fs, cold_wall, cold_cpu = _timed(lambda: F.load_synthetic_features(progress=progress))
        load1 = os.getloadavg()
        print(f"first load (generate + preprocess + cache): {cold_wall:.1f} s wall, {cold_cpu:.1f} s CPU",
              flush=True)
        assert not fs.meta["cache_hit"]
        stage_s = {k: (v[1] - v[0], v[3] - v[2]) for k, v in spans.items()}
        path = Path(fs.meta["cache_path"])
        disk_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6

        warm = []
        for _ in range(load_repeats):
            again, wall, _ = _timed(lambda: F.load_synthetic_features())
            assert again.meta["cache_hit"]
            warm.append(wall)
        same = all(np.array_equal(getattr(fs, k), getattr(again, k))
                   for k in ("video", "mfcc", "text", "label", "group"))
        code = ("import time; t = time.perf_counter(); "
                "from fairviz.data.features import load_synthetic_features as L; fs = L(); "
                "print(time.perf_counter() - t, fs.meta['cache_hit'])")
        fresh = []
        for _ in range(load_repeats):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, cwd=REPO, env=dict(os.environ)).stdout.split()
            assert out[1] == "True"
            fresh.append(float(out[0]))
        print(f"cached load: {min(warm):.2f} s in process, {min(fresh):.2f} s in a fresh process",
              flush=True)

        # One epoch of batches as training would draw them (data side only).
        ds = InterviewDataset(fs)
        sampler = GroupStratifiedBatchSampler(fs.group, 64, seed=0)
        _, epoch_s, _ = _timed(lambda: [ds.batch(b) for b in sampler])
    finally:
        if old_cache is None:
            os.environ.pop("FAIRVIZ_CACHE", None)
        else:
            os.environ["FAIRVIZ_CACHE"] = old_cache
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(fs)
    gen = fs.meta["params"]
    stages = ", ".join(f"{k} {w:.1f} / {c:.1f} s" for k, (w, c) in stage_s.items())
    lines = [
        "## Feature preprocessing and cache (`bench/bench_data.py::bench_features`)",
        "",
        f"`load_synthetic_features()` at the default size: **{n} candidates** "
        f"({gen['frames']} frames of {gen['size']}×{gen['size']}, {gen['audio_seconds']:g} s audio, "
        f"one transcript each), text model `{fs.meta['text_model']['name']}` "
        f"(d = {fs.text.shape[1]}, fp32, CPU, {torch.get_num_threads()} torch threads), "
        f"MFCC {fs.mfcc.shape[2]} × {fs.mfcc.shape[1]} steps; fresh cache folder.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| first time: generate + preprocess + write cache (wall) | **{cold_wall:.1f} s** |",
        f"| first time: CPU time (this process, all threads) | {cold_cpu:.1f} s |",
        f"| first time, by stage (wall / CPU) | {stages} |",
        f"| cached load, in process (best of {load_repeats}; all) | **{min(warm):.2f} s** "
        f"({', '.join(f'{w:.2f}' for w in warm)}) |",
        f"| cached load, fresh Python process incl. imports (best of {load_repeats}; all) | "
        f"**{min(fresh):.2f} s** ({', '.join(f'{w:.2f}' for w in fresh)}) |",
        f"| cache on disk (arrays.npz + meta.json) | {disk_mb:.0f} MB |",
        f"| arrays: video / mfcc / text | {fs.video.nbytes / 1e6:.0f} MB / {fs.mfcc.nbytes / 1e6:.0f} MB"
        f" / {fs.text.nbytes / 1e6:.1f} MB |",
        f"| one epoch of stratified batches of 64 as tensors (`InterviewDataset.batch`) | {epoch_s:.2f} s |",
        f"| cached arrays identical to the first build | {same} |",
        "",
        f"Machine: {machine()}; load average before / after the first build "
        f"{load0[0]:.1f} / {load1[0]:.1f}. The box is shared with other developers' jobs, so wall "
        "times above are pessimistic (two torch threads stall on each other when a core is taken); "
        "the text model's forward passes dominate the first build, and its CPU time is the "
        "figure to compare across runs. Budget (issue 3 §6): "
        "first time < 2 min on a 2-core CPU, cached load < 5 s.",
    ]
    return "\n".join(lines)


BENCHES: dict[str, Callable[[], str]] = {
    "generate": bench_generate,
    "features": bench_features,
}


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        body = BENCHES[name]()
        update_section(f"bench_data_{name}", body)
        print(f"wrote section bench_data_{name} to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
