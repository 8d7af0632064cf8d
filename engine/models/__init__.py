"""Model registry: every architecture by name, built with a class count and width multiplier."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from engine.errors import KdcamError
from engine.models.attention import AttentionCNN
from engine.models.base import TapInfo, TappedModel
from engine.models.resnet import cifar_resnet, wide_resnet
from engine.models.vgg import STAGES, VGG

_BUILDERS: dict[str, Callable[..., TappedModel]] = {
    **{name: partial(VGG, name) for name in STAGES},
    **{f"resnet{d}": partial(cifar_resnet, d) for d in (20, 32, 56, 110)},
    "resnet18": partial(wide_resnet, [2, 2, 2, 2]),
    "resnet34": partial(wide_resnet, [3, 4, 6, 3]),
    "attention_cnn": AttentionCNN,
}


def architectures() -> list[str]:
    return list(_BUILDERS)


def build_model(arch: str, num_classes: int, width: float = 1.0, in_channels: int = 3) -> TappedModel:
    """Build a freshly initialised model; unknown names get a message listing the known ones."""
    try:
        builder = _BUILDERS[arch]
    except KeyError:
        raise KdcamError(f"unknown architecture {arch!r}; choose one of: {', '.join(_BUILDERS)}") from None
    if num_classes < 1:
        raise KdcamError(f"num_classes must be at least 1, got {num_classes}")
    if width <= 0:
        raise KdcamError(f"width multiplier must be positive, got {width}")
    return builder(num_classes=num_classes, width=width, in_channels=in_channels)


def count_parameters(model: TappedModel) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["TapInfo", "TappedModel", "architectures", "build_model", "count_parameters"]
