"""CIFAR ResNets: the 6n+2 family (resnet20/32/56/110, widths 16-32-64, He et al. 2016)
and the 3x3-stem ImageNet-style resnet18/34 commonly trained on CIFAR (widths 64-512)."""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(TappedModel):
    default_hint_tap = "layer2"

    def __init__(self, blocks: list[int], widths: list[int], num_classes: int = 100, width: float = 1.0,
                 in_channels: int = 3):
        super().__init__()
        self.num_classes = num_classes
        widths = [scaled(w, width) for w in widths]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        layers = []
        channels = widths[0]
        for i, (count, out_channels) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(count):
                stage.append(BasicBlock(channels, out_channels, stride if b == 0 else 1))
                channels = out_channels
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


def cifar_resnet(depth: int, **kwargs) -> ResNet:
    """resnet20/32/56/110: three stages of (depth - 2) / 6 basic blocks, widths 16/32/64."""
    n = (depth - 2) // 6
    return ResNet([n, n, n], [16, 32, 64], **kwargs)


def wide_resnet(blocks: list[int], **kwargs) -> ResNet:
    """resnet18/34 with a 3x3 stem for 32 px inputs, widths 64/128/256/512."""
    return ResNet(blocks, [64, 128, 256, 512], **kwargs)
