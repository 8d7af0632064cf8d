"""How ``compute_cams`` runs a model: the fast inference path up to the tap, autograd after it.

A gradient map needs d score / d tap and nothing before the tap, so the body up to the tap
runs without autograd (no saved tensors, in-place ReLUs free) and only the tap → logits
part is differentiated, from a detached copy of the tap that requires grad. The body also
runs in the layout and form the CPU convolution library is fastest with:

- channels-last (NHWC) tensors, which oneDNN (and cuDNN) convolve without reordering;
- every ``Conv2d`` directly followed by an eval-mode ``BatchNorm2d`` inside an
  ``nn.Sequential`` runs as one convolution with the normalisation folded into its
  weights and bias (the standard inference rewrite), saving a full pass over memory.

The folded weights are temporaries of this call: the caller's model, its parameters and
their memory format are never modified. Results equal the model's own forward up to
float32 rounding (about 1e-6 relative).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.models.base import TappedModel


def _fingerprint(*tensors: Tensor | None) -> tuple[tuple[int, int], ...]:
    """Identity and in-place version of each tensor: changes whenever its values may have."""
    return tuple((id(t), t._version) for t in tensors if t is not None)


#: per convolution: (fingerprint of the conv and BN tensors, folded weight, folded bias)
_FOLDED: weakref.WeakKeyDictionary[nn.Conv2d, tuple[tuple[tuple[int, int], ...], Tensor, Tensor]] = \
    weakref.WeakKeyDictionary()


def _folded_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: Tensor) -> Tensor:
    """``bn(conv(x))`` as one convolution (``bn`` in eval mode, using its running statistics).

    The folded weights are cached per convolution while neither module's tensors change
    (training steps and ``load_state_dict`` bump their versions), so repeated batches do
    not pay for folding again.
    """
    running_mean, running_var = bn.running_mean, bn.running_var
    assert running_mean is not None and running_var is not None  # _foldable checked it
    key = _fingerprint(conv.weight, conv.bias, bn.weight, bn.bias, running_mean, running_var)
    cached = _FOLDED.get(conv)
    if cached is None or cached[0] != key or cached[1].device != x.device:
        with torch.no_grad():
            scale = torch.rsqrt(running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
            weight = (conv.weight * scale[:, None, None, None]).contiguous(memory_format=torch.channels_last)
            bias = shift if conv.bias is None else conv.bias * scale + shift
        cached = _FOLDED[conv] = (key, weight, bias)
    return conv._conv_forward(x, cached[1], cached[2])


def _foldable(module: nn.Module, following: nn.Module | None) -> bool:
    return (type(module) is nn.Conv2d and type(following) is nn.BatchNorm2d and not following.training
            and following.running_mean is not None and following.num_features == module.out_channels)


def run_fast(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` for inference, with conv + BN pairs of a ``Sequential`` folded (no autograd expected)."""
    if type(module) is not nn.Sequential:
        return module(x)
    children = list(module)
    i = 0
    while i < len(children):
        child = children[i]
        following = children[i + 1] if i + 1 < len(children) else None
        if isinstance(child, nn.Conv2d) and isinstance(following, nn.BatchNorm2d) and _foldable(child, following):
            x = _folded_conv_bn(child, following, x)
            i += 2
        else:
            x = run_fast(child, x)
            i += 1
    return x


def tap_index(body: Sequence[tuple[str | None, nn.Module]], tap_name: str) -> int | None:
    """Position of ``tap_name`` among the body's named outputs (None: the tap is not a body output)."""
    for i, (name, _) in enumerate(body):
        if name == tap_name:
            return i
    return None


def forward_to_tap(model: TappedModel, images: Tensor, stop: int) -> Tensor:
    """The body's output at position ``stop``, computed on the fast path without autograd."""
    body = model.body(images)
    with torch.no_grad():
        x = images.contiguous(memory_format=torch.channels_last)
        for _, module in body[:stop + 1]:
            x = run_fast(module, x)
    return x


def forward_from_tap(model: TappedModel, images: Tensor, tap: Tensor, stop: int) -> Tensor:
    """Logits from the tap (body position ``stop``) on, with the model's own modules (autograd as enabled)."""
    x = tap
    for _, module in model.body(images)[stop + 1:]:
        x = module(x)
    return model.head(x)


def forward_fast(model: TappedModel, images: Tensor) -> Tensor:
    """Logits of ``model`` on the fast path, without autograd (Score-CAM scores masked copies this way)."""
    if not model.sequential:
        with torch.no_grad():
            return model(images)
    body = model.body(images)
    with torch.no_grad():
        return forward_from_tap(model, images, forward_to_tap(model, images, len(body) - 1), len(body) - 1)


def forward_taps_fast(model: TappedModel, images: Tensor, tap_name: str) -> tuple[Tensor, Tensor]:
    """(logits, the tap's activations) without autograd; the fast path when the tap is a body output."""
    stop = tap_index(model.body(images), tap_name) if model.sequential else None
    with torch.no_grad():
        if stop is None:
            logits, taps = model.forward_taps(images)
            return logits, taps[tap_name]
        activations = forward_to_tap(model, images, stop)
        return forward_from_tap(model, images, activations, stop), activations

