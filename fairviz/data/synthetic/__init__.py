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

**k groups** (``group_shares=[...]``, k = 2..8): each candidate draws its group g from the
shares; the video and audio proxies use the position ``2g/(k-1) - 1`` in place of ``2S - 1``
(evenly spaced from -1 for group 0 to +1 for group k-1), and the text proxy is a sentence from
group g's own bank (a fictitious community per group). Competence q stays independent of the
group, so the true label is still independent of S.

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

Layout: `_interviews` (the container, constants, random streams), `_video`, `_audio`, `_text`
(the modalities), `_generate` (`make_synthetic`), `_export` (`export_examples`).
"""

from __future__ import annotations

from fairviz.data.synthetic._export import export_examples
from fairviz.data.synthetic._generate import (
    DEFAULT_AUDIO_SECONDS,
    DEFAULT_FRAMES,
    DEFAULT_N_SAMPLES,
    DEFAULT_SIZE,
    DEFAULT_STRENGTHS,
    GENERATOR_VERSION,
    SAMPLE_RATE,
    make_synthetic,
)
from fairviz.data.synthetic._interviews import Interviews
from fairviz.data.synthetic._text import MAX_GROUPS as MAX_GROUPS

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
