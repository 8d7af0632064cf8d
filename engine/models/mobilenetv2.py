"""MobileNetV2 for CIFAR as the KD literature trains it (RepDistiller / mdistiller ``mobilenetv2.py``,
the ``MobileNetV2`` of the CRD tables: expansion 6, width 0.5, "mobile_half").

A stride-2 3x3 stem (32 px -> 16 px), seven stages of inverted residuals (1x1 expand,
3x3 depthwise, 1x1 linear projection; a residual where shape allows), a 1x1 conv to 1280
channels and one linear layer. Unlike torchvision's, the first stage also has the 1x1
expansion (ratio 1). Module names follow the reference: ``conv1.{0,1}``,
``blocks.S.K.conv.{0..7}``, ``conv2.{0,1}``, ``classifier.0``.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled

#: (expansion, channels at width 1 of mobile_half, blocks, first stride) per stage
STAGES = ((1, 8, 1, 1), (6, 12, 2, 1), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2), (6, 160, 1, 1))
STEM, LAST = 16, 1280


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(TappedModel):
    default_cam_tap = "features"
    default_hint_tap = "block3"

    def __init__(self, num_classes: int = 100, width: float = 1.0, in_channels: int = 3):
        super().__init__()
        self.num_classes = num_classes
        channels = scaled(STEM, width)
        self.conv1 = _conv_bn_relu(in_channels, channels, 3, 2)
        stages = []
        for expansion, stage_channels, count, stride in STAGES:
            out_channels = scaled(stage_channels, width)
            blocks = []
            for k in range(count):
                blocks.append(InvertedResidual(channels, out_channels, stride if k == 0 else 1, expansion))
                channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.ModuleList(stages)
        last = scaled(LAST, width)
        self.conv2 = _conv_bn_relu(channels, last, 1, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        stages: list[tuple[str | None, nn.Module]] = [(f"block{i}", stage) for i, stage in enumerate(self.blocks)]
        return [("stem", self.conv1), *stages, ("features", self.conv2)]

    def head(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(x).flatten(1))
