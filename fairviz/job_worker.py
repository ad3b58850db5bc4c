"""The process a training job of the app runs in: ``python -m fairviz.job_worker MODELS_ROOT BASE_NAME``,
and `run_in_process`, the parent's side of it.

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
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from fairviz.jsonsafe import dumps
from fairviz.runs import save_unique

PREFIX = "@fairviz-job "


class WorkerCancelled(Exception):
    """The worker stopped because its job was cancelled."""


def _send(message: dict) -> None:
    sys.stdout.write(PREFIX + dumps(message) + "\n")  # numpy / torch scalars, NaN as null
    sys.stdout.flush()


def _watch_stdin(cancel: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            break
    cancel.set()  # "cancel", or stdin closed: nobody is waiting for this run any more


#: Seconds a cancelled worker gets to stop at its next step before it is killed.
CANCEL_GRACE_S = 20.0


def run_in_process(config, root: Path, base: str, cancel: threading.Event, on_progress) -> dict:
    """Train `config` (a `TrainConfig`) in a worker process and save it under `root` (a free name
    made from `base`); relay every progress event to `on_progress(event)`. Returns ``{"name",
    "path", "metrics"}`` of the saved run; raises `WorkerCancelled` once `cancel` is set (the worker
    stops at its next step, or is killed after `CANCEL_GRACE_S` s), RuntimeError on a failure.
    """
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fairviz.job_worker", str(root), base],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file, text=True, bufsize=1, env=env,
        )
        proc.stdin.write(json.dumps({"config": config.to_dict()}) + "\n")
        proc.stdin.flush()

        def watch_cancel():
            while proc.poll() is None:
                if cancel.wait(0.2):
                    try:
                        proc.stdin.write("cancel\n")
                        proc.stdin.flush()
                    except (BrokenPipeError, OSError, ValueError):
                        pass
                    try:
                        proc.wait(CANCEL_GRACE_S)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    return

        threading.Thread(target=watch_cancel, daemon=True).start()
        result: dict = {}
        for line in proc.stdout:
            if not line.startswith(PREFIX):
                continue
            msg = json.loads(line[len(PREFIX):])
            if "progress" in msg:
                on_progress(msg["progress"])
            else:
                result = msg
        proc.wait()
        try:
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if "saved" in result:
            return result["saved"]
        if "cancelled" in result or cancel.is_set():
            raise WorkerCancelled()
        if "error" in result:
            raise RuntimeError(result["error"])
        err_file.seek(0)
        tail = err_file.read()[-2000:].strip().splitlines()
        raise RuntimeError(f"the training process ended (exit code {proc.returncode}) without a result"
                           + (f": {tail[-1]}" if tail else ""))


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
    try:  # imports torch: the worker process trains, the parent that imports this module does not
        from fairviz.train import TrainConfig, TrainingCancelled, train  # noqa: PLC0415
    except ImportError as err:
        _send({"error": f"ImportError: {err}"})
        return 1
    try:
        run = train(TrainConfig.from_dict(config), progress=lambda ev: _send({"progress": ev}), cancel=cancel)
        if cancel.is_set():
            raise TrainingCancelled("training cancelled")
        path = save_unique(run, root, base)
        _send({"saved": {"name": path.name, "path": str(path), "metrics": run.metrics}})
    except Exception as exc:  # noqa: BLE001 - reported to the app, which shows it
        if isinstance(exc, TrainingCancelled) or cancel.is_set():
            _send({"cancelled": str(exc) or "cancelled"})
            return 0
        _send({"error": f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
