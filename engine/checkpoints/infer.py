"""Recognise which registry architecture a state dict belongs to, from tensor names and shapes.

Nothing here is hard-coded per architecture: for every name in ``engine.models.architectures()``
(and the torchvision classifiers, ``tv:NAME``) a reference model is built on the *meta* device
(no memory, no compute), and its first convolution and classifier give the width multiplier,
input channels and class count of the file; a candidate is accepted only when every tensor
name and shape then matches. New architectures in the registry are recognised with no change here.

The WRNs, MobileNetV2 and ShuffleNetV1/V2 use the module names of RepDistiller / mdistiller,
and the torchvision classifiers torchvision's, so their files match as they are. For the rest,
files written by the usual CIFAR KD code bases use other module names for the same tensors;
``LAYOUTS`` renames them one-to-one onto ours:
- RepDistiller / mdistiller CIFAR VGG: ``block0..block4`` are our ``stage1..stage5``
  (same conv/BN indices), ``classifier`` is the same.
- RepDistiller / mdistiller CIFAR ResNet (resnet8...110, resnet8x4/32x4), akamaster's
  ``pytorch_resnet_cifar10`` (option A, ``linear``; later versions prefix ``compressible_``)
  and the ``resnetv2`` / pytorch-cifar ResNet18/34/50: stem ``conv1``/``bn1`` are our
  ``stem.0``/``stem.1``, ``downsample`` is our ``shortcut``, ``linear`` is our ``fc``.

When nothing fits, the refusal names the closest candidate and says *why* it does not fit
(zero-padding vs convolution shortcuts, blocks per stage, class count, widths), with the
``--arch`` to try when another architecture would fit.
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
from engine.models import build_model, known_architectures

_Rename = Callable[[str], str]


def _native(key: str) -> str:
    return key


def _cifar_vgg(key: str) -> str:
    return re.sub(r"^block(\d)\.", lambda m: f"stage{int(m.group(1)) + 1}.", key)


def _cifar_resnet(key: str) -> str:
    key = re.sub(r"(^|\.)compressible_", r"\1", key)
    key = re.sub(r"^conv1\.", "stem.0.", key)
    key = re.sub(r"^bn1\.", "stem.1.", key)
    key = re.sub(r"^linear\.", "fc.", key)
    return key.replace(".downsample.", ".shortcut.")


LAYOUTS: tuple[tuple[str, _Rename], ...] = (
    ("kdcam", _native),
    ("RepDistiller/mdistiller CIFAR VGG", _cifar_vgg),
    ("RepDistiller/mdistiller/akamaster/pytorch-cifar ResNet", _cifar_resnet),
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
    base_features: int  # the classifier's input features at width 1


@dataclass(frozen=True)
class _Near:
    """How close one candidate came: the best of these is named in the refusal."""

    score: int
    arch: str
    label: str
    problem: str
    given: dict[str, Tensor]  # the file's tensors, renamed into the candidate's layout
    expected: dict[str, Tensor]


@cache
def _signature(arch: str) -> _Signature:
    state = _reference_state(arch, 10, 1.0, 3)
    convs = [k for k, v in state.items() if v.dim() == 4]
    linears = [k for k, v in state.items() if v.dim() == 2]
    return _Signature(convs[0], int(state[convs[0]].shape[0]), linears[-1], int(state[linears[-1]].shape[1]))


@lru_cache(maxsize=256)
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
    if arch:
        _signature(arch)  # unknown names fail here with the list of known ones
    found, closest = _search(state, [arch] if arch else known_architectures(), num_classes, width)
    if found is not None:
        return found
    if arch:
        detail = closest.problem + _advice(closest, num_classes) if closest else _missing_entry_points(arch, state)
        other, _ = _search(state, [a for a in known_architectures() if a != arch], None, None)
        instead = (f". These tensors fit {other.arch} (width {other.width:g}, {other.num_classes} classes): "
                   f"drop --arch or pass --arch {other.arch}") if other else ""
        raise KdcamError(f"{source}: the tensors do not fit {arch}: {detail}{instead}")
    if closest is None or not _shares_names(state):
        shown = ", ".join(list(state)[:4])
        raise KdcamError(
            f"{source}: unknown tensor names ({shown}, ...): no kdcam architecture uses them. "
            "Pass --arch NAME if it is one of ours (kdcam import --help lists them), or "
            "--model-def path/to/file.py:NAME for your own class or factory"
        )
    raise KdcamError(
        f"{source}: no kdcam architecture fits these tensors; closest is {closest.label}: "
        f"{closest.problem}{_advice(closest, num_classes)}. "
        "Pass --arch/--num-classes to force one, or --model-def path/to/file.py:NAME for your own class"
    )


def _search(state: Mapping[str, Tensor], candidates: list[str], num_classes: int | None,
            width: float | None) -> tuple[Inferred | None, _Near | None]:
    """The first candidate (in any layout) that fits exactly, else the closest one.

    Candidates are tried in order, each in every layout, so the later (and costlier to
    build) torchvision models are built only when no zoo model fits.
    """
    closest: _Near | None = None
    layouts = [(layout, renamed) for layout, rename in LAYOUTS
               if len(renamed := {rename(k): v for k, v in state.items()}) == len(state)]
    for name in candidates:
        for layout, renamed in layouts:
            reference = _reference_state(name, 10, 1.0, 3)
            given = _with_counters(renamed, reference)
            names_problem = state_mismatch(reference, given, compare_shapes=False)
            if names_problem:  # tensor names do not depend on width or classes: no need to build
                near = _Near(_overlap(renamed, reference, compare_shapes=False), name, name, names_problem,
                             given, reference)
                closest = near if closest is None or near.score > closest.score else closest
                continue
            for guess in _guesses(name, renamed, num_classes, width):
                try:
                    expected = _reference_state(name, guess.num_classes, guess.width, guess.in_channels)
                except (KdcamError, ValueError, RuntimeError) as exc:  # e.g. a width the architecture cannot take
                    problem = str(exc)
                    expected = reference
                else:
                    problem = state_mismatch(expected, given) or ""
                    if not problem:
                        return Inferred(name, guess.width, guess.num_classes, guess.in_channels, layout, given), None
                label = f"{name} (width {guess.width:g}, {guess.num_classes} classes)"
                near = _Near(_overlap(given, expected), name, label, problem, given, expected)
                closest = near if closest is None or near.score > closest.score else closest
    return None, closest


def _overlap(given: Mapping[str, Tensor], expected: Mapping[str, Tensor], compare_shapes: bool = True) -> int:
    """Matching tensors minus missing and unknown ones: how close a candidate came."""
    matched = sum(
        1 for k, v in given.items() if k in expected and (not compare_shapes or v.shape == expected[k].shape)
    )
    return 2 * matched - len(given) - len(expected)


def _shares_names(state: Mapping[str, Tensor]) -> bool:
    """Whether any tensor name, in any known layout, is one a kdcam architecture uses."""
    ours = {k for name in known_architectures() for k in _reference_state(name, 10, 1.0, 3)}
    return any(rename(k) in ours for _, rename in LAYOUTS for k in state)


_STAGE_BLOCK = re.compile(r"^((?:layer|block)\d+(?:\.layer)?|blocks\.\d+|features)\.(\d+)\.")


def _blocks_per_stage(state: Mapping[str, Tensor]) -> dict[str, int]:
    """Blocks in each stage (``layer1.0 ... layer1.4`` -> 5), read from tensor names."""
    counts: dict[str, int] = {}
    for key in state:
        match = _STAGE_BLOCK.match(key)
        if match:
            counts[match.group(1)] = max(counts.get(match.group(1), 0), int(match.group(2)) + 1)
    return counts


def _advice(near: _Near, num_classes: int | None) -> str:
    """Why the closest candidate does not fit, in the user's terms, with the option to try."""
    known = set(known_architectures())
    missing = [k for k in near.expected if k not in near.given]
    unknown = [k for k in near.given if k not in near.expected]
    hints = []
    if missing and all(".shortcut." in k for k in missing) and not any(".shortcut." in k for k in near.given):
        twin = f"{near.arch}a" if f"{near.arch}a" in known else None
        hints.append(f"the file has no shortcut tensors where {near.arch} has 1x1-convolution shortcuts: these "
                     "look like zero-padding (option A) shortcuts" + (f": try --arch {twin}" if twin else ""))
    if unknown and not missing and all(".shortcut." in k for k in unknown) and near.arch.endswith("a"):
        twin = near.arch[:-1] if near.arch[:-1] in known else None
        hints.append(f"the file has 1x1-convolution (option B) shortcuts where {near.arch} zero-pads"
                     + (f": try --arch {twin}" if twin else ""))
    in_file, in_model = _blocks_per_stage(near.given), _blocks_per_stage(near.expected)
    if in_file and in_file.keys() == in_model.keys() and in_file != in_model:
        hints.append(f"the file has {'/'.join(map(str, in_file.values()))} blocks per stage, {near.arch} has "
                     f"{'/'.join(map(str, in_model.values()))} (a different depth; no kdcam architecture has "
                     "exactly this one unless named above)")
    classifier = near.given.get(_signature(near.arch).classifier)
    if num_classes and classifier is not None and classifier.dim() == 2 and classifier.shape[0] != num_classes:
        hints.append(f"the file's classifier has {classifier.shape[0]} classes but --num-classes asks for "
                     f"{num_classes}")
    first = near.given.get(_signature(near.arch).first_conv)
    model_first = near.expected.get(_signature(near.arch).first_conv)
    if (first is not None and model_first is not None and first.dim() == 4
            and first.shape[2:] != model_first.shape[2:]):
        hints.append(f"the first convolution is {first.shape[2]}x{first.shape[3]} where {near.arch}'s is "
                     f"{model_first.shape[2]}x{model_first.shape[3]} (an ImageNet-style stem? try a tv: "
                     "architecture)")
    return "".join(f". Hint: {hint}" for hint in hints)


@dataclass(frozen=True)
class _Guess:
    width: float
    num_classes: int
    in_channels: int


def _guesses(arch: str, state: Mapping[str, Tensor], num_classes: int | None, width: float | None) -> list[_Guess]:
    """Width/classes/channels read off the first conv and the classifier (none if they are absent).

    The width comes from the first convolution's channels or, where rounding under a width
    multiplier keeps those from saying it exactly (ShuffleNets), from the classifier's inputs.
    """
    sig = _signature(arch)
    conv, classifier = state.get(sig.first_conv), state.get(sig.classifier)
    if conv is None or classifier is None or conv.dim() != 4 or classifier.dim() != 2:
        return []
    classes = num_classes or int(classifier.shape[0])
    ratios = (conv.shape[0] / sig.base_channels, classifier.shape[1] / sig.base_features)
    widths = [width] if width else list(dict.fromkeys(w for r in ratios for w in (round(r, 4), r)))
    return [_Guess(w, classes, int(conv.shape[1])) for w in widths]


def _with_counters(state: dict[str, Tensor], expected: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Add BatchNorm ``num_batches_tracked`` counters that files from old PyTorch versions lack."""
    missing = [k for k in expected if k.endswith("num_batches_tracked") and k not in state
               and k.replace("num_batches_tracked", "running_mean") in state]
    if not missing:
        return state
    return {**state, **{k: torch.zeros((), dtype=torch.long) for k in missing}}


def _missing_entry_points(arch: str, state: Mapping[str, Tensor]) -> str:
    sig = _signature(arch)
    unknown = ", ".join(list(state)[:4])
    return f"it has no {sig.first_conv!r} / {sig.classifier!r} tensors (its tensors start with: {unknown}, ...)"
