"""What every benchmark script shares: its section of bench/RESULTS.md and the machine line.

    from _results import REPO, RESULTS, machine, update_section

(``bench/`` is on ``sys.path`` when a script runs as ``python bench/bench_x.py``.) Each script owns
one or more sections of ``bench/RESULTS.md``, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; `update_section` rewrites one of them atomically and keeps the rest of the
file byte for byte. `machine` describes where the figures were taken (the machine is shared, so
the load average goes with them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fairviz.atomic import write_text  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"


def update_section(name: str, body: str, path: Path = RESULTS) -> Path:
    """Put ``body`` between the markers of section ``name`` in ``path`` (atomic write).

    Creates the file (``# Benchmarks`` heading) or appends the section when it is missing; any
    other text in the file is kept as it is. Returns ``path``.
    """
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    return write_text(path, text)


def publish(name: str, body: str, write: bool = True) -> None:
    """Print a benchmark's markdown ``body`` and, when ``write``, store it as section ``name``."""
    print(body)
    if write:
        print(f"updated {update_section(name, body)}", file=sys.stderr)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=10).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count()


def machine() -> str:
    """CPU model, cores, Python and numpy versions, load average and the UTC date, in one line."""
    try:
        import numpy as np

        numpy = f"numpy {np.__version__}"
    except ImportError:  # pragma: no cover
        numpy = "no numpy"
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{_cpu_model()}, {_cores()} CPU cores visible, Python {platform.python_version()}, {numpy}, "
            f"load average (1/5/15 min) {load}, {date}")
