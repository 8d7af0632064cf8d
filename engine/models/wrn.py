"""Wide ResNets for CIFAR (Zagoruyko & Komodakis 2016): wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2.

Pre-activation blocks (BN-ReLU-conv twice); depth 6n+4 gives n blocks in each of three
stages of 16k, 32k and 64k channels (k the widen factor) after a 16-channel stem; a final
BN-ReLU precedes global pooling. Module names are those of RepDistiller / mdistiller
``wrn.py`` (``conv1``, ``blockN.layer.K.{bn1,conv1,bn2,conv2,convShortcut}``, ``bn1``, ``fc``),
so their checkpoints load as they are.

A block whose input and output differ in channels (or resolution) pre-activates its input
once and feeds it to both the residual branch and the 1x1 ``convShortcut``; otherwise the
shortcut is the raw input, as in the reference.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled


class WideBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.equal = in_channels == out_channels and stride == 1
        self.convShortcut = None if self.equal else nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        if self.convShortcut is None:
            return x + out
        return self.convShortcut(activated) + out


class NetworkBlock(nn.Module):
    """One stage; the extra ``layer`` level exists only to match the reference tensor names."""

    def __init__(self, count: int, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(count)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(TappedModel):
    default_cam_tap = "features"
    default_hint_tap = "block2"

    def __init__(self, depth: int, widen: int, num_classes: int = 100, width: float = 1.0, in_channels: int = 3):
        super().__init__()
        self.num_classes = num_classes
        n = (depth - 4) // 6
        stem, c1, c2, c3 = (scaled(c, width) for c in (16, 16 * widen, 32 * widen, 64 * widen))
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, stem, c1, 1)
        self.block2 = NetworkBlock(n, c1, c2, 2)
        self.block3 = NetworkBlock(n, c2, c3, 2)
        self.bn1 = nn.BatchNorm2d(c3)
        self.relu = nn.ReLU(inplace=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c3, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [("stem", self.conv1), ("block1", self.block1), ("block2", self.block2), ("block3", self.block3),
                (None, self.bn1), ("features", self.relu)]

    def head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))


def wide_resnet(depth: int, widen: int, **kwargs: Any) -> WideResNet:
    return WideResNet(depth, widen, **kwargs)
