"""Colour jitter on normalised batches, on the device: brightness, contrast, saturation, hue.

Used by the colour-invariance experiment, both to fine-tune a teacher (fresh jitter per
batch from the global RNG, which resume restores) and to build a fixed jittered test set
(a private generator, so every model is scored on the same jittered images).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# RGB -> YIQ; hue is a rotation of the (I, Q) chroma plane
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def colour_jitter(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...], strength: float = 0.4,
                  hue: float = 0.25, generator: torch.Generator | None = None) -> Tensor:
    """Jitter a normalised NCHW RGB batch; factors are uniform in [1 − strength, 1 + strength],
    hue rotations uniform in ±hue·π. Returns a normalised batch of the same shape."""
    if images.shape[1] != 3:
        return images
    n, device = images.shape[0], images.device
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    x = (images.float() * s + m).clamp(0, 1)

    def factor() -> Tensor:
        draw = torch.rand(n, 1, 1, 1, generator=generator, device="cpu").to(device)
        return 1 + strength * (2 * draw - 1)

    x = x * factor()
    grey = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - grey) * factor() + grey
    luma = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = (x - luma) * factor() + luma
    angle = (2 * torch.rand(n, generator=generator, device="cpu") - 1).to(device) * hue * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(n, 3, 3, device=device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    yiq = _YIQ.to(device)
    transform = torch.linalg.inv(yiq) @ rotation @ yiq  # n x 3 x 3, in RGB
    x = torch.einsum("nij,njhw->nihw", transform, x).clamp(0, 1)
    return ((x - m) / s).to(images.dtype)

