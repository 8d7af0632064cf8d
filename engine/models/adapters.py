"""A model fed images normalised with statistics other than its own.

Normalisation belongs to the checkpoint (DESIGN §7). A reused teacher trained with other
statistics than the dataset's (akamaster's CIFAR ResNets use ImageNet's mean and std)
receives the batches the student sees, normalised with the dataset's; ``Renormalised``
maps them to the teacher's own normalisation first. The map is affine per channel,
``x_own = x_given * given_std / own_std + (given_mean - own_mean) / own_std``, so it is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.api.results import TapInfo
from engine.models.base import TappedModel


class _Affine(nn.Module):
    scale: Tensor
    shift: Tensor

    def __init__(self, scale: Tensor, shift: Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class Renormalised(TappedModel):
    """``inner`` behind a per-channel affine map from the given normalisation to its own."""

    def __init__(self, inner: TappedModel, given: tuple[Sequence[float], Sequence[float]],
                 own: tuple[Sequence[float], Sequence[float]]):
        super().__init__()
        (given_mean, given_std), (own_mean, own_std) = given, own
        g_mean, g_std, o_mean, o_std = (torch.tensor([float(v) for v in values]).view(1, -1, 1, 1)
                                        for values in (given_mean, given_std, own_mean, own_std))
        self.renormalise = _Affine(g_std / o_std, (g_mean - o_mean) / o_std)
        self.inner = inner
        self.num_classes = inner.num_classes
        self.default_cam_tap, self.default_hint_tap = inner.default_cam_tap, inner.default_hint_tap
        self.sequential = inner.sequential

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        return [(None, self.renormalise), *self.inner.body(x)]

    def head(self, x: Tensor) -> Tensor:
        return self.inner.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(self.renormalise(x))

    def forward_taps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.inner.forward_taps(self.renormalise(x))

    @property
    def tap_names(self) -> tuple[str, ...]:
        return self.inner.tap_names

    def has_tap(self, name: str) -> bool:
        return self.inner.has_tap(name)

    def tap_module(self, name: str) -> nn.Module:
        return self.inner.tap_module(name)

    def tap_info(self, input_size: int = 32, in_channels: int = 3) -> list[TapInfo]:
        return self.inner.tap_info(input_size, in_channels)


def renormalised(model: TappedModel, given: tuple[Sequence[float], Sequence[float]],
                 own: tuple[Sequence[float], Sequence[float]]) -> TappedModel:
    """``model`` itself when the two normalisations agree (or cannot be compared), else wrapped."""
    if len(given[0]) != len(own[0]) or all(
        abs(float(a) - float(b)) <= 1e-7 for a, b in zip([*given[0], *given[1]], [*own[0], *own[1]], strict=True)
    ):
        return model
    return Renormalised(model, given, own)
