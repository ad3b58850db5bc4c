"""Reading one interview video: its frames (OpenCV) and its audio track (ffmpeg).

- `read_frames(path, frames, size, sampling)`: uint8 ``(frames, size, size, 3)`` RGB;
- `read_audio(path, sample_rate)`: float32 mono in [-1, 1];
- `check_video_options`, `check_video_shape`: clear errors for a bad frames / size request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from fairviz.data.features import SAMPLE_RATE

#: How frames are picked from a clip: "uniform" spreads them over the whole clip (the centres of
#: equal stretches); "consecutive" takes a run of neighbouring frames from its middle.
FRAME_SAMPLINGS = ("uniform", "consecutive")


class VideoReadError(ValueError):
    """A video that cannot be read (missing file, no decodable frames, ffmpeg failure)."""


def check_video_options(frames: int | None, size: int | None, sampling: str = "uniform") -> None:
    """ValueError naming the bad value when frames / size are not whole numbers >= 1 (None is
    allowed: the default) or ``sampling`` is not one of ``FRAME_SAMPLINGS``."""
    for name, value, what in (("frames", frames, "frames per clip"), ("size", size, "frame side in pixels")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1 ({what}); got {value!r}")
    if sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {list(FRAME_SAMPLINGS)}; got {sampling!r}")


def check_video_shape(shape, frames: int | None, size: int | None) -> None:
    """ValueError when video features of ``shape`` ``(n, T, H, W, 3)`` are not ``frames`` frames
    of ``size × size`` (None: any)."""
    _, t, h, w, _ = shape
    if (frames is not None and t != frames) or (size is not None and (h, w) != (size, size)):
        want = f"{frames or t} frames of {size or h}x{size or w}"
        raise ValueError(
            f"the features hold {t} frames of {h}x{w} per clip, but {want} were asked for; "
            f"build features at that resolution or use --frames {t} --size {h}"
        )


def read_frames(path: str | os.PathLike, frames: int, size: int, sampling: str = "uniform") -> np.ndarray:
    """``frames`` RGB frames of the clip, resized (no crop) to ``size × size``.

    ``sampling="uniform"``: frame ``k`` of ``frames`` is the clip's frame at the centre of the
    k-th of ``frames`` equal stretches; ``"consecutive"``: ``frames`` consecutive frames from the
    middle of the clip. Returns uint8 ``(frames, size, size, 3)``. Raises VideoReadError when
    the file is missing, has no decodable frame, or has fewer frames than ``frames``.
    """
    import cv2  # noqa: PLC0415 - OpenCV is slow to import; only decoding needs it

    path = Path(path)
    check_video_options(frames, size, sampling)
    if not path.is_file():
        raise VideoReadError("file not found")
    count = 0
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError("OpenCV cannot open it")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count >= frames:
            wanted = frame_indices(count, frames, sampling)
            want = set(wanted.tolist())
            got: dict[int, np.ndarray] = {}
            for i in range(int(wanted.max()) + 1):
                if not cap.grab():
                    break
                if i not in want:
                    continue
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    got[i] = _resize_rgb(frame, size)
            if all(int(i) in got for i in wanted):
                return np.stack([got[int(i)] for i in wanted])
    finally:
        cap.release()
    # Frame count unknown, understated or overstated: decode everything (small copies) and pick.
    cap = cv2.VideoCapture(str(path))
    small = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            small.append(_resize_rgb(frame, size))
    finally:
        cap.release()
    if not small:
        raise VideoReadError("no decodable video frames")
    if len(small) < frames:
        raise VideoReadError(f"the clip has {len(small)} frames, fewer than the {frames} asked for; "
                             f"use {len(small)} frames or fewer")
    return np.stack([small[i] for i in frame_indices(len(small), frames, sampling)])


def frame_indices(count: int, frames: int, sampling: str = "uniform") -> np.ndarray:
    """Which of a clip's ``count`` frames are kept (``count >= frames``), int64 ``(frames,)``."""
    if sampling == "consecutive":
        return (count - frames) // 2 + np.arange(frames, dtype=np.int64)
    return np.minimum(((np.arange(frames) + 0.5) * count / frames).astype(np.int64), count - 1)


def _resize_rgb(frame_bgr: np.ndarray, size: int) -> np.ndarray:
    import cv2  # noqa: PLC0415 - OpenCV is slow to import; only decoding needs it

    if frame_bgr.ndim == 2:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    small = cv2.resize(frame_bgr[..., :3], (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def ffmpeg_binary() -> str:
    """The ``ffmpeg`` executable ($FAIRVIZ_FFMPEG or the one on PATH)."""
    exe = os.environ.get("FAIRVIZ_FFMPEG") or shutil.which("ffmpeg")
    if not exe:
        raise ValueError("ffmpeg was not found on PATH; install it (e.g. `apt install ffmpeg`) "
                         "or set FAIRVIZ_FFMPEG to its path")
    return exe


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *,
               timeout: float = 300.0) -> np.ndarray:
    """The first audio stream of a media file as float32 mono in [-1, 1] at ``sample_rate``.

    ``ffmpeg`` writes signed 16-bit little-endian PCM to its stdout (no temporary files). A file
    without an audio stream gives an empty array. Raises VideoReadError when ffmpeg fails.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoReadError("file not found")
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-map", "0:a:0?", "-ac", "1", "-ar", str(int(sample_rate)),
           "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise VideoReadError(f"ffmpeg took longer than {timeout:.0f} s") from err
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        if "does not contain any stream" in message:
            return np.zeros(0, dtype=np.float32)
        raise VideoReadError(f"ffmpeg could not decode the audio: {message.splitlines()[-1:] or '?'}")
    pcm = np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0)
