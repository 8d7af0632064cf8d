"""``compute_cams``: one forward pass per batch for logits and taps, then a method's map.

Gradient methods differentiate the target score with ``torch.autograd.grad`` with respect
to the tap tensor only: no parameter ``.grad`` is touched, nothing propagates back past
the tap, and the graph is released before returning. When the tap is one of the body's
outputs, the body up to it runs on the fast inference path of ``engine.cam.execution``
(no autograd, channels-last, BN folded) and only tap → logits is differentiated; the
other methods (and Score-CAM's masked copies) run on that path all the way. Zoo models register no
hooks; a wrapped user model (``sequential = False``) records its taps with forward hooks and is
differentiated from the input, the gradient still taken at the tap only. The model
runs in eval mode and every submodule's train/eval flag is restored on exit, error or not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.api.catalogue import CAM_METHODS
from engine.cam.execution import forward_from_tap, forward_taps_fast, forward_to_tap, tap_index
from engine.cam.methods import GRADIENT_METHODS, eigencam
from engine.cam.postprocess import postprocess
from engine.cam.scorecam import scorecam
from engine.cam.targets import Target, as_target
from engine.errors import KdcamError
from engine.models.base import TappedModel

METHODS: tuple[str, ...] = CAM_METHODS  # the catalogue names them; this module runs them


@dataclass
class CamBatch:
    """CAMs for one batch; all tensors detached, on the model's device."""

    maps: Tensor  # float32 N x H x W in [0, 1] (DESIGN §5 post-processing)
    degenerate: Tensor  # bool N: the map's range was below ε; its map is all zeros
    logits: Tensor  # N x K: the model's outputs on the unmodified images (to float32 rounding)
    raw: Tensor  # N x h x w: the method's map at the tap's resolution, before post-processing


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; every submodule's own training flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def resolve_tap(model: TappedModel, method: str, tap: str | None) -> str:
    """The tap a method reads; unknown names and attention on plain models are user errors."""
    if method == "attention":
        attention_tap = getattr(model, "attention_tap", None)
        if attention_tap is None:
            raise KdcamError(f"method 'attention' needs a model with its own attention map; "
                             f"{type(model).__name__} has none (use an attention_cnn)")
        return attention_tap
    name = tap or model.default_cam_tap
    if not model.has_tap(name):
        anywhere = "" if model.sequential else " (or any submodule path whose output is N x C x H x W)"
        raise KdcamError(f"unknown layer {name!r} for {type(model).__name__}; "
                         f"its taps are: {', '.join(model.tap_names)}{anywhere}")
    return name


def compute_cams(
    model: TappedModel,
    images: Tensor,
    targets: Target | Tensor | Sequence[int],
    method: str = "gradcam",
    tap: str | None = None,
    *,
    score_chunk: int = 256,
) -> CamBatch:
    """CAMs of ``model`` for a batch of normalised images (N x C x H x W).

    ``targets``: a ``Target`` (see ``resolve_targets``) or one class index per image.
    ``tap``: any of ``model.tap_names``; default ``model.default_cam_tap``. The
    ``attention`` method always reads ``model.attention_tap``. ``score_chunk`` bounds how
    many masked images Score-CAM scores per forward pass.
    """
    if method not in METHODS:
        raise KdcamError(f"unknown CAM method {method!r}; choose one of: {', '.join(METHODS)}")
    if images.ndim != 4:
        raise KdcamError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    tap_name = resolve_tap(model, method, tap)
    target = as_target(targets)
    device = next(model.parameters()).device
    images = images.to(device)
    with eval_mode(model):
        if method in GRADIENT_METHODS:
            logits, raw = _gradient_cam(model, images, target, method, tap_name)
        else:
            logits, activations = forward_taps_fast(model, images, tap_name)
            with torch.no_grad():
                if method == "eigencam":
                    raw = eigencam(activations)
                elif method == "scorecam":
                    raw = scorecam(model, images, activations, target.bind(logits), chunk=score_chunk)
                else:
                    raw = activations[:, 0]
    maps, degenerate = postprocess(raw, (images.shape[-2], images.shape[-1]))
    return CamBatch(maps=maps, degenerate=degenerate, logits=logits.detach(), raw=raw.detach())


def _gradient_cam(model: TappedModel, images: Tensor, target: Target, method: str,
                  tap_name: str) -> tuple[Tensor, Tensor]:
    if not model.sequential:  # a wrapped user model: no graph before the tap, taken by a hook
        with torch.enable_grad():
            logits, activations = model.forward_with_tap_leaf(images, tap_name)
            (grads,) = torch.autograd.grad(_score(target, logits), activations)
        with torch.no_grad():
            raw = GRADIENT_METHODS[method](activations.detach(), grads)
        return logits.detach(), raw
    stop = tap_index(model.body(images), tap_name)
    if stop is None:  # a tap inside a module (e.g. an attention branch): one differentiable pass
        return _gradient_cam_full_graph(model, images, target, method, tap_name)
    activations = forward_to_tap(model, images, stop).requires_grad_(True)
    with torch.enable_grad():
        logits = forward_from_tap(model, images, activations, stop)
        (grads,) = torch.autograd.grad(_score(target, logits), activations)
    with torch.no_grad():
        raw = GRADIENT_METHODS[method](activations.detach(), grads)
    return logits.detach(), raw


def _gradient_cam_full_graph(model: TappedModel, images: Tensor, target: Target, method: str,
                             tap_name: str) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        if not any(p.requires_grad for p in model.parameters()):
            # frozen weights: let the graph exist from the input; the gradient still stops at the tap
            images = images.detach().requires_grad_(True)
        logits, taps = model.forward_taps(images)
        activations = taps[tap_name]
        (grads,) = torch.autograd.grad(_score(target, logits), activations)
    with torch.no_grad():
        raw = GRADIENT_METHODS[method](activations.detach(), grads)
    return logits.detach(), raw


def _score(target: Target, logits: Tensor) -> Tensor:
    rows = torch.arange(logits.shape[0], device=logits.device)
    return target.bind(logits).score(logits, rows).sum()
