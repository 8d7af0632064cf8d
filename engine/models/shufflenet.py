"""ShuffleNetV1 (g = 3) and ShuffleNetV2 (1x) for CIFAR, as RepDistiller / mdistiller train them
(``ShuffleNetv1.py`` ``ShuffleV1``, ``ShuffleNetv2.py`` ``ShuffleV2``).

Both start with a 1x1 convolution to 24 channels at full resolution, then three stages
that each halve the resolution (32 -> 16 -> 8 -> 4 px), global pooling and ``linear``.

- V1: bottlenecks of grouped 1x1 convolutions around a depthwise 3x3, with a channel
  shuffle; a stage's first block concatenates a 3x3 average-pooled shortcut (so its
  branch adds only ``out - in`` channels), the others add an identity. The network's very
  first 1x1 is not grouped (its input has only 24 channels). Stage widths 240/480/960.
- V2: a stage starts with a two-branch down-sampling block, then blocks that split the
  channels in half, transform one half and shuffle; a final 1x1 to 1024 channels.
  Stage widths 116/232/464.

Module names are the reference's, so their checkpoints load as they are. Under a width
multiplier, V1's widths stay multiples of 24 (stem: 12) and V2's even, as grouping and
splitting need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights


def _multiple(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups: [N, g*c, H, W] -> [N, c*g, H, W]."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleBlock(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)


class ShuffleUnitV1(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int, first: bool):
        super().__init__()
        self.stride = stride
        mid = out_channels // 4
        g = 1 if first else groups
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle1 = ShuffleBlock(g)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Sequential(nn.AvgPool2d(3, 2, 1)) if stride == 2 else nn.Sequential()

    def forward(self, x: Tensor) -> Tensor:
        out = self.shuffle1(F.relu(self.bn1(self.conv1(x))))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = self.shortcut(x)
        return F.relu(torch.cat([out, shortcut], 1) if self.stride == 2 else out + shortcut)


class ShuffleNetV1(TappedModel):
    default_cam_tap = "layer3"
    default_hint_tap = "layer2"

    def __init__(self, num_classes: int = 100, width: float = 1.0, in_channels: int = 3, groups: int = 3,
                 stages: tuple[int, ...] = (240, 480, 960), blocks: tuple[int, ...] = (4, 8, 4)):
        super().__init__()
        self.num_classes = num_classes
        channels = _multiple(24 * width, 12)
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        layers = []
        for i, (stage, count) in enumerate(zip(stages, blocks, strict=True)):
            out_channels = _multiple(stage * width, 24)
            units = []
            for k in range(count):
                added = out_channels - channels if k == 0 else out_channels
                units.append(ShuffleUnitV1(channels, added, 2 if k == 0 else 1, groups, first=i == 0 and k == 0))
                channels = out_channels
            layers.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [(None, self.conv1), (None, self.bn1), ("stem", self.relu),
                ("layer1", self.layer1), ("layer2", self.layer2), ("layer3", self.layer3)]

    def head(self, x: Tensor) -> Tensor:
        return self.linear(self.avgpool(x).flatten(1))


class SplitUnitV2(nn.Module):
    """Keep half the channels, transform the other half (1x1, depthwise 3x3, 1x1), shuffle."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)
        self.shuffle = ShuffleBlock(2)

    def forward(self, x: Tensor) -> Tensor:
        half = x.shape[1] // 2
        kept, changed = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(changed)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return self.shuffle(torch.cat([kept, out], 1))


class DownUnitV2(nn.Module):
    """Two strided branches (depthwise then 1x1; 1x1, depthwise, 1x1), concatenated and shuffled."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)
        self.shuffle = ShuffleBlock(2)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return self.shuffle(torch.cat([left, right], 1))


class ShuffleNetV2(TappedModel):
    default_cam_tap = "features"
    default_hint_tap = "layer2"

    def __init__(self, num_classes: int = 100, width: float = 1.0, in_channels: int = 3,
                 stages: tuple[int, ...] = (116, 232, 464), blocks: tuple[int, ...] = (3, 7, 3), last: int = 1024):
        super().__init__()
        self.num_classes = num_classes
        channels = max(4, int(round(24 * width)))
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        layers = []
        for stage, count in zip(stages, blocks, strict=True):
            out_channels = _multiple(stage * width, 2)
            layers.append(nn.Sequential(DownUnitV2(channels, out_channels),
                                        *[SplitUnitV2(out_channels) for _ in range(count)]))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = layers
        final = _multiple(last * width, 2)
        self.conv2 = nn.Conv2d(channels, final, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(final)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(final, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [(None, self.conv1), (None, self.bn1), ("stem", self.relu),
                ("layer1", self.layer1), ("layer2", self.layer2), ("layer3", self.layer3),
                (None, self.conv2), (None, self.bn2), ("features", self.relu2)]

    def head(self, x: Tensor) -> Tensor:
        return self.linear(self.avgpool(x).flatten(1))
