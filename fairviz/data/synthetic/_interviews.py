"""The Interviews container and the generator's seeded random streams."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fairviz.data._checks import row_indices

# Child-generator streams (first element of the spawn key).
_STREAM_LATENT, _STREAM_VIDEO, _STREAM_AUDIO, _STREAM_TEXT, _STREAM_GROUP, _STREAM_KGROUP = range(6)
_N_RATERS = 3
_CHUNK = 64  # candidates per vectorised audio chunk (small arrays stay in cache)


@dataclass
class Interviews:
    """A set of interview recordings with labels.

    Attributes (n = number of candidates):
        video: uint8 (n, T, H, W, 3), RGB frames.
        audio: float32 (n, n_audio) in [-1, 1], mono at ``sample_rate`` Hz.
        sample_rate: audio sample rate in Hz (16000).
        text: list of n transcripts.
        label: float64 (n,) true label Y in [0, 1].
        group: int64 (n,) sensitive attribute S in {0, 1}; 1 = privileged (with
            ``group_shares``: S in {0, ..., k-1}, k-1 = the most privileged proxy end).
        quality: float64 (n,) latent competence q (standard normal).
        ids: list of n unique string ids (safe as file names).
        params: the generator arguments (JSON-serialisable).
    """

    video: np.ndarray
    audio: np.ndarray
    sample_rate: int
    text: list[str]
    label: np.ndarray
    group: np.ndarray
    quality: np.ndarray
    ids: list[str]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.label)
        lengths = {
            "video": len(self.video),
            "audio": len(self.audio),
            "text": len(self.text),
            "group": len(self.group),
            "quality": len(self.quality),
            "ids": len(self.ids),
        }
        bad = {k: v for k, v in lengths.items() if v != n}
        if bad:
            raise ValueError(f"Interviews: {len(self.label)} labels but lengths {bad}")

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "Interviews":
        """The candidates at ``idx`` (integer indices or a boolean mask), in that order."""
        idx = row_indices(idx, len(self))
        return Interviews(
            video=self.video[idx],
            audio=self.audio[idx],
            sample_rate=self.sample_rate,
            text=[self.text[i] for i in idx],
            label=self.label[idx],
            group=self.group[idx],
            quality=self.quality[idx],
            ids=[self.ids[i] for i in idx],
            params=dict(self.params),
        )


def _child_rng(seed: int, stream: int, i: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, i)))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _mix(strength: float, target: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``strength * target + sqrt(1 - strength^2) * noise``: corr(result, target) = strength
    when target and noise are independent with unit variance."""
    return strength * target + math.sqrt(max(0.0, 1.0 - strength * strength)) * noise
