"""CIFAR VGG with batch norm, as in the KD literature (RepDistiller / mdistiller).

Five stages of 3x3 conv + BN + ReLU; max-pool after stages 1-3 (and after stage 4 only
for 64 px inputs); global average pooling; one Linear(512, classes). Parameter counts
for 100 classes: vgg8 3.97M, vgg11 9.28M, vgg13 9.46M, vgg16 14.77M, vgg19 20.09M.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled

STAGES: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _stage(in_channels: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out_channels in widths:
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


class VGG(TappedModel):
    default_cam_tap = "stage5"
    default_hint_tap = "stage2"

    def __init__(self, depth_name: str, num_classes: int = 100, width: float = 1.0, in_channels: int = 3):
        super().__init__()
        self.num_classes = num_classes
        widths = [[scaled(c, width) for c in stage] for stage in STAGES[depth_name]]
        stages = []
        for stage_widths in widths:
            stages.append(_stage(in_channels, stage_widths))
            in_channels = stage_widths[-1]
        self.stage1, self.stage2, self.stage3, self.stage4, self.stage5 = stages
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        layers: list[tuple[str | None, nn.Module]] = [
            ("stage1", self.stage1), (None, self.pool),
            ("stage2", self.stage2), (None, self.pool),
            ("stage3", self.stage3), (None, self.pool),
            ("stage4", self.stage4),
        ]
        if x.shape[-1] >= 64:
            layers.append((None, self.pool))
        layers.append(("stage5", self.stage5))
        return layers

    def head(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(x).flatten(1))

