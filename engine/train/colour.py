"""Colour jitter on normalised batches, on the device: brightness, contrast, saturation, hue.

Used by the colour-invariance experiment, both to fine-tune a teacher and to build the
jittered test set. Like ``DeviceLoader``'s crops and flips, each image's jitter is drawn at
``set_epoch``-time from a generator seeded by ``(seed, epoch)`` only and looked up by the
image's index in its split, so it does not depend on batch order, batch size, the global
RNG or the device: a resumed fine-tune sees exactly the images it would have seen, and every
model is scored on the same jittered test images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# RGB -> YIQ; hue is a rotation of the (I, Q) chroma plane
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class JitterRange:
    """How far each property may move: factors are uniform in [1 − x, 1 + x], hue turns in ±hue·π.

    The defaults are close to SimCLR's colour jitter (0.8 each, hue 0.2 of a turn) with milder
    brightness and contrast: at 0.8 a dark, flat draw hides ``shapes``' textures (they are a
    darker shade of the object's colour) even from a person. At 0.6 a model trained on clean
    images still loses clearly, mostly to brightness and contrast: hue and saturation carry no
    class information in ``shapes``, whose object colours are random.
    """

    brightness: float = 0.6
    contrast: float = 0.6
    saturation: float = 0.8
    hue: float = 0.4

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        """``n x 4`` (brightness, contrast, saturation factors, hue angle in radians), on the CPU."""
        u = 2 * torch.rand(n, 4, generator=generator) - 1
        spread = torch.tensor([self.brightness, self.contrast, self.saturation, self.hue * math.pi])
        return u * spread + torch.tensor([1.0, 1.0, 1.0, 0.0])


def jitter(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...], params: Tensor) -> Tensor:
    """Jitter a normalised NCHW RGB batch with one row of ``JitterRange.draw`` per image.

    Brightness scales the pixels, contrast pulls them to the image's mean grey, saturation to
    each pixel's luma, hue rotates chroma; pixels stay in [0, 1]. Returns a normalised batch of
    the same shape and dtype; images that are not RGB come back unchanged.
    """
    if images.shape[1] != 3:
        return images
    device = images.device
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    x = (images.float() * s + m).clamp(0, 1)
    brightness, contrast, saturation, angle = (params[:, k].to(device) for k in range(4))
    weights = torch.tensor(_LUMA, device=device).view(1, 3, 1, 1)
    x = (x * brightness.view(-1, 1, 1, 1)).clamp(0, 1)
    pivot = (x * weights).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = ((x - pivot) * contrast.view(-1, 1, 1, 1) + pivot).clamp(0, 1)
    luma = (x * weights).sum(1, keepdim=True)
    x = ((x - luma) * saturation.view(-1, 1, 1, 1) + luma).clamp(0, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(angle), 3, 3, device=device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    yiq = _YIQ.to(device)
    transform = torch.linalg.inv(yiq) @ rotation @ yiq  # n x 3 x 3, in RGB
    x = torch.einsum("nij,njhw->nihw", transform, x).clamp(0, 1)
    return ((x - m) / s).to(images.dtype).contiguous(memory_format=_memory_format(images))


class ColourJitter:
    """``augment(images, indices, epoch)`` for the trainer: each image's jitter fixed by (seed, epoch, index).

    The whole split's parameters are drawn once per epoch (a few floats per image) and kept
    on the device; a batch then costs one gather and a handful of elementwise kernels.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], seed: int,
                 device: torch.device | str = "cpu", spread: JitterRange = JitterRange()) -> None:
        self.size, self.mean, self.std, self.seed = size, tuple(mean), tuple(std), seed
        self.device, self.spread = torch.device(device), spread
        self._epoch: int | None = None
        self._params = torch.empty(0, 4)

    def parameters(self, epoch: int) -> Tensor:
        """``size x 4`` jitter parameters of ``epoch``, on the device."""
        if epoch != self._epoch:
            state = np.random.SeedSequence([self.seed, epoch, 0xC0102]).generate_state(1, dtype=np.uint64)[0]
            generator = torch.Generator().manual_seed(int(state >> 1))
            self._params = self.spread.draw(self.size, generator).to(self.device)
            self._epoch = epoch
        return self._params

    def __call__(self, images: Tensor, indices: Tensor, epoch: int) -> Tensor:
        return jitter(images, self.mean, self.std, self.parameters(epoch).index_select(0, indices.to(self.device)))


def _memory_format(images: Tensor) -> torch.memory_format:
    if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
