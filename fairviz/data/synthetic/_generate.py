"""The generator: latents, labels and the three modalities of n candidates."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fairviz.data.synthetic._audio import _audio_params, _synth_audio
from fairviz.data.synthetic._interviews import (
    _CHUNK,
    _N_RATERS,
    _STREAM_GROUP,
    _STREAM_KGROUP,
    _STREAM_LATENT,
    Interviews,
    _child_rng,
)
from fairviz.data.synthetic._text import MAX_GROUPS, _make_text
from fairviz.data.synthetic._video import _draw_frames, _video_params

DEFAULT_N_SAMPLES = 4000
DEFAULT_FRAMES = 8
DEFAULT_SIZE = 32
DEFAULT_AUDIO_SECONDS = 1.0
SAMPLE_RATE = 16_000
#: Bumped whenever the generator's output changes for the same arguments (part of ``params``, so
#: caches keyed by ``params`` are invalidated).
GENERATOR_VERSION = 1

DEFAULT_STRENGTHS: dict[str, float] = {
    "video_signal": 0.75,
    "video_shortcut": 0.6,
    "audio_signal": 0.75,
    "audio_shortcut": 0.6,
    "text_signal": 0.75,
    "text_shortcut": 0.6,
    "rater_noise": 0.1,
}


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_shares(group_shares: Any) -> np.ndarray | None:
    """None, or the k group shares as float64 normalised to sum 1 (2 <= k <= MAX_GROUPS)."""
    if group_shares is None:
        return None
    try:
        shares = np.asarray(group_shares, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"group_shares must be a list of numbers, got {group_shares!r}") from None
    if shares.ndim != 1 or not 2 <= len(shares) <= MAX_GROUPS:
        raise ValueError(f"group_shares must list 2 to {MAX_GROUPS} group shares, got {group_shares!r}")
    if not (np.isfinite(shares).all() and (shares > 0).all()):
        raise ValueError(f"group_shares must be positive numbers (every group must exist), got {group_shares!r}")
    return shares / shares.sum()


def make_synthetic(
    n_samples: int = DEFAULT_N_SAMPLES,
    *,
    seed: int = 0,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    audio_seconds: float = DEFAULT_AUDIO_SECONDS,
    group_shares: Sequence[float] | None = None,
    **strengths: float,
) -> Interviews:
    """Generate ``n_samples`` synthetic interview candidates.

    Args:
        n_samples: number of candidates (>= 2).
        seed: non-negative integer; the same seed gives byte-identical output.
        frames: video frames per candidate (T >= 1).
        size: frame height = width in pixels (>= 16; even sizes keep exported H.264 happy).
        audio_seconds: audio length in seconds (> 0); the clip's frames span the same time.
        group_shares: None for the binary attribute (balanced pairs), or the expected shares of
            k = 2..8 groups (positive, normalised to sum 1): each candidate draws its group
            independently, and group g's proxies sit at 2g/(k-1) - 1 on the same axis the
            binary attribute uses (-1 / +1), so group k-1 is the privileged end.
        **strengths: any of ``DEFAULT_STRENGTHS`` (see the module docstring's table), in [0, 1].

    Returns:
        :class:`Interviews` with video (n, frames, size, size, 3) uint8, audio
        (n, round(audio_seconds * 16000)) float32, transcripts, labels Y, groups S, latent q.
    """
    n = _check_int("n_samples", n_samples, 2)
    seed = _check_int("seed", seed, 0)
    frames = _check_int("frames", frames, 1)
    size = _check_int("size", size, 16)
    audio_seconds = _check_seconds(audio_seconds)
    st = _check_strengths(strengths)
    shares = _check_shares(group_shares)

    group = _draw_groups(seed, n, shares)
    n_groups = 2 if shares is None else len(shares)
    pos = group / (n_groups - 1)  # proxy position in [0, 1]: the binary S for two groups
    quality, label = _draw_labels(seed, n, st["rater_noise"])
    video = np.empty((n, frames, size, size, 3), dtype=np.uint8)
    for i in range(n):
        p = _video_params(seed, i, float(quality[i]), float(pos[i]), st)
        video[i] = _draw_frames(p, frames, size, audio_seconds)
    audio = _draw_audio(seed, quality, pos, st, audio_seconds)
    text = [_make_text(seed, i, float(quality[i]), int(group[i]), st, n_groups) for i in range(n)]

    params: dict[str, Any] = {
        "source": "synthetic", "version": GENERATOR_VERSION, "n_samples": n, "seed": seed, "frames": frames,
        "size": size, "audio_seconds": audio_seconds, "sample_rate": SAMPLE_RATE, **st,
    }
    if shares is not None:
        params["group_shares"] = [float(v) for v in shares]
    return Interviews(video=video, audio=audio, sample_rate=SAMPLE_RATE, text=text, label=label, group=group,
                      quality=quality, ids=[f"syn{seed}-{i:05d}" for i in range(n)], params=params)


def _check_seconds(audio_seconds: Any) -> float:
    try:
        audio_seconds = float(audio_seconds)
    except (TypeError, ValueError):
        raise ValueError(f"audio_seconds must be a number, got {audio_seconds!r}") from None
    if not (math.isfinite(audio_seconds) and 0.05 <= audio_seconds <= 60.0):
        raise ValueError(f"audio_seconds must be between 0.05 and 60, got {audio_seconds}")
    return audio_seconds


def _check_strengths(strengths: dict[str, Any]) -> dict[str, float]:
    """``DEFAULT_STRENGTHS`` updated with ``strengths``, each checked to be a number in [0, 1]."""
    unknown = sorted(set(strengths) - set(DEFAULT_STRENGTHS))
    if unknown:
        raise ValueError(f"unknown strength parameter(s) {unknown}; known: {sorted(DEFAULT_STRENGTHS)}")
    st = dict(DEFAULT_STRENGTHS)
    for key, value in strengths.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number in [0, 1], got {value!r}") from None
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"{key} must be in [0, 1], got {value}")
        st[key] = value
    return st


def _draw_groups(seed: int, n: int, shares: np.ndarray | None) -> np.ndarray:
    """int64 (n,) groups: balanced pairs (one of each group per pair, in a seeded order), or one
    draw per candidate from ``shares`` (k,)."""
    group = np.empty(n, dtype=np.int64)
    if shares is None:
        for k in range((n + 1) // 2):
            first = int(_child_rng(seed, _STREAM_GROUP, k).integers(2))
            group[2 * k] = first
            if 2 * k + 1 < n:
                group[2 * k + 1] = 1 - first
    else:
        cum = np.cumsum(shares)
        for i in range(n):
            u = _child_rng(seed, _STREAM_KGROUP, i).random()
            group[i] = min(int(np.searchsorted(cum, u, side="right")), len(shares) - 1)
    return group


def _draw_labels(seed: int, n: int, rater_noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Competence q (n,) ~ N(0, 1) and the label Y (n,) in [0, 1]: the mean of ``_N_RATERS``
    clipped rater scores 0.5 + 0.18 q + noise."""
    quality = np.empty(n, dtype=np.float64)
    rater_noise = np.empty((n, _N_RATERS), dtype=np.float64)
    for i in range(n):
        rng = _child_rng(seed, _STREAM_LATENT, i)
        quality[i] = rng.standard_normal()
        rater_noise[i] = rng.standard_normal(_N_RATERS)
    raters = np.clip(0.5 + 0.18 * quality[:, None] + rater_noise_std * rater_noise, 0.0, 1.0)
    return quality, raters.mean(axis=1)


def _draw_audio(seed: int, quality: np.ndarray, pos: np.ndarray, st: dict[str, float],
                audio_seconds: float) -> np.ndarray:
    """float32 (n, round(audio_seconds * SAMPLE_RATE)) waveforms, synthesised in chunks."""
    n = len(quality)
    n_audio = int(round(audio_seconds * SAMPLE_RATE))
    n_syll = int(math.ceil(audio_seconds * 6.0)) + 2
    audio = np.empty((n, n_audio), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        ps = [
            _audio_params(seed, i, float(quality[i]), float(pos[i]), st, n_syll)
            for i in range(start, stop)
        ]
        audio[start:stop] = _synth_audio(ps, n_audio, SAMPLE_RATE)
    return audio
