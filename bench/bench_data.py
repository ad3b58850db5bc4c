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
import platform
import re
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fairviz.atomic import write_text  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"


# ----------------------------------------------------------------------------------------------
# RESULTS.md sections
# ----------------------------------------------------------------------------------------------
def update_section(name: str, body: str, path: Path = RESULTS) -> Path:
    """Put ``body`` between the markers of section ``name`` in ``path`` (atomic write).

    Creates the file (``# Benchmarks`` heading) or appends the section when missing; any other
    text in the file is kept as it is.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    return write_text(path, text)


def machine() -> str:
    try:
        load = "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "n/a"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"Python {platform.python_version()}, load average (1/5/15 min) {load}"
    )


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


BENCHES: dict[str, Callable[[], str]] = {
    "generate": bench_generate,
    # "features": bench_features,  # feature-extraction timings (features developer)
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
