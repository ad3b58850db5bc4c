"""The trainable multimodal model of Kim et al. (2023): encoders, heads, fused network (torch)."""

from .encoders import AudioEncoder, TextEncoder, VideoEncoder
from .heads import Adversary, GradientReversal, Regressor, grad_reverse, grl_lambda
from .network import FairMultimodalNet, ModelConfig

__all__ = [
    "AudioEncoder",
    "TextEncoder",
    "VideoEncoder",
    "Adversary",
    "GradientReversal",
    "Regressor",
    "grad_reverse",
    "grl_lambda",
    "FairMultimodalNet",
    "ModelConfig",
]
