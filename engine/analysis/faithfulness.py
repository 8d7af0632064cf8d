"""Deletion and insertion curves (Petsiuk et al., 2018): does the map rank pixels by how
much the model needs them?

Deletion removes pixels (sets them to the dataset mean, 0 after normalisation) in order of
decreasing map value; the target-class probability should fall fast (low AUC is good).
Insertion puts the image's pixels, in the same order, into a blurred copy; the probability
should rise fast (high AUC is good). Each of the ``steps + 1`` points is one batched forward
pass over all images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.analysis.inputs import AnalysedModel
from engine.cam.compute import eval_mode


def pixel_ranks(maps: Tensor) -> Tensor:
    """Rank of every pixel in its map, 0 = highest value (ties: first in row-major order)."""
    flat = maps.reshape(maps.shape[0], -1)
    order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks.reshape(maps.shape)


def blurred(images: Tensor) -> Tensor:
    """A strong box blur (kernel about a quarter of the image) keeping the colours, not the shapes."""
    size = images.shape[-1]
    kernel = max(3, (size // 4) | 1)
    return F.avg_pool2d(images, kernel, stride=1, padding=kernel // 2, count_include_pad=False)


def trapezoid_auc(curve: Tensor) -> Tensor:
    """Area under curves sampled at equal steps on [0, 1]: ``curve`` is points x images."""
    steps = curve.shape[0] - 1
    return (curve.sum(dim=0) - (curve[0] + curve[-1]) / 2) / steps


@torch.no_grad()
def deletion_insertion(am: AnalysedModel, images_u8: np.ndarray, maps_u8: np.ndarray, classes: np.ndarray,
                       steps: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Deletion AUC and insertion AUC per image for ``am``'s own maps and the explained classes."""
    x = am.normalise(torch.from_numpy(np.ascontiguousarray(images_u8)).to(device))
    ranks = pixel_ranks(torch.from_numpy(np.ascontiguousarray(maps_u8)).to(device).float())[:, None]
    target = torch.from_numpy(classes).to(device)[:, None]
    start = blurred(x)
    pixels = ranks[0].numel()
    deletion, insertion = [], []
    with eval_mode(am.model):
        for k in range(steps + 1):
            chosen = (ranks < round(k * pixels / steps)).to(x.dtype)  # the top-ranked pixels at this step
            deleted = x * (1 - chosen)
            inserted = start * (1 - chosen) + x * chosen
            probs = torch.softmax(am.model(torch.cat([deleted, inserted])).float(), dim=1)
            deletion_p, insertion_p = probs.gather(1, target.repeat(2, 1))[:, 0].chunk(2)
            deletion.append(deletion_p)
            insertion.append(insertion_p)
    return trapezoid_auc(torch.stack(deletion)).cpu().numpy(), trapezoid_auc(torch.stack(insertion)).cpu().numpy()
