"""The three modality encoders of Kim et al. (2023), small enough to train on a CPU.

- `VideoEncoder`: a 2D CNN (Conv-BN-ReLU-Pool blocks, trained from scratch) or a pretrained
  backbone (`backbones`: frozen on cached features, or fine-tuned) applied to every frame, then an
  LSTM over the frames; the last hidden state is the video code.
- `AudioEncoder`: an MFCC sequence -> linear projection -> LSTM; the last hidden state.
- `TextEncoder`: a frozen pre-trained BERT sentence vector (computed once, outside the model, by
  `fairviz.data.features`) -> one fully connected layer.

Every encoder maps a batch to a (batch, d) code; the network concatenates the codes into Z.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import backbones


class _NormReluPool(torch.autograd.Function):
    """BatchNorm (training mode) -> ReLU -> MaxPool 2x2 that keeps only its input for backward.

    Autograd would keep the ReLU output and the pooling indices of every block (at 32 clips x 30
    frames of 112x112 that is 0.6 GB for the first block alone); here backward recomputes them
    from the conv output. The recomputation normalises with the same batch statistics and does
    not touch the running statistics, so values, gradients and running statistics are exactly
    those of the plain modules.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, bn: nn.BatchNorm2d):
        ctx.bn_eps = bn.eps
        ctx.save_for_backward(x, weight, bias)
        return _norm_relu_pool(x, bn)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            w, b = weight.detach().requires_grad_(), bias.detach().requires_grad_()
            y = nn.functional.batch_norm(x, None, None, w, b, training=True, eps=ctx.bn_eps)
            out = nn.functional.max_pool2d(torch.relu_(y), 2)
            gx, gw, gb = torch.autograd.grad(out, (x, w, b), grad)
        return gx, gw, gb, None


def _norm_relu_pool(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    return nn.functional.max_pool2d(torch.relu_(bn(x)), 2)


class ConvBlock(nn.Module):
    """Conv 3x3 -> BatchNorm -> ReLU -> MaxPool 2x2: halves height and width."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.pool = nn.MaxPool2d(2)  # kept for the module tree; _norm_relu_pool pools the same way

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, c_out, h, w)
        # the lean path recomputes plain per-process BatchNorm: not for the global BatchNorm of
        # torchrun (fairviz.distributed), whose statistics span the processes
        if (self.training and torch.is_grad_enabled() and type(self.bn) is nn.BatchNorm2d
                and self.bn.affine and self.bn.track_running_stats):
            return _NormReluPool.apply(x, self.bn.weight, self.bn.bias, self.bn)  # (N, c_out, h/2, w/2)
        return _norm_relu_pool(x, self.bn)  # (N, c_out, h/2, w/2)


class VideoEncoder(nn.Module):
    """Per-frame encoder + LSTM over frames.

    Input: `video` float (batch, frames, 3, height, width), values in [0, 1]; with a frozen
    pretrained `frame_encoder` also its cached frame features (batch, frames, dim).
    Output: (batch, hidden), the LSTM's last hidden state.
    `frame_encoder` (see `fairviz.model.backbones`): "cnn" trains Conv-BN-ReLU-Pool blocks of
    `channels`; a pretrained backbone's pooled features (frozen or fine-tuned) go through a
    linear projection to `channels[-1]` + ReLU instead. `frame_size` (optional) resizes frames
    first (area interpolation) so that large inputs stay cheap; `None` keeps the input size. The
    encoders end in a global average pool, so any frame size and any number of frames work.
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32),
        hidden: int = 32,
        in_channels: int = 3,
        frame_size: int | None = None,
        frame_encoder: str = backbones.CNN,
    ):
        super().__init__()
        if not channels:
            raise ValueError("VideoEncoder needs at least one conv block (channels=())")
        self.frame_size = frame_size
        self.frame_encoder = frame_encoder
        self.frozen = backbones.is_frozen(frame_encoder)
        name = backbones.backbone_of(frame_encoder)
        if name is None:
            chans = [in_channels, *channels]
            self.cnn = nn.Sequential(*[ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        else:
            if not self.frozen:  # fine-tuned: part of the model, saved with it
                self.backbone = backbones.FrameBackbone(name)
            self.proj = nn.Sequential(nn.Linear(backbones.BACKBONES[name].dim, channels[-1]), nn.ReLU())
        self._frozen_backbone: list = []  # loaded on first use of raw frames; not a weight of the model
        self.lstm = nn.LSTM(channels[-1], hidden, batch_first=True)
        self.out_dim = hidden

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if self.frozen and video.dim() == 3:
            x = self.proj(video.float())  # cached features (batch, frames, dim) -> (batch, frames, C)
        elif video.dim() != 5:
            wanted = "(batch, frames, 3, h, w) or cached frame features (batch, frames, dim)" if self.frozen \
                else "(batch, frames, 3, h, w)"
            raise ValueError(f"video must be {wanted}; got shape {tuple(video.shape)}")
        elif self.frozen:
            x = self.proj(backbones.frozen_features(self._backbone(video.device), video))
        else:
            x = self._frame_codes(video)
        _, (h, _) = self.lstm(x)  # h: (1, batch, hidden)
        return h[-1]  # (batch, hidden)

    def _frame_codes(self, video: torch.Tensor) -> torch.Tensor:
        """(batch, frames, C) codes of the frames of `video` (batch, frames, 3, h, w)."""
        b, t = video.shape[:2]
        x = video.flatten(0, 1)  # (batch*frames, 3, h, w)
        if self.frame_size is not None and x.shape[-1] != self.frame_size:
            x = nn.functional.interpolate(x, size=(self.frame_size, self.frame_size), mode="area")
        if hasattr(self, "cnn"):
            x = self.cnn(x).mean(dim=(2, 3))  # (batch*frames, C)
        else:
            x = self.proj(self.backbone(x))  # (batch*frames, C)
        return x.view(b, t, -1)

    def _backbone(self, device: torch.device) -> backbones.FrameBackbone:
        """The frozen backbone, loaded from its package the first time raw frames come in."""
        if not self._frozen_backbone:
            self._frozen_backbone.append(backbones.FrameBackbone(backbones.backbone_of(self.frame_encoder)))
        return self._frozen_backbone[0].to(device)


class AudioEncoder(nn.Module):
    """MFCC sequence -> linear -> LSTM, last step.

    Input: `mfcc` float (batch, steps, n_mfcc). Output: (batch, hidden).
    """

    def __init__(self, n_mfcc: int = 20, proj: int = 32, hidden: int = 32):
        super().__init__()
        # MFCC coefficients differ in scale by orders of magnitude: standardise each with the
        # training split's mean/std (set by `train`, saved with the weights).
        self.register_buffer("mfcc_mean", torch.zeros(n_mfcc))
        self.register_buffer("mfcc_std", torch.ones(n_mfcc))
        self.proj = nn.Linear(n_mfcc, proj)
        self.lstm = nn.LSTM(proj, hidden, batch_first=True)
        self.out_dim = hidden

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-coefficient mean/std (n_mfcc,) used to standardise the input."""
        self.mfcc_mean.copy_(torch.as_tensor(mean, dtype=self.mfcc_mean.dtype))
        self.mfcc_std.copy_(torch.as_tensor(std, dtype=self.mfcc_std.dtype).clamp_min(1e-6))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        if mfcc.dim() != 3:
            raise ValueError(f"mfcc must be (batch, steps, n_mfcc); got shape {tuple(mfcc.shape)}")
        x = (mfcc - self.mfcc_mean) / self.mfcc_std  # (batch, steps, n_mfcc)
        x = torch.relu(self.proj(x))  # (batch, steps, proj)
        _, (h, _) = self.lstm(x)  # (1, batch, hidden)
        return h[-1]  # (batch, hidden)


class TextEncoder(nn.Module):
    """Frozen BERT sentence vector -> fully connected layer (+ ReLU).

    Input: `text` float (batch, d_bert). Output: (batch, hidden). The BERT model itself is not
    part of this module: its vectors are pre-computed and cached, i.e. it is frozen by design.
    """

    def __init__(self, d_in: int = 384, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(d_in, hidden)
        self.out_dim = hidden

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        if text.dim() != 2:
            raise ValueError(f"text must be (batch, d_bert); got shape {tuple(text.shape)}")
        return torch.relu(self.fc(self.drop(text)))  # (batch, hidden)
