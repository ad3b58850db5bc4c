"""Synthetic video interviews: the built-in dataset on which the fairness problem really appears.

Each candidate ``i`` has

- a latent competence ``q_i ~ N(0, 1)``;
- a binary sensitive attribute ``S_i`` in {0, 1} (1 = privileged), exactly balanced: candidates
  come in pairs ``(2k, 2k+1)`` holding one of each group, in a random order;
- a true label ``Y_i`` in [0, 1]: the mean of three rater scores
  ``clip(0.5 + 0.18 * q_i + N(0, rater_noise), 0, 1)`` (the paper's labels are the mean of three
  expert raters).

``q`` is drawn independently of ``S``, so **the true label is independent of S**. Every input
modality nevertheless carries a *proxy* of S (a shortcut) next to its signal of ``q``. A model
trained on biased labels (``fairviz.data.bias``) can therefore learn to use the shortcut and become
unfair, while a fair model can stay accurate on the true ``Y``.

Modalities (per candidate; each has its own latent signal and proxy with independent noise):

=========  ===================================================  ==================================
modality   carries q (signal)                                   carries S (shortcut)
=========  ===================================================  ==================================
video      a drawn talking head: mouth opening amplitude,       hair length/colour, clothing and
           talking speed, smile, head-nod amplitude             background hue
           (motion / expressiveness)
audio      syllable rate, loudness, fewer pauses, livelier      pitch (f0) and timbre (harmonic
           intonation (rhythm / energy)                         roll-off) of the voiced source
text       answer quality: vague -> concrete -> specific        one "background" sentence from a
           examples with measured results                       group-linked phrase bank
=========  ===================================================  ==================================

Strength parameters (keyword arguments of :func:`make_synthetic`; all in [0, 1]). For a modality
``m`` the signal latent is ``signal_m * q + sqrt(1 - signal_m**2) * eps`` (correlation
``signal_m`` with q) and the proxy latent is ``shortcut_m * (2S - 1) + sqrt(1 - shortcut_m**2) *
eps'`` (correlation ``shortcut_m`` with ``2S - 1``); for text the proxy is the probability that the
background sentence comes from the candidate's group-linked bank.

==================  =======  ==========================================================
parameter           default  meaning
==================  =======  ==========================================================
``video_signal``    0.75     corr(video expressiveness latent, q)
``video_shortcut``  0.6      corr(video appearance latent, 2S-1)
``audio_signal``    0.75     corr(audio fluency latent, q)
``audio_shortcut``  0.6      corr(log-pitch latent, 2S-1)
``text_signal``     0.75     corr(answer-quality latent, q)
``text_shortcut``   0.6      P(background sentence is from the group-linked bank)
``rater_noise``     0.1      std of each rater's noise (label units); Y = mean of 3
==================  =======  ==========================================================

Default size (module constants): ``DEFAULT_N_SAMPLES = 4000`` candidates, ``DEFAULT_FRAMES = 8``
RGB frames of ``DEFAULT_SIZE = 32`` x 32 pixels, ``DEFAULT_AUDIO_SECONDS = 1.0`` s of 16 kHz mono
audio — about 100 MB of video and 256 MB of audio in memory, generated in about 5 s of CPU time
on one core (single-threaded; see ``bench/RESULTS.md``). 4000 candidates leave a test split of
about 1200 rows with the default ``balanced_splits`` fractions, so the finite-sample floor of SPDD
stays small.

Determinism: every candidate ``i`` draws from its own child generators
``np.random.SeedSequence(seed, spawn_key=(stream, i))``, so the same seed gives byte-identical
data, and ``make_synthetic(n, seed=s)`` is a prefix of ``make_synthetic(N, seed=s)`` for
``n <= N`` (same other arguments). With an odd ``n`` the last candidate's partner is missing, so
the groups differ by one.

Example check of the design on the default data (the hand-made features of
``tests/test_synthetic.py`` + a ridge regression; a one-off measurement): trained on
rater-biased labels at alpha = 4, the ridge's test PCC on true Y drops from 0.82 to 0.62 and its
SPDD rises from 0.006 to 0.17 (0.11 at alpha = 2, 0.15 at 3), while the same ridge given S as an
explicit input and scored with S set to a constant (a stand-in for a fair model) keeps PCC 0.82
and SPDD 0.006 — the gap the fair methods are meant to close. Sampling bias bites less (ridge
SPDD 0.04 at alpha = 4, PCC 0.80).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fairviz.atomic import TMP_PREFIX

__all__ = [
    "DEFAULT_AUDIO_SECONDS",
    "DEFAULT_FRAMES",
    "DEFAULT_N_SAMPLES",
    "DEFAULT_SIZE",
    "DEFAULT_STRENGTHS",
    "GENERATOR_VERSION",
    "SAMPLE_RATE",
    "Interviews",
    "export_examples",
    "make_synthetic",
]

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

# Child-generator streams (first element of the spawn key).
_STREAM_LATENT, _STREAM_VIDEO, _STREAM_AUDIO, _STREAM_TEXT, _STREAM_GROUP = range(5)
_N_RATERS = 3
_CHUNK = 64  # candidates per vectorised audio chunk (small arrays stay in cache)


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------
@dataclass
class Interviews:
    """A set of interview recordings with labels.

    Attributes (n = number of candidates):
        video: uint8 (n, T, H, W, 3), RGB frames.
        audio: float32 (n, n_audio) in [-1, 1], mono at ``sample_rate`` Hz.
        sample_rate: audio sample rate in Hz (16000).
        text: list of n transcripts.
        label: float64 (n,) true label Y in [0, 1].
        group: int64 (n,) sensitive attribute S in {0, 1}; 1 = privileged.
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
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask of shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"subset indices must be integers or a boolean mask, got {idx.dtype}")
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"subset index out of range for {len(self)} candidates")
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


# --------------------------------------------------------------------------------------------
# Random streams
# --------------------------------------------------------------------------------------------
def _child_rng(seed: int, stream: int, i: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, i)))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _mix(strength: float, target: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``strength * target + sqrt(1 - strength^2) * noise``: corr(result, target) = strength
    when target and noise are independent with unit variance."""
    return strength * target + math.sqrt(max(0.0, 1.0 - strength * strength)) * noise


# --------------------------------------------------------------------------------------------
# Video: a drawn talking head
# --------------------------------------------------------------------------------------------
_SUPERSAMPLE = 2  # draw at 2x and downscale with area averaging (smooth sub-pixel motion)

# Endpoints of the appearance proxy (RGB), interpolated by t = sigmoid(1.6 * proxy).
_BG_LOW, _BG_HIGH = np.array([196.0, 120.0, 150.0]), np.array([80.0, 130.0, 190.0])
_HAIR_LOW, _HAIR_HIGH = np.array([150.0, 95.0, 45.0]), np.array([45.0, 35.0, 30.0])
_CLOTH_LOW, _CLOTH_HIGH = np.array([190.0, 80.0, 110.0]), np.array([50.0, 70.0, 120.0])


def _video_params(seed: int, i: int, q: float, s: int, st: dict[str, float]) -> dict[str, Any]:
    rng = _child_rng(seed, _STREAM_VIDEO, i)
    e_sig, e_prox, *u = rng.standard_normal(2).tolist() + rng.random(12).tolist()
    expr = float(_sigmoid(1.6 * _mix(st["video_signal"], q, e_sig)))  # expressiveness in (0, 1)
    look = float(_sigmoid(1.6 * _mix(st["video_shortcut"], 2.0 * s - 1.0, e_prox)))  # appearance
    skin_base = np.array([224.0, 182.0, 150.0]) * (0.8 + 0.25 * u[0])  # nuisance, S-independent
    return {
        "expr": expr,
        "look": look,
        "bg": _BG_LOW + (_BG_HIGH - _BG_LOW) * look + (u[1] - 0.5) * 40.0,
        "hair": _HAIR_LOW + (_HAIR_HIGH - _HAIR_LOW) * look + (u[2] - 0.5) * 30.0,
        "cloth": _CLOTH_LOW + (_CLOTH_HIGH - _CLOTH_LOW) * look + (u[3] - 0.5) * 50.0,
        "skin": skin_base,
        "hair_len": 1.0 - look,  # 0 = short, 1 = long
        "cx": 0.5 + (u[4] - 0.5) * 0.10,
        "cy": 0.46 + (u[5] - 0.5) * 0.08,
        "scale": 0.92 + 0.16 * u[6],
        "light": 0.85 + 0.3 * u[7],
        # q drives the motion: mouth amplitude, speaking rate, smile, nods.
        "mouth_amp": 0.15 + 0.85 * expr,
        "mouth_rate": 1.2 + 2.5 * expr,  # mouth open/close cycles per second
        "mouth_phase": u[8] * math.pi,
        "smile": expr,
        "nod_amp": 0.005 + 0.05 * expr,  # fraction of the frame height
        "nod_phase": u[9] * 2.0 * math.pi,
        "blink_frame": int(u[10] * 12),  # may be beyond the clip: no blink
        "turn": (u[11] - 0.5) * 0.04,
    }


def _draw_frames(p: dict[str, Any], frames: int, size: int, seconds: float) -> np.ndarray:
    import cv2

    r = size * _SUPERSAMPLE
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    canvas = np.empty((r, r, 3), dtype=np.uint8)
    light = p["light"]

    def col(c: np.ndarray) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.clip(c * light, 0, 255))

    bg, hair, cloth, skin = col(p["bg"]), col(p["hair"]), col(p["cloth"]), col(p["skin"])
    dark = col(np.array([40.0, 30.0, 30.0]))
    lips = col(np.array([170.0, 70.0, 70.0]))
    mouth_in = col(np.array([70.0, 20.0, 25.0]))
    aa, fill = cv2.LINE_AA, -1
    sc = p["scale"] * r
    face_ax = (int(round(0.21 * sc)), int(round(0.27 * sc)))
    hair_ax = (int(round(0.25 * sc)), int(round(0.25 * sc)))
    cloth_ax = (int(0.42 * sc), int(0.22 * sc))
    fringe_ax = (int(0.2 * sc), int(0.09 * sc))
    half, neck = int(round(0.25 * sc)), int(round(0.08 * sc))
    eye_r = max(1, int(round(0.028 * sc)))
    mw = int(round((0.065 + 0.035 * p["smile"]) * sc))  # mouth half-width grows with the smile
    lip_ax = (mw, max(1, int(round(0.012 * sc * (1 + 2 * p["smile"])))))
    for j in range(frames):
        t = (j + 0.5) / frames * seconds
        nod = p["nod_amp"] * r * math.sin(2.0 * math.pi * 0.9 * t + p["nod_phase"])
        cx = p["cx"] * r + p["turn"] * r * math.sin(2.0 * math.pi * 0.4 * t)
        cy = p["cy"] * r + nod
        x = int(round(cx))
        canvas[:] = bg
        # hair; long hair falls behind the shoulders (covered by clothes, neck and face)
        top = int(round(cy - 0.06 * sc))
        cv2.ellipse(canvas, (x, top), hair_ax, 0, 0, 360, hair, fill, aa)
        if p["hair_len"] > 0.05:
            bottom = int(round(cy + (0.05 + 0.45 * p["hair_len"]) * sc))
            cv2.rectangle(canvas, (x - half, top), (x + half, bottom), hair, fill, aa)
        # shoulders / clothing, neck, face, fringe
        cv2.ellipse(canvas, (x, int(round(r * 1.02))), cloth_ax, 0, 0, 360, cloth, fill, aa)
        neck_box = ((x - neck, int(round(cy))), (x + neck, int(round(cy + 0.36 * sc))))
        cv2.rectangle(canvas, *neck_box, skin, fill, aa)
        cv2.ellipse(canvas, (x, int(round(cy))), face_ax, 0, 0, 360, skin, fill, aa)
        cv2.ellipse(canvas, (x, int(round(cy - 0.20 * sc))), fringe_ax, 0, 180, 360, hair, fill, aa)
        # eyes (a blink closes them for one frame)
        ey = int(round(cy - 0.04 * sc))
        for dx in (-0.085, 0.085):
            ex = int(round(cx + dx * sc))
            if j == p["blink_frame"]:
                cv2.line(canvas, (ex - eye_r, ey), (ex + eye_r, ey), dark, 1, aa)
            else:
                cv2.circle(canvas, (ex, ey), eye_r, dark, fill, aa)
        # mouth: the opening follows a talking rhythm; width and upturn follow the smile
        opening = p["mouth_amp"] * abs(math.sin(math.pi * p["mouth_rate"] * t + p["mouth_phase"]))
        mc = (x, int(round(cy + 0.13 * sc)))
        mh = int(round(0.065 * sc * opening))
        cv2.ellipse(canvas, mc, lip_ax, 0, 0, 180, lips, fill, aa)
        if mh >= 1:
            cv2.ellipse(canvas, mc, (max(1, mw - 1), mh), 0, 0, 360, mouth_in, fill, aa)
        out[j] = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return out


# --------------------------------------------------------------------------------------------
# Audio: a voiced waveform (harmonic source x syllable envelope)
# --------------------------------------------------------------------------------------------
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


def _audio_params(seed: int, i: int, q: float, s: int, st: dict[str, float], n_syll: int) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# Text: transcripts from phrase banks
# --------------------------------------------------------------------------------------------
_OPENERS = (
    "Thanks for having me today.",
    "Hello, and thank you for the invitation.",
    "Good morning, I am glad to be here.",
    "Hi, thanks for taking the time to talk with me.",
    "Thank you, it is nice to meet you.",
)
_ROLES = (
    "software developer", "project coordinator", "data analyst", "sales associate",
    "customer service lead", "operations assistant", "marketing specialist", "accountant",
)
_ROLE_TEMPLATES = (
    "I have worked as a {role} for {years} years.",
    "For the last {years} years I have been a {role}.",
    "Currently I work as a {role}, and I have done that for {years} years.",
)
# Answer quality levels: 0 vague, 1 concrete, 2 specific example with a measured result.
_ANSWERS = (
    (
        "I am a hard worker and I always give my best.",
        "I think I am a good team player.",
        "I like challenges and I learn quickly.",
        "People say I am reliable and friendly.",
        "I try to do what is asked of me.",
        "I am motivated and I want to grow.",
        "I usually get things done somehow.",
        "I have done many different tasks over the years.",
    ),
    (
        "I often help my colleagues when a deadline is close.",
        "In my last job I handled customer requests every day.",
        "I organised the weekly planning meeting for my team.",
        "I prepared reports for my manager each month.",
        "I learned a new database system on the job.",
        "I worked with another department on a shared project.",
        "I trained two new colleagues when they joined.",
        "I kept our project documentation up to date.",
    ),
    (
        "For example, I led a team of five that rebuilt our billing process and cut errors by thirty percent.",
        "Last year I automated our monthly report, which saved the team about ten hours a week.",
        "I designed a new onboarding checklist, and new hires reached full speed two weeks sooner.",
        "When a key client threatened to leave, I set up weekly check-ins and we renewed the contract for two more years.",
        "I analysed our support tickets, found the three most common causes, and reduced the backlog by half.",
        "I negotiated with two suppliers and lowered our costs by twelve percent without delays.",
        "I proposed a testing routine that caught defects earlier; customer complaints fell by forty percent.",
        "I mentored three junior colleagues, and two of them were promoted within a year.",
    ),
)
_BACKGROUND_NEUTRAL = (
    "In my free time I enjoy hiking and reading.",
    "Outside work I volunteer at the local library.",
    "I like cooking and trying new recipes.",
    "On weekends I play chess with friends.",
    "I am learning to play the piano.",
    "I enjoy travelling and meeting new people.",
)
# Group-linked phrases (the proxy of S in text, like the résumé case where "women's" was penalised).
_BACKGROUND_GROUP = (
    (  # group 0 (unprivileged)
        "Outside work I captain the women's chess club.",
        "I volunteer with a women's coding network.",
        "I chaired the women's engineering society at university.",
        "I play in a women's football league on weekends.",
        "I organise events for a women in business group.",
        "I coach the girls' basketball team at my old school.",
    ),
    (  # group 1 (privileged)
        "Outside work I captain the men's rugby team.",
        "I was treasurer of the men's rowing club at university.",
        "I play in a men's football league on weekends.",
        "I am a member of the local gentlemen's golf society.",
        "I coach the boys' basketball team at my old school.",
        "I organise the fraternity alumni meetings.",
    ),
)
_CLOSERS = (
    "I would be happy to bring this experience to your company.",
    "I am looking forward to your questions.",
    "That is a short summary of my background.",
    "I hope this gives you a good picture of me.",
)
_N_ANSWERS = 3


def _make_text(seed: int, i: int, q: float, s: int, st: dict[str, float]) -> str:
    rng = _child_rng(seed, _STREAM_TEXT, i)
    e_sig = rng.standard_normal()
    level_latent = _mix(st["text_signal"], q, e_sig)
    levels = np.digitize(level_latent + 0.35 * rng.standard_normal(_N_ANSWERS), [-0.45, 0.45])
    answers = [_ANSWERS[lv][k] for lv, k in zip(levels, rng.choice(8, size=_N_ANSWERS, replace=False))]
    linked = rng.random() < st["text_shortcut"]
    bank = _BACKGROUND_GROUP[s] if linked else _BACKGROUND_NEUTRAL
    background = bank[rng.integers(len(bank))]
    role = _ROLE_TEMPLATES[rng.integers(len(_ROLE_TEMPLATES))].format(
        role=_ROLES[rng.integers(len(_ROLES))], years=int(rng.integers(2, 12))
    )
    parts = [_OPENERS[rng.integers(len(_OPENERS))], role, *answers]
    parts.insert(int(rng.integers(2, len(parts) + 1)), background)
    parts.append(_CLOSERS[rng.integers(len(_CLOSERS))])
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def make_synthetic(
    n_samples: int = DEFAULT_N_SAMPLES,
    *,
    seed: int = 0,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    audio_seconds: float = DEFAULT_AUDIO_SECONDS,
    **strengths: float,
) -> Interviews:
    """Generate ``n_samples`` synthetic interview candidates.

    Args:
        n_samples: number of candidates (>= 2).
        seed: non-negative integer; the same seed gives byte-identical output.
        frames: video frames per candidate (T >= 1).
        size: frame height = width in pixels (>= 16; even sizes keep exported H.264 happy).
        audio_seconds: audio length in seconds (> 0); the clip's frames span the same time.
        **strengths: any of ``DEFAULT_STRENGTHS`` (see the module docstring's table), in [0, 1].

    Returns:
        :class:`Interviews` with video (n, frames, size, size, 3) uint8, audio
        (n, round(audio_seconds * 16000)) float32, transcripts, labels Y, groups S, latent q.
    """
    n = _check_int("n_samples", n_samples, 2)
    seed = _check_int("seed", seed, 0)
    frames = _check_int("frames", frames, 1)
    size = _check_int("size", size, 16)
    try:
        audio_seconds = float(audio_seconds)
    except (TypeError, ValueError):
        raise ValueError(f"audio_seconds must be a number, got {audio_seconds!r}") from None
    if not (math.isfinite(audio_seconds) and 0.05 <= audio_seconds <= 60.0):
        raise ValueError(f"audio_seconds must be between 0.05 and 60, got {audio_seconds}")
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
    n_audio = int(round(audio_seconds * SAMPLE_RATE))

    # Latents: group (balanced pairs), competence, raters.
    group = np.empty(n, dtype=np.int64)
    for k in range((n + 1) // 2):
        first = int(_child_rng(seed, _STREAM_GROUP, k).integers(2))
        group[2 * k] = first
        if 2 * k + 1 < n:
            group[2 * k + 1] = 1 - first
    quality = np.empty(n, dtype=np.float64)
    rater_noise = np.empty((n, _N_RATERS), dtype=np.float64)
    for i in range(n):
        rng = _child_rng(seed, _STREAM_LATENT, i)
        quality[i] = rng.standard_normal()
        rater_noise[i] = rng.standard_normal(_N_RATERS)
    raters = np.clip(0.5 + 0.18 * quality[:, None] + st["rater_noise"] * rater_noise, 0.0, 1.0)
    label = raters.mean(axis=1)

    # Video.
    video = np.empty((n, frames, size, size, 3), dtype=np.uint8)
    for i in range(n):
        p = _video_params(seed, i, float(quality[i]), int(group[i]), st)
        video[i] = _draw_frames(p, frames, size, audio_seconds)

    # Audio, vectorised in chunks.
    n_syll = int(math.ceil(audio_seconds * 6.0)) + 2
    audio = np.empty((n, n_audio), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        ps = [
            _audio_params(seed, i, float(quality[i]), int(group[i]), st, n_syll)
            for i in range(start, stop)
        ]
        audio[start:stop] = _synth_audio(ps, n_audio, SAMPLE_RATE)

    # Text.
    text = [_make_text(seed, i, float(quality[i]), int(group[i]), st) for i in range(n)]

    params: dict[str, Any] = {
        "source": "synthetic",
        "version": GENERATOR_VERSION,
        "n_samples": n,
        "seed": seed,
        "frames": frames,
        "size": size,
        "audio_seconds": audio_seconds,
        "sample_rate": SAMPLE_RATE,
        **st,
    }
    return Interviews(
        video=video,
        audio=audio,
        sample_rate=SAMPLE_RATE,
        text=text,
        label=label,
        group=group,
        quality=quality,
        ids=[f"syn{seed}-{i:05d}" for i in range(n)],
        params=params,
    )


# --------------------------------------------------------------------------------------------
# Export as real files
# --------------------------------------------------------------------------------------------
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
    import cv2

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
) -> "pandas.DataFrame":  # noqa: F821 (pandas is imported on use)
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
    import pandas as pd

    from fairviz.atomic import write_text

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
    rows = []
    for i in range(count):
        ident = interviews.ids[i]
        wav, txt, mp4 = out / f"{ident}.wav", out / f"{ident}.txt", out / f"{ident}.mp4"
        _write_wav(wav, interviews.audio[i], interviews.sample_rate)
        _public(write_text(txt, interviews.text[i] + "\n"))
        _write_mp4(mp4, interviews.video[i], wav, fps, scale, ffmpeg)
        rows.append(
            {
                "video": mp4.name,
                "label": float(interviews.label[i]),
                "group": int(interviews.group[i]),
                "transcript": interviews.text[i],
                "wav": wav.name,
                "txt": txt.name,
            }
        )
    manifest = pd.DataFrame(rows, columns=["video", "label", "group", "transcript", "wav", "txt"])
    _public(write_text(out / "manifest.csv", manifest.to_csv(index=False)))
    return manifest
