"""torchvision's ImageNet classifiers as tapped models: ``tv:resnet18``, ``tv:vit_b_16``, ...

The torchvision model is built (randomly initialised: nothing downloads weights) and its
top-level modules and parameters are registered on the wrapper under their own names, so
the wrapper's tensor names are exactly torchvision's: a ``torch.save(model.state_dict())``
of a torchvision model (its ImageNet weights, or a fine-tuned copy with another class
count) imports with the architecture recognised.

- CNNs run as ``body`` + ``head`` like the zoo (the fast CAM path): taps are the ResNets'
  ``stem`` and ``layer1..4``, VGG's pooling layers (``features.6`` ... ``features.43``)
  and every block of ``features`` for MobileNet, EfficientNet and ConvNeXt, named by
  module path so ``--layer features.12`` means what it says.
- ViT-B/16 works on tokens. A tap is an encoder layer's output (or the last layer's
  ``ln_1``) seen as a feature map over the 14 x 14 patch grid: the class token is dropped
  and the patch tokens are laid out as C x H x W, as pytorch-grad-cam's
  ``reshape_transform`` does for ViTs. The default CAM tap is the last layer's ``ln_1``:
  after the last layer only the class token reaches the head, so the gradient at that
  layer's output is zero on every patch, whereas its ``ln_1`` feeds the attention that
  mixes patches into the class token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.api.results import TapInfo
from engine.errors import KdcamError
from engine.models.base import HookedModel, TappedModel

if TYPE_CHECKING:
    from torchvision.models import VisionTransformer

PREFIX = "tv:"
NAMES = ("resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
         "convnext_tiny", "vit_b_16")
#: the input size torchvision's ImageNet weights expect (and ViT-B/16 requires)
INPUT_SIZE = 224


def torchvision_architectures() -> list[str]:
    return [PREFIX + name for name in NAMES]


def build_torchvision(arch: str, num_classes: int, width: float = 1.0, in_channels: int = 3) -> TappedModel:
    """A freshly initialised torchvision classifier behind the tapped-model interface."""
    name = arch.removeprefix(PREFIX)
    if width != 1.0:
        raise KdcamError(f"{arch} is torchvision's architecture as published: it has no width multiplier "
                         f"(got width {width:g})")
    if in_channels != 3:
        raise KdcamError(f"{arch} takes 3-channel (RGB) images, not {in_channels}")
    from torchvision import models

    net = models.get_model(name, weights=None, num_classes=num_classes)
    if isinstance(net, models.VisionTransformer):
        return TorchvisionViT(net, num_classes)
    return TorchvisionCNN(name, net, num_classes)


def _adopt(wrapper: nn.Module, net: nn.Module) -> None:
    """Register ``net``'s top-level modules and parameters on ``wrapper`` under the same names."""
    for name, child in net.named_children():
        wrapper.add_module(name, child)
    for name, parameter in net.named_parameters(recurse=False):
        wrapper.register_parameter(name, parameter)


class TorchvisionCNN(TappedModel):
    def __init__(self, name: str, net: nn.Module, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.arch = name
        _adopt(self, net)
        taps = [n for n, _ in self.body(torch.empty(0)) if n is not None]
        self.default_cam_tap = taps[-1]
        self.default_hint_tap = taps[len(taps) // 2]

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        m = self.get_submodule
        if self.arch.startswith("resnet"):
            return [(None, m("conv1")), (None, m("bn1")), (None, m("relu")), ("stem", m("maxpool")),
                    *[(f"layer{i}", m(f"layer{i}")) for i in range(1, 5)]]
        features = list(m("features").children())
        if self.arch.startswith("vgg"):  # one tap per stage: its closing max-pool
            return [(f"features.{i}" if isinstance(f, nn.MaxPool2d) else None, f) for i, f in enumerate(features)]
        return [(f"features.{i}", f) for i, f in enumerate(features)]

    def head(self, x: Tensor) -> Tensor:
        m = self.get_submodule
        if self.arch.startswith("resnet"):
            return m("fc")(m("avgpool")(x).flatten(1))
        pooled = m("avgpool")(x) if hasattr(self, "avgpool") else F.adaptive_avg_pool2d(x, 1)
        if self.arch.startswith("convnext"):  # its classifier normalises and flattens itself
            return m("classifier")(pooled)
        return m("classifier")(pooled.flatten(1))


class TorchvisionViT(HookedModel):
    """torchvision's VisionTransformer; taps are token maps laid out over the patch grid."""

    def __init__(self, net: VisionTransformer, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.image_size, self.patch_size, self.hidden_dim = net.image_size, net.patch_size, net.hidden_dim
        _adopt(self, net)
        layers = list(self.get_submodule("encoder.layers").named_children())
        taps: dict[str, nn.Module] = {f"encoder.layers.{name}": layer for name, layer in layers}
        self.default_hint_tap = list(taps)[len(layers) // 2]
        last_name, last = layers[-1]
        self.default_cam_tap = f"encoder.layers.{last_name}.ln_1"
        taps[self.default_cam_tap] = last.get_submodule("ln_1")
        self.set_taps(taps, tuple(taps))

    def _tokens(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise KdcamError(f"vit_b_16 takes {self.image_size}x{self.image_size} images, got {h}x{w} "
                             f"(use imagefolder:PATH?size={self.image_size})")
        patches = self.get_submodule("conv_proj")(x).flatten(2).transpose(1, 2)
        return torch.cat([self.get_parameter("class_token").expand(n, -1, -1), patches], dim=1)

    def tap_view(self, output: Tensor) -> Tensor:
        """Patch tokens (N x 1+HW x C) as an N x C x H x W map, the class token dropped."""
        side = self.image_size // self.patch_size
        return output[:, 1:].reshape(output.shape[0], side, side, output.shape[2]).permute(0, 3, 1, 2)

    def tap_unview(self, leaf: Tensor, output: Tensor) -> Tensor:
        """The patch tokens rebuilt from the grid leaf, the class token kept as a constant: d score / d leaf
        is then the gradient at the tap's patch tokens."""
        patches = leaf.permute(0, 2, 3, 1).reshape(output.shape[0], -1, output.shape[2])
        return torch.cat([output[:, :1].detach(), patches], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.get_submodule("encoder")(self._tokens(x))
        return self.get_submodule("heads")(tokens[:, 0])

    def tap_info(self, input_size: int = INPUT_SIZE, in_channels: int = 3) -> list[TapInfo]:
        side = input_size // self.patch_size
        return [TapInfo(name, self.hidden_dim, side, side) for name in self.tap_names]
