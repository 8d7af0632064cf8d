"""CIFAR ResNets.

- The 6n+2 family of He et al. 2016 (resnet8/14/20/32/44/56/110, widths 16-32-64) with
  either shortcut the paper describes where the width doubles: option B, a 1x1 convolution +
  BN (RepDistiller / mdistiller ``resnet.py``, where it is called ``downsample``), or option A
  (names ending in ``a``: resnet20a...), a parameter-free subsample + zero-padding of the new
  channels (the paper's CIFAR choice, and akamaster's widely downloaded ``resnet.py``).
- RepDistiller's x4 variants (resnet8x4, resnet32x4): a 32-channel stem, widths 64-128-256.
- The 3x3-stem ImageNet-style ResNet18/34 (basic blocks) and ResNet50 (bottlenecks) that
  RepDistiller ``resnetv2.py`` / mdistiller / pytorch-cifar train on CIFAR (widths 64-512).

Module names are kdcam's (``stem``, ``layerN.K``, ``shortcut``, ``fc``); the published layouts
(``conv1``/``bn1`` stems, ``downsample``, ``linear``) are renamed one-to-one by
``engine.checkpoints.infer``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled


class ZeroPadShortcut(nn.Module):
    """Option A: keep every other pixel and zero-pad the channels the block adds (no tensors)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)  # akamaster: planes // 4 each side when the width doubles

    def forward(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


def _conv_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, option: str = "B"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = (ZeroPadShortcut(in_channels, channels, stride) if option == "A"
                             else _conv_shortcut(in_channels, channels, stride))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand x4, as in RepDistiller ``resnetv2.py``."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, option: str = "B"):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = _conv_shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(TappedModel):
    default_hint_tap = "layer2"

    def __init__(self, blocks: list[int], widths: list[int], num_classes: int = 100, width: float = 1.0,
                 in_channels: int = 3, stem: int | None = None, option: str = "B",
                 block: type[BasicBlock] | type[Bottleneck] = BasicBlock):
        super().__init__()
        self.num_classes = num_classes
        widths = [scaled(w, width) for w in widths]
        channels = scaled(stem, width) if stem else widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        layers = []
        for i, (count, stage_channels) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(count):
                stage.append(block(channels, stage_channels, stride if b == 0 else 1, option))
                channels = stage_channels * block.expansion
            layers.append(nn.Sequential(*stage))
        self.layer_names = [f"layer{i + 1}" for i in range(len(layers))]
        for name, layer in zip(self.layer_names, layers, strict=True):
            self.add_module(name, layer)
        self.default_cam_tap = self.layer_names[-1]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [("stem", self.stem)] + [(name, getattr(self, name)) for name in self.layer_names]

    def head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))


#: depths of the 6n+2 CIFAR family
CIFAR_DEPTHS = (8, 14, 20, 32, 44, 56, 110)


def cifar_resnet(depth: int, option: str = "B", **kwargs: Any) -> ResNet:
    """resnet8...110: three stages of (depth - 2) / 6 basic blocks, widths 16/32/64."""
    n = (depth - 2) // 6
    return ResNet([n, n, n], [16, 32, 64], option=option, **kwargs)


def cifar_resnet_x4(depth: int, **kwargs: Any) -> ResNet:
    """RepDistiller's resnet8x4 / resnet32x4: 32-channel stem, stages of 64/128/256 channels."""
    n = (depth - 2) // 6
    return ResNet([n, n, n], [64, 128, 256], stem=32, **kwargs)


def wide_resnet(blocks: list[int], **kwargs: Any) -> ResNet:
    """ResNet18/34 with a 3x3 stem for 32 px inputs, widths 64/128/256/512."""
    return ResNet(blocks, [64, 128, 256, 512], **kwargs)


def bottleneck_resnet(blocks: list[int], **kwargs: Any) -> ResNet:
    """ResNet50 with a 3x3 stem for 32 px inputs: bottlenecks of 64..512 channels, x4 outputs."""
    return ResNet(blocks, [64, 128, 256, 512], block=Bottleneck, **kwargs)
