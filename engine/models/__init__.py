"""Model registry: every architecture by name, built with a class count and width multiplier."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from engine.api.results import TapInfo
from engine.errors import KdcamError
from engine.models.attention import AttentionCNN
from engine.models.base import TappedModel
from engine.models.mobilenetv2 import MobileNetV2
from engine.models.resnet import CIFAR_DEPTHS, bottleneck_resnet, cifar_resnet, cifar_resnet_x4, wide_resnet
from engine.models.shufflenet import ShuffleNetV1, ShuffleNetV2
from engine.models.torchvision_models import INPUT_SIZE as TV_INPUT_SIZE
from engine.models.torchvision_models import PREFIX as TV_PREFIX
from engine.models.torchvision_models import build_torchvision, torchvision_architectures
from engine.models.vgg import STAGES, VGG
from engine.models.wrn import wide_resnet as wrn

_BUILDERS: dict[str, Callable[..., TappedModel]] = {
    **{name: partial(VGG, name) for name in STAGES},
    **{f"resnet{d}": partial(cifar_resnet, d) for d in CIFAR_DEPTHS},
    **{f"resnet{d}a": partial(cifar_resnet, d, "A") for d in CIFAR_DEPTHS},
    "resnet8x4": partial(cifar_resnet_x4, 8),
    "resnet32x4": partial(cifar_resnet_x4, 32),
    **{f"wrn_{d}_{k}": partial(wrn, d, k) for d in (16, 40) for k in (1, 2)},
    "resnet18": partial(wide_resnet, [2, 2, 2, 2]),
    "resnet34": partial(wide_resnet, [3, 4, 6, 3]),
    "resnet50": partial(bottleneck_resnet, [3, 4, 6, 3]),
    "mobilenetv2": MobileNetV2,
    "shufflenetv1": ShuffleNetV1,
    "shufflenetv2": ShuffleNetV2,
    "attention_cnn": AttentionCNN,
}


def architectures() -> list[str]:
    """The CIFAR-style zoo: every name trains from scratch at any width multiplier."""
    return list(_BUILDERS)


def known_architectures() -> list[str]:
    """Every name ``build_model`` accepts: the zoo and the torchvision classifiers (``tv:NAME``)."""
    return architectures() + torchvision_architectures()


def native_input_size(arch: str) -> int:
    """The image size an architecture is made for when no dataset says otherwise."""
    return TV_INPUT_SIZE if arch.startswith(TV_PREFIX) else 32


def build_model(arch: str, num_classes: int, width: float = 1.0, in_channels: int = 3) -> TappedModel:
    """Build a freshly initialised model; unknown names get a message listing the known ones."""
    if arch in torchvision_architectures():
        builder: Callable[..., TappedModel] = partial(build_torchvision, arch)
    elif arch in _BUILDERS:
        builder = _BUILDERS[arch]
    else:
        raise KdcamError(f"unknown architecture {arch!r}; choose one of: {', '.join(known_architectures())}")
    if num_classes < 1:
        raise KdcamError(f"num_classes must be at least 1, got {num_classes}")
    if width <= 0:
        raise KdcamError(f"width multiplier must be positive, got {width}")
    return builder(num_classes=num_classes, width=width, in_channels=in_channels)


def count_parameters(model: TappedModel) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "TapInfo", "TappedModel", "architectures", "build_model", "count_parameters", "known_architectures",
    "native_input_size",
]
