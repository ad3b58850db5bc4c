"""Audio: a voiced waveform (harmonic source × syllable envelope); rhythm carries q, pitch S."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from fairviz.data.synthetic._interviews import _STREAM_AUDIO, _child_rng, _mix, _sigmoid

_TABLE_SIZE = 2048
_N_HARMONICS = 12


@functools.lru_cache(maxsize=1)
def _wavetables() -> tuple[np.ndarray, np.ndarray]:
    """One period of a dark (1/k^1.8) and a bright (1/k^0.8) harmonic source, equal RMS."""
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE * 2.0 * np.pi
    k = np.arange(1, _N_HARMONICS + 1)[:, None]
    tables = []
    for rolloff in (1.8, 0.8):
        table = (np.sin(k * phase[None, :]) / k**rolloff).sum(axis=0)
        tables.append((table / np.sqrt(np.mean(table**2)) * 0.34).astype(np.float32))
    return tables[0], tables[1]


def _audio_params(seed: int, i: int, q: float, s: float, st: dict[str, float], n_syll: int) -> dict[str, Any]:
    rng = _child_rng(seed, _STREAM_AUDIO, i)
    e_sig, e_prox = rng.standard_normal(2)
    u = rng.random(6)
    fluency = float(_sigmoid(1.6 * _mix(st["audio_signal"], q, e_sig)))
    pitch = float(_mix(st["audio_shortcut"], 2.0 * s - 1.0, e_prox))
    pause_p = 0.5 * (1.0 - fluency)
    return {
        "f0": 165.0 * math.exp(-0.3 * pitch),  # privileged proxy -> lower voice
        "bright": float(_sigmoid(-1.6 * pitch)),  # ... and darker timbre
        "intonation": 0.02 + 0.10 * fluency,  # relative f0 swing
        "into_rate": 0.6 + 0.8 * u[0],
        "into_phase": u[1] * 2.0 * math.pi,
        "rate": 2.0 + 3.5 * fluency,  # syllables per second
        "gain": 0.2 + 0.6 * fluency,
        "syll_phase": u[2],
        "voiced": (rng.random(n_syll) >= pause_p),
        "noise": 0.001 + 0.003 * u[3],
        "rng": rng,
    }


def _synth_audio(ps: list[dict[str, Any]], n_audio: int, sr: int) -> np.ndarray:
    """Vectorised synthesis of a chunk of candidates -> float32 (len(ps), n_audio)."""
    t = (np.arange(n_audio, dtype=np.float64) / sr)[None, :]
    col = lambda key: np.array([p[key] for p in ps], dtype=np.float64)[:, None]  # noqa: E731
    # f0(t) = f0 * (1 + A sin(w t + phi)); its integral gives the source phase in cycles.
    f0, amp, w, phi = col("f0"), col("intonation"), 2.0 * np.pi * col("into_rate"), col("into_phase")
    cycles = f0 * t + f0 * amp / w * (np.cos(phi) - np.cos(w * t + phi))
    idx = ((cycles - np.floor(cycles)) * _TABLE_SIZE).astype(np.int32)
    np.minimum(idx, _TABLE_SIZE - 1, out=idx)
    dark, bright = _wavetables()
    b = col("bright").astype(np.float32)
    tables = (1.0 - b) * dark[None, :] + b * bright[None, :]  # (c, table) per-candidate timbre
    source = np.take_along_axis(tables, idx, axis=1)
    # syllables: raised-cosine bumps at `rate` per second, some dropped as pauses
    pos = (col("rate") * t + col("syll_phase")).astype(np.float32)
    syll = pos.astype(np.int32)  # pos >= 0
    voiced = np.stack([p["voiced"] for p in ps])  # (c, n_syll)
    gate = np.take_along_axis(voiced, np.minimum(syll, voiced.shape[1] - 1), axis=1)
    env = np.float32(0.5) - np.float32(0.5) * np.cos(np.float32(2.0 * np.pi) * pos)
    env *= gate
    y = col("gain").astype(np.float32) * env * source
    for k, p in enumerate(ps):
        y[k] += p["rng"].standard_normal(n_audio, dtype=np.float32) * np.float32(p["noise"])
    np.clip(y, -1.0, 1.0, out=y)
    return y
