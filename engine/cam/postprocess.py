"""DESIGN §5 post-processing, the one step every CAM method shares.

map at the tap's resolution → ReLU → bilinear upsampling (``align_corners=False``) to the
input size → per-image min–max with ε = 1e-7. A map whose range (after upsampling, before
scaling) is below ε is *degenerate*: flagged and left all zeros, so callers can count it
and keep it out of similarity means instead of averaging noise.

Convention difference from pytorch-grad-cam 1.5.7: it min–max scales *before* resizing
with ``cv2.resize`` (and again after aggregating layers). We resize first, in torch, for
the whole batch; tests apply this same function to pytorch-grad-cam's raw per-layer maps
so the comparison is like for like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-7


def postprocess(raw: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``raw`` N x h x w → (maps float32 N x H x W in [0, 1], degenerate bool N)."""
    relu = raw.float().clamp_min(0)
    up = F.interpolate(relu[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1)
    low = flat.min(dim=1).values
    span = flat.max(dim=1).values - low
    degenerate = span < EPS
    scaled = (up - low[:, None, None]) / (span[:, None, None] + EPS)
    maps = torch.where(degenerate[:, None, None], torch.zeros_like(scaled), scaled)
    return maps, degenerate
