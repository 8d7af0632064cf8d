"""Raw maps (at the tap's resolution, before post-processing) from activations A and
gradients G = d score / d A, both N x C x h x w, batched in torch.

Each formula follows pytorch-grad-cam 1.5.7 exactly, constants included:

- Grad-CAM:   w_c = mean_ij G;                         map = sum_c w_c A_c
- Grad-CAM++: a = G² / (2G² + (sum_ij A)·G³ + 1e-6), a = 0 where G = 0;
              w_c = sum_ij relu(G)·a;                  map = sum_c w_c A_c
- XGrad-CAM:  w_c = sum_ij G·A / (sum_ij A + 1e-7);    map = sum_c w_c A_c
- HiResCAM:   map = sum_c G·A
- LayerCAM:   map = sum_c relu(G)·A
- EigenCAM:   projection of the channel-centred activations on their first right
              singular vector. SVD's sign is arbitrary (pytorch-grad-cam leaves whatever
              numpy returns); we fix it as pytorch-grad-cam's own sign correction does
              (Seg-Eigen-CAM, Eq. 13): flip when |min| > |max|, so the map is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _weighted(weights: Tensor, activations: Tensor) -> Tensor:
    return (weights[:, :, None, None] * activations).sum(dim=1)


def gradcam(a: Tensor, g: Tensor) -> Tensor:
    return _weighted(g.mean(dim=(2, 3)), a)


def gradcam_plus_plus(a: Tensor, g: Tensor) -> Tensor:
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    alpha = alpha.masked_fill(g == 0, 0.0)
    return _weighted((g.clamp_min(0) * alpha).sum(dim=(2, 3)), a)


def xgradcam(a: Tensor, g: Tensor) -> Tensor:
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    return _weighted((g * a / (sum_a + 1e-7)).sum(dim=(2, 3)), a)


def hirescam(a: Tensor, g: Tensor) -> Tensor:
    return (g * a).sum(dim=1)


def layercam(a: Tensor, g: Tensor) -> Tensor:
    return (g.clamp_min(0) * a).sum(dim=1)


#: methods whose map is a function of activations and gradients at the tap
GRADIENT_METHODS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "xgradcam": xgradcam,
    "hirescam": hirescam,
    "layercam": layercam,
}


def eigencam(a: Tensor) -> Tensor:
    """First principal component of each image's (h·w) x C activations, sign-corrected.

    The projection on the first right singular vector equals u₁·σ₁, which we take from a
    symmetric eigendecomposition of the smaller Gram matrix (h·w or C square, float64):
    batched ``eigh`` is much faster than batched SVD on CPU and gives the same map.
    """
    n, c, h, w = a.shape
    x = a.nan_to_num(0.0).flatten(2).transpose(1, 2).double()  # N x hw x C
    x = x - x.mean(dim=1, keepdim=True)
    if h * w <= c:
        values, vectors = torch.linalg.eigh(x @ x.transpose(1, 2))
        projection = vectors[:, :, -1] * values[:, -1:].clamp_min(0).sqrt()
    else:
        _, vectors = torch.linalg.eigh(x.transpose(1, 2) @ x)
        projection = (x @ vectors[:, :, -1:])[..., 0]
    flip = projection.amin(dim=1).abs() > projection.amax(dim=1).abs()
    projection = torch.where(flip[:, None], -projection, projection)
    return projection.reshape(n, h, w).to(a.dtype)
