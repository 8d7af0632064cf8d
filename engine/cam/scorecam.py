"""Score-CAM: channel weights from the model's scores on activation-masked inputs.

For every (image, channel) pair the channel's activation is upsampled to the input size,
min–max scaled to [0, 1], and multiplied into the image; the target's score on that
masked image, softmaxed over channels, weights the channel. As in pytorch-grad-cam 1.5.7:
the upsampling here is ``UpsamplingBilinear2d`` (``align_corners=True``: this is the
method's masking step, not DESIGN §5's post-processing), the scaling ε is 1e-8, and the
score is the raw target (logit), not a softmax probability.

Masked inputs are built and scored in chunks of ``chunk`` pairs across images and
channels, so memory is bounded by the chunk, not by N x C copies of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.cam.execution import forward_fast
from engine.cam.targets import Target
from engine.models.base import TappedModel


@torch.no_grad()
def scorecam(model: TappedModel, images: Tensor, activations: Tensor, target: Target, chunk: int = 256) -> Tensor:
    n, c = activations.shape[:2]
    size = images.shape[-2:]
    pairs = torch.arange(n * c, device=images.device)
    scores = torch.empty(n * c, device=images.device, dtype=torch.float32)
    flat = activations.reshape(n * c, 1, *activations.shape[2:])
    for start in range(0, n * c, chunk):
        idx = pairs[start:start + chunk]
        up = F.interpolate(flat[idx], size=size, mode="bilinear", align_corners=True)
        low = up.amin(dim=(2, 3), keepdim=True)
        high = up.amax(dim=(2, 3), keepdim=True)
        masks = (up - low) / (high - low + 1e-8)
        rows = idx // c
        scores[idx] = target.score(forward_fast(model, images[rows] * masks), rows).float()
    weights = torch.softmax(scores.view(n, c), dim=-1)
    return (weights[:, :, None, None].to(activations.dtype) * activations).sum(dim=1)
