"""The attention CNN of the interpretability lesson.

A small conv backbone produces base features F; a 1x1 conv + sigmoid gives a one-channel
attention map A; a 1x1 conv gives refined features; their product is globally average
pooled and classified. A is an explanation the model computes itself, which kdcam
compares with Grad-CAM. (BatchNorm is added to the backbone so the lesson's net trains
with the same SGD recipes as the other models.)
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import TappedModel, init_weights, scaled


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
    )


class AttentionGate(nn.Module):
    """features(F) * attention(F); the two branches are submodules so each is a tap."""

    def __init__(self, channels: int):
        super().__init__()
        self.attention = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())
        self.features = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, parts: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``parts`` = (features, attention) already computed by the caller, so that
        ``forward_taps`` runs each branch once yet still goes through this module (whose
        hooks, e.g. pytorch-grad-cam's, must see the ``attended`` tap)."""
        features, attention = parts if parts is not None else (self.features(x), self.attention(x))
        return features * attention


class AttentionCNN(TappedModel):
    default_cam_tap = "attended"
    default_hint_tap = "stage2"
    #: the tap holding the model's own attention map (one channel, in [0, 1])
    attention_tap = "attention"

    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 3):
        super().__init__()
        self.num_classes = num_classes
        c1, c2 = scaled(32, width), scaled(64, width)
        self.stage1 = _conv_block(in_channels, c1)
        self.stage2 = _conv_block(c1, c2)
        self.stage3 = _conv_block(c2, c2)
        self.pool = nn.MaxPool2d(2)
        self.attended = AttentionGate(c2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c2, num_classes)
        init_weights(self)

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [
            ("stage1", self.stage1), (None, self.pool),
            ("stage2", self.stage2), (None, self.pool),
            ("stage3", self.stage3),
            ("attended", self.attended),
        ]

    def forward_taps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        taps: dict[str, Tensor] = {}
        for name, module in self.body(x)[:-1]:
            x = module(x)
            if name is not None:
                taps[name] = x
        taps["attention"] = self.attended.attention(x)
        taps["features"] = self.attended.features(x)
        taps["attended"] = self.attended(x, parts=(taps["features"], taps["attention"]))
        return self.head(taps["attended"]), taps

    def tap_module(self, name: str) -> nn.Module:
        branches = {"attention": self.attended.attention, "features": self.attended.features}
        return branches[name] if name in branches else super().tap_module(name)

    @property
    def tap_names(self) -> tuple[str, ...]:
        return ("stage1", "stage2", "stage3", "attention", "features", "attended")

    def head(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(x).flatten(1))
