"""Audio: MFCC sequences with a fixed number of time steps (torchaudio, imported on use)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fairviz.data.features._featureset import Progress

#: Audio sample rate every modality works at (Hz).
SAMPLE_RATE = 16_000
#: Default number of MFCC coefficients per time step.
DEFAULT_N_MFCC = 20
#: Default number of MFCC time steps per clip (the clip is averaged into this many stretches).
DEFAULT_MFCC_STEPS = 50
# MFCC analysis: 25 ms windows every 10 ms at 16 kHz, 40 mel bands.
_N_FFT = 400
_HOP = 160
_N_MELS = 40

_MFCC_CACHE: dict[int, Any] = {}


def _mfcc_transform(n_mfcc: int):
    if n_mfcc not in _MFCC_CACHE:
        import torchaudio  # noqa: PLC0415 - heavy; a cached feature set loads without it

        _MFCC_CACHE[n_mfcc] = torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": _N_FFT, "hop_length": _HOP, "n_mels": _N_MELS,
                       "f_min": 0.0, "f_max": SAMPLE_RATE / 2},
        )
    return _MFCC_CACHE[n_mfcc]


def compute_mfcc(
    audio: np.ndarray | Sequence[np.ndarray],
    sample_rate: int = SAMPLE_RATE,
    *,
    n_mfcc: int = DEFAULT_N_MFCC,
    steps: int = DEFAULT_MFCC_STEPS,
    chunk: int = 128,
    progress: Progress | None = None,
) -> np.ndarray:
    """MFCC sequences with a fixed number of time steps.

    Args:
        audio: float waveforms in [-1, 1]: a 2-D array ``(n, samples)`` or a list of 1-D arrays
            of any lengths (a clip shorter than one 25 ms window is zero-padded).
        sample_rate: Hz; resampled to 16 kHz when different.
        n_mfcc: coefficients per step.
        steps: time steps per clip; the MFCC frames (one per 10 ms) are averaged over ``steps``
            equal stretches of the clip (repeated when the clip has fewer frames).
        chunk: clips per batch of computation (memory only; results do not depend on it,
            each clip's dB scale is relative to its own peak).
        progress: ``progress(done_clips, n, "audio")``.

    Returns:
        float32 ``(n, steps, n_mfcc)``.
    """
    import torch  # noqa: PLC0415 - heavy; a cached feature set loads without it

    if n_mfcc < 1 or steps < 1:
        raise ValueError(f"n_mfcc and steps must be >= 1; got {n_mfcc}, {steps}")
    if n_mfcc > _N_MELS:
        raise ValueError(f"n_mfcc must be <= {_N_MELS} (the number of mel bands); got {n_mfcc}")
    clips = list(audio) if not isinstance(audio, np.ndarray) or audio.ndim != 2 else audio
    n = len(clips)
    out = np.empty((n, steps, n_mfcc), dtype=np.float32)
    transform = _mfcc_transform(n_mfcc)
    equal = isinstance(clips, np.ndarray)
    i = 0
    while i < n:
        j = min(n, i + chunk) if equal else i + 1
        if equal:
            wave = torch.from_numpy(np.ascontiguousarray(clips[i:j], dtype=np.float32))
        else:
            wave = torch.from_numpy(np.asarray(clips[i], dtype=np.float32).reshape(1, -1).copy())
        if sample_rate != SAMPLE_RATE:
            import torchaudio  # noqa: PLC0415 - heavy, as above

            wave = torchaudio.functional.resample(wave, sample_rate, SAMPLE_RATE)
        if wave.shape[-1] < _N_FFT:
            wave = torch.nn.functional.pad(wave, (0, _N_FFT - wave.shape[-1]))
        with torch.no_grad():
            # (clips, 1, samples) -> (clips, 1, n_mfcc, frames): the dB floor is per clip.
            coeffs = transform(wave.unsqueeze(1))[:, 0]
            pooled = torch.nn.functional.adaptive_avg_pool1d(coeffs, steps)  # (clips, n_mfcc, steps)
        out[i:j] = pooled.transpose(1, 2).numpy()
        i = j
        if progress is not None:
            progress(i, n, "audio")
    return out
