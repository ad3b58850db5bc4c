"""The fused multimodal network: three encoders -> concatenated Z -> score head (+ adversary).

    video (B, T, 3, H, W) --VideoEncoder--> (B, video_hidden) -+
    mfcc  (B, steps, n_mfcc) --AudioEncoder--> (B, audio_hidden) +--concat--> Z (B, d_z)
    text  (B, text_dim) --TextEncoder--> (B, text_hidden) -----+
    Z --Regressor--> score (B,) in [0, 1]
    Z --GradientReversal(lambda)--> Adversary --> logits (B, 2) for S
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from .backbones import check_frame_encoder
from .encoders import AudioEncoder, TextEncoder, VideoEncoder
from .heads import Adversary, Regressor


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the network. The defaults train one epoch over a few thousand synthetic interviews
    in seconds on a 2-core CPU. `n_mfcc` and `text_dim` must match the features; `train` sets them."""

    n_mfcc: int = 20  # MFCC coefficients per audio step (input)
    text_dim: int = 384  # pooled BERT vector size (input; 384 for all-MiniLM-L6-v2)
    video_channels: tuple[int, ...] = (8, 16, 32)  # conv blocks of the per-frame CNN
    frame_size: int | None = None  # resize frames to this square size first (None: as given)
    frame_encoder: str = "cnn"  # per-frame encoder: "cnn" or a pretrained backbone, see model.backbones
    video_hidden: int = 16  # video LSTM hidden size
    audio_proj: int = 16  # MFCC -> linear projection size
    audio_hidden: int = 16  # audio LSTM hidden size
    text_hidden: int = 16  # text FC size
    regressor_hidden: int = 32  # hidden units of the score head
    adversary_hidden: int = 32  # hidden units of the adversary head
    dropout: float = 0.1  # dropout before the text FC and the score head
    n_groups: int = 2  # classes the adversary predicts (the sensitive attribute S)
    adversary_label_input: bool = False  # the adversary also reads the label y (ARL: input d_z + 1)

    def __post_init__(self):
        check_frame_encoder(self.frame_encoder)

    @property
    def d_z(self) -> int:
        """Size of the fused code Z."""
        return self.video_hidden + self.audio_hidden + self.text_hidden

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["video_channels"] = list(self.video_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of `to_dict`; unknown keys are an error (a config from another version)."""
        if not isinstance(d, dict):
            raise ValueError(f"model config must be a JSON object; got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; this run is from another version")
        d = dict(d)
        if "video_channels" in d:
            d["video_channels"] = tuple(int(c) for c in d["video_channels"])
        try:
            return cls(**d)
        except TypeError as err:
            raise ValueError(f"bad model config: {err}") from None


class FairMultimodalNet(nn.Module):
    """Encoders + fusion + regressor; the adversary head rides along (used by adversarial methods).

    `forward(video, mfcc, text) -> (score (B,), z (B, d_z))`; `adversary(z, lambd) -> logits (B, 2)`.
    """

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        self.video = VideoEncoder(cfg.video_channels, cfg.video_hidden, frame_size=cfg.frame_size,
                                  frame_encoder=cfg.frame_encoder)
        self.audio = AudioEncoder(cfg.n_mfcc, cfg.audio_proj, cfg.audio_hidden)
        self.text = TextEncoder(cfg.text_dim, cfg.text_hidden, dropout=cfg.dropout)
        self.regressor = Regressor(cfg.d_z, cfg.regressor_hidden, dropout=cfg.dropout)
        self.adversary = Adversary(cfg.d_z + int(cfg.adversary_label_input), cfg.adversary_hidden, cfg.n_groups)

    def encode(self, video: torch.Tensor, mfcc: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The fused code Z (B, d_z)."""
        zv = self.video(video)  # (B, video_hidden)
        za = self.audio(mfcc)  # (B, audio_hidden)
        zt = self.text(text)  # (B, text_hidden)
        return torch.cat([zv, za, zt], dim=1)  # (B, d_z)

    def forward(self, video: torch.Tensor, mfcc: torch.Tensor, text: torch.Tensor):
        z = self.encode(video, mfcc, text)  # (B, d_z)
        return self.regressor(z), z  # (B,), (B, d_z)

    def encoder_parameters(self):
        """Everything except the adversary: what the main optimiser trains."""
        return [p for n, p in self.named_parameters() if not n.startswith("adversary.")]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
