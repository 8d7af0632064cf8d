"""Recognise which registry architecture a state dict belongs to, from tensor names and shapes.

Nothing here is hard-coded per architecture: for every name in ``engine.models.architectures()``
a reference model is built on the *meta* device (no memory, no compute), and its first
convolution and classifier give the width multiplier, input channels and class count of
the file; a candidate is accepted only when every tensor name and shape then matches.
New architectures in the registry are recognised with no change here.

Files written by the usual CIFAR KD code bases use other module names for the same
tensors; ``LAYOUTS`` renames them one-to-one onto ours:
- RepDistiller / mdistiller CIFAR VGG: ``block0..block4`` are our ``stage1..stage5``
  (same conv/BN indices), ``classifier`` is the same.
- RepDistiller / mdistiller CIFAR ResNet (resnet20...110) and the ``resnetv2`` / pytorch-cifar
  ResNet18/34: stem ``conv1``/``bn1`` are our ``stem.0``/``stem.1``, ``downsample`` is our
  ``shortcut``, ``linear`` is our ``fc``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

import torch
from torch import Tensor

from engine.checkpoints.building import state_mismatch
from engine.errors import KdcamError
from engine.models import architectures, build_model

_Rename = Callable[[str], str]


def _native(key: str) -> str:
    return key


def _cifar_vgg(key: str) -> str:
    return re.sub(r"^block(\d)\.", lambda m: f"stage{int(m.group(1)) + 1}.", key)


def _cifar_resnet(key: str) -> str:
    key = re.sub(r"^conv1\.", "stem.0.", key)
    key = re.sub(r"^bn1\.", "stem.1.", key)
    key = re.sub(r"^linear\.", "fc.", key)
    return key.replace(".downsample.", ".shortcut.")


LAYOUTS: tuple[tuple[str, _Rename], ...] = (
    ("kdcam", _native),
    ("RepDistiller/mdistiller CIFAR VGG", _cifar_vgg),
    ("RepDistiller/mdistiller/pytorch-cifar ResNet", _cifar_resnet),
)


@dataclass(frozen=True)
class Inferred:
    arch: str
    width: float
    num_classes: int
    in_channels: int
    layout: str
    state: dict[str, Tensor]  # renamed onto our module names, ready for load_state_dict


@dataclass(frozen=True)
class _Signature:
    first_conv: str  # name of the first convolution weight
    base_channels: int  # its output channels at width 1
    classifier: str  # name of the classifier weight


@cache
def _signature(arch: str) -> _Signature:
    state = _reference_state(arch, 10, 1.0, 3)
    convs = [k for k, v in state.items() if v.dim() == 4]
    linears = [k for k, v in state.items() if v.dim() == 2]
    return _Signature(convs[0], int(state[convs[0]].shape[0]), linears[-1])


@lru_cache(maxsize=64)
def _reference_state(arch: str, num_classes: int, width: float, in_channels: int) -> dict[str, Tensor]:
    with torch.device("meta"):
        return build_model(arch, num_classes, width, in_channels).state_dict()


def infer_architecture(
    state: Mapping[str, Tensor],
    source: str,
    arch: str | None = None,
    num_classes: int | None = None,
    width: float | None = None,
) -> Inferred:
    """The one (architecture, width, classes, layout) that fits ``state`` exactly, or a clear error."""
    candidates = [arch] if arch else architectures()
    if arch:
        _signature(arch)  # unknown names fail here with the list of known ones
    closest_box: list[tuple[int, str, str]] = []  # the best (overlap, candidate, problem) so far
    for layout, rename in LAYOUTS:
        renamed = {rename(k): v for k, v in state.items()}
        if len(renamed) != len(state):
            continue
        for name in candidates:
            reference = _reference_state(name, 10, 1.0, 3)
            names_problem = state_mismatch(reference, _with_counters(renamed, reference), compare_shapes=False)
            if names_problem:  # tensor names do not depend on width or classes: no need to build
                _keep_closest(closest_box, _overlap(renamed, reference, compare_shapes=False), name, names_problem)
                continue
            for guess in _guesses(name, renamed, num_classes, width):
                expected = _reference_state(name, guess.num_classes, guess.width, guess.in_channels)
                completed = _with_counters(renamed, expected)
                problem = state_mismatch(expected, completed)
                if problem is None:
                    return Inferred(name, guess.width, guess.num_classes, guess.in_channels, layout, completed)
                label = f"{name} (width {guess.width:g}, {guess.num_classes} classes)"
                _keep_closest(closest_box, _overlap(completed, expected), label, problem)
    closest = closest_box[0] if closest_box else None
    if arch:
        detail = closest[2] if closest else _missing_entry_points(arch, state)
        raise KdcamError(f"{source}: the tensors do not fit {arch}: {detail}")
    if closest is None or not _shares_names(state):
        shown = ", ".join(list(state)[:4])
        raise KdcamError(
            f"{source}: unknown tensor names ({shown}, ...): no kdcam architecture uses them. "
            "Pass --arch NAME if it is one of ours, or --model-def path/to/file.py:ClassName for your own class"
        )
    raise KdcamError(
        f"{source}: no kdcam architecture fits these tensors; closest is {closest[1]}: {closest[2]}. "
        "Pass --arch/--num-classes to force one, or --model-def path/to/file.py:ClassName"
    )


def _overlap(given: Mapping[str, Tensor], expected: Mapping[str, Tensor], compare_shapes: bool = True) -> int:
    """Matching tensors minus missing and unknown ones: how close a candidate came."""
    matched = sum(
        1 for k, v in given.items() if k in expected and (not compare_shapes or v.shape == expected[k].shape)
    )
    return 2 * matched - len(given) - len(expected)


def _shares_names(state: Mapping[str, Tensor]) -> bool:
    """Whether any tensor name, in any known layout, is one a kdcam architecture uses."""
    ours = {k for name in architectures() for k in _reference_state(name, 10, 1.0, 3)}
    return any(rename(k) in ours for _, rename in LAYOUTS for k in state)


def _keep_closest(box: list[tuple[int, str, str]], score: int, label: str, problem: str) -> None:
    if not box or score > box[0][0]:
        box[:] = [(score, label, problem)]


@dataclass(frozen=True)
class _Guess:
    width: float
    num_classes: int
    in_channels: int


def _guesses(arch: str, state: Mapping[str, Tensor], num_classes: int | None, width: float | None) -> list[_Guess]:
    """Width/classes/channels read off the first conv and the classifier (none if they are absent)."""
    sig = _signature(arch)
    conv, classifier = state.get(sig.first_conv), state.get(sig.classifier)
    if conv is None or classifier is None or conv.dim() != 4 or classifier.dim() != 2:
        return []
    classes = num_classes or int(classifier.shape[0])
    ratio = conv.shape[0] / sig.base_channels
    widths = [width] if width else list(dict.fromkeys([round(ratio, 4), ratio]))
    return [_Guess(w, classes, int(conv.shape[1])) for w in widths]


def _with_counters(state: dict[str, Tensor], expected: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Add BatchNorm ``num_batches_tracked`` counters that files from old PyTorch versions lack."""
    missing = [k for k in expected if k.endswith("num_batches_tracked") and k not in state]
    if not missing:
        return state
    return {**state, **{k: torch.zeros((), dtype=torch.long) for k in missing}}


def _missing_entry_points(arch: str, state: Mapping[str, Tensor]) -> str:
    sig = _signature(arch)
    unknown = ", ".join(list(state)[:4])
    return f"it has no {sig.first_conv!r} / {sig.classifier!r} tensors (its tensors start with: {unknown}, ...)"
