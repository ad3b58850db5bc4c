"""Export candidates as real files (mp4 with audio, wav, transcript, manifest.csv)."""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from fairviz.atomic import TMP_PREFIX, write_text
from fairviz.data.synthetic._generate import _check_int
from fairviz.data.synthetic._interviews import Interviews


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise FileNotFoundError(
            "ffmpeg was not found on PATH; it is needed to add the audio track to the exported "
            "videos. Install it (Debian/Ubuntu: `sudo apt-get install ffmpeg`, or `make apt`)."
        )
    return path


@functools.lru_cache(maxsize=4)
def _has_libx264(ffmpeg: str) -> bool:
    try:
        out = subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-encoders"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return " libx264 " in out


def _public(path: Path) -> None:
    """Make a finished file world-readable (0644) like ffmpeg's output; temp files start 0600."""
    os.chmod(path, 0o644)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())
        _public(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_mp4(path: Path, frames_rgb: np.ndarray, wav: Path, fps: float, scale: int, ffmpeg: str) -> None:
    import cv2  # noqa: PLC0415 - OpenCV is slow to import; only exporting needs it

    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        silent = tmpdir / "silent.mp4"
        h, w = frames_rgb.shape[1:3]
        out_wh = (w * scale, h * scale)
        writer = cv2.VideoWriter(str(silent), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), out_wh)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV could not open a video writer for {silent}")
        try:
            for frame in frames_rgb:
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                if scale != 1:
                    bgr = cv2.resize(bgr, out_wh, interpolation=cv2.INTER_NEAREST)
                writer.write(bgr)
        finally:
            writer.release()
        muxed = tmpdir / "muxed.mp4"
        if _has_libx264(ffmpeg):
            video_args = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "veryfast"]
        else:
            video_args = ["-c:v", "copy"]
        cmd = [
            ffmpeg, "-y", "-loglevel", "error", "-i", str(silent), "-i", str(wav),
            "-map", "0:v:0", "-map", "1:a:0", *video_args, "-c:a", "aac", "-b:a", "96k",
            "-movflags", "+faststart", str(muxed),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if res.returncode != 0 or not muxed.exists():
            raise RuntimeError(f"ffmpeg failed to mux {path.name}: {res.stderr.strip()[-500:]}")
        os.replace(muxed, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def export_examples(
    interviews: Interviews,
    out_dir: str | os.PathLike,
    n: int = 3,
    *,
    fps: float | None = None,
    scale: int = 4,
) -> "pandas.DataFrame":  # noqa: F821 - pandas is imported on use
    """Write the first ``n`` candidates as real files a person (and the manifest loader) can open.

    For each candidate ``<id>``: ``<id>.mp4`` (H.264/yuv420p video + AAC audio when ffmpeg has
    libx264, so browsers play it; otherwise MPEG-4 Part 2 video + AAC), ``<id>.wav`` (16-bit PCM
    mono) and ``<id>.txt`` (the transcript, UTF-8). Each file is written to a temporary name and
    renamed, so a reader never sees a half-written file.

    Args:
        interviews: the data (any :class:`Interviews`).
        out_dir: folder to write into (created if missing; existing files of the same name are
            replaced).
        n: number of candidates (the first ``n``; ``n`` larger than the data means all of them).
        fps: video frame rate; default ``frames / audio_seconds`` so video and audio have the same
            duration.
        scale: integer up-scaling of the frames (nearest neighbour) so tiny frames stay visible
            and survive video compression; 1 keeps the original size.

    Returns:
        pandas.DataFrame with columns ``video, label, group, transcript, wav, txt``, one row per
        candidate; the paths are file names relative to ``out_dir`` (the manifest's own folder).
        The same table is written to ``out_dir/manifest.csv``.

    Raises:
        FileNotFoundError: ffmpeg is not installed.
        ValueError: bad ``n``, ``fps`` or ``scale``.
    """
    import pandas as pd  # noqa: PLC0415 - keeps `import fairviz.data` light (numpy only)

    n = _check_int("n", n, 1)
    scale = _check_int("scale", scale, 1)
    count = min(n, len(interviews))
    frames = interviews.video.shape[1]
    seconds = interviews.audio.shape[1] / float(interviews.sample_rate)
    if fps is None:
        fps = frames / seconds if seconds > 0 else 8.0
    fps = float(fps)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    ffmpeg = _ffmpeg()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [_write_candidate(interviews, i, out, fps, scale, ffmpeg) for i in range(count)]
    manifest = pd.DataFrame(rows, columns=["video", "label", "group", "transcript", "wav", "txt"])
    _public(write_text(out / "manifest.csv", manifest.to_csv(index=False)))
    return manifest


def _write_candidate(interviews: Interviews, i: int, out: Path, fps: float, scale: int, ffmpeg: str) -> dict:
    """Write candidate ``i`` as ``<id>.wav``, ``<id>.txt`` and ``<id>.mp4`` into ``out``; its manifest row."""
    ident = interviews.ids[i]
    wav, txt, mp4 = out / f"{ident}.wav", out / f"{ident}.txt", out / f"{ident}.mp4"
    _write_wav(wav, interviews.audio[i], interviews.sample_rate)
    _public(write_text(txt, interviews.text[i] + "\n"))
    _write_mp4(mp4, interviews.video[i], wav, fps, scale, ffmpeg)
    return {
        "video": mp4.name,
        "label": float(interviews.label[i]),
        "group": int(interviews.group[i]),
        "transcript": interviews.text[i],
        "wav": wav.name,
        "txt": txt.name,
    }
