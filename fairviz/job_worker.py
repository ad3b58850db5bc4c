"""The process a training job of the app runs in: ``python -m fairviz.job_worker MODELS_ROOT BASE_NAME``.

`fairviz.jobs.JobRegistry` starts one per run, so training uses its own interpreter (its own GIL
and torch thread pool, like ``python -m fairviz train``) instead of a thread of the Streamlit
server, and a run trained in the app gives the same numbers as the same config on the CLI.

Protocol, one JSON object per line:

- stdin, first line: ``{"config": TrainConfig.to_dict()}``; any later line ``cancel`` (or the
  end of stdin: the app went away) stops the training at its next step;
- stdout, lines starting with ``PREFIX``: ``{"progress": event}`` for every training event, then
  exactly one of ``{"saved": {"name", "path", "metrics"}}``, ``{"cancelled": message}`` or
  ``{"error": "Type: message"}``. Other output (library warnings) is ignored by the reader.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path

PREFIX = "@fairviz-job "


def _plain(obj):
    """A JSON-safe copy of a progress event (numpy / torch scalars to floats, NaN to None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _send(message: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(_plain(message)) + "\n")
    sys.stdout.flush()


def _watch_stdin(cancel: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            break
    cancel.set()  # "cancel", or stdin closed: nobody is waiting for this run any more


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m fairviz.job_worker MODELS_ROOT BASE_NAME", file=sys.stderr)
        return 2
    root, base = Path(argv[0]), argv[1]
    try:
        config = json.loads(sys.stdin.readline())["config"]
    except (ValueError, KeyError, TypeError) as err:
        _send({"error": f"ValueError: no config on stdin ({err})"})
        return 2
    cancel = threading.Event()
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
    try:
        from fairviz.jobs import save_unique
        from fairviz.train import TrainConfig, TrainingCancelled, train

        run = train(TrainConfig.from_dict(config), progress=lambda ev: _send({"progress": ev}), cancel=cancel)
        if cancel.is_set():
            raise TrainingCancelled("training cancelled")
        path = save_unique(run, root, base)
        _send({"saved": {"name": path.name, "path": str(path), "metrics": run.metrics}})
    except Exception as exc:  # noqa: BLE001 - reported to the app, which shows it
        if type(exc).__name__ == "TrainingCancelled" or cancel.is_set():
            _send({"cancelled": str(exc) or "cancelled"})
            return 0
        _send({"error": f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
