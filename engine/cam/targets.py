"""What a CAM explains: a scalar score per image, computed from the model's output.

A ``Target`` scores a batch of outputs; ``rows`` says which analysed image each output
row belongs to (Score-CAM scores many masked copies of one image, so rows repeat).
``bind`` is called once with the clean forward pass's outputs: that is how "the model's
own prediction" is fixed before masked inputs (Score-CAM) could change it.

Spec strings (``resolve_targets``): ``label`` (ground truth, the default, so every model
explains the same class), ``teacher`` (the teacher's prediction), ``own`` (the model's
own prediction), ``class:K`` (a fixed class), and for embedding models ``cosine``
(cosine similarity to a reference embedding) and ``norm`` (the embedding's L2 norm).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import KdcamError

TARGET_SPECS = ("label", "teacher", "own", "class:K", "cosine", "norm")


class Target(ABC):
    """Base: a differentiable score per output row."""

    def bind(self, outputs: Tensor) -> Target:
        """The target to use given the clean outputs of the analysed images (checked against them)."""
        return self

    @abstractmethod
    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        """One score per row of ``outputs``; ``rows`` maps each row to its analysed image."""


class ClassTarget(Target):
    """The logit of one class per image (pre-softmax, as pytorch-grad-cam's ClassifierOutputTarget)."""

    def __init__(self, classes: Tensor | Sequence[int]):
        self.classes = torch.as_tensor(classes, dtype=torch.long).flatten()

    def bind(self, outputs: Tensor) -> Target:
        if len(self.classes) != outputs.shape[0]:
            raise KdcamError(f"{len(self.classes)} target classes for {outputs.shape[0]} images")
        if len(self.classes) and not 0 <= int(self.classes.min()) <= int(self.classes.max()) < outputs.shape[1]:
            raise KdcamError(f"target class out of range: the model has {outputs.shape[1]} classes")
        return ClassTarget(self.classes.to(outputs.device))

    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        return outputs.gather(1, self.classes[rows, None])[:, 0]


class OwnPrediction(Target):
    """The class the model itself predicts on the unmasked image."""

    def bind(self, outputs: Tensor) -> Target:
        return ClassTarget(outputs.detach().argmax(dim=1))

    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        raise RuntimeError("OwnPrediction must be bound to the clean outputs first")


class FixedClass(Target):
    """The same class for every image."""

    def __init__(self, cls: int):
        self.cls = cls

    def bind(self, outputs: Tensor) -> Target:
        if not 0 <= self.cls < outputs.shape[1]:
            raise KdcamError(f"class:{self.cls} is out of range: the model has {outputs.shape[1]} classes")
        return self

    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        return outputs[:, self.cls]


class CosineToReference(Target):
    """Cosine similarity of the embedding to a reference (one D vector, or one per image: N x D)."""

    def __init__(self, reference: Tensor):
        self.reference = reference.detach()

    def bind(self, outputs: Tensor) -> Target:
        n, dims = outputs.shape
        if self.reference.shape[-1] != dims:
            raise KdcamError(f"reference embedding has {self.reference.shape[-1]} dims, the model outputs {dims}")
        if self.reference.ndim == 2 and self.reference.shape[0] != n:
            raise KdcamError(f"{self.reference.shape[0]} reference embeddings for {n} images")
        return CosineToReference(self.reference.to(outputs.device, outputs.dtype))

    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        ref = self.reference[rows] if self.reference.ndim == 2 else self.reference.expand_as(outputs)
        return F.cosine_similarity(outputs, ref, dim=1)


class EmbeddingNorm(Target):
    """L2 norm of the embedding: where the model puts its feature energy."""

    def score(self, outputs: Tensor, rows: Tensor) -> Tensor:
        return outputs.norm(dim=1)


def resolve_targets(
    spec: str = "label",
    *,
    labels: Tensor | Sequence[int] | None = None,
    teacher_logits: Tensor | None = None,
    reference: Tensor | None = None,
) -> Target:
    """Turn a target spec string into a ``Target`` (errors name what is missing)."""
    if spec == "label":
        if labels is None:
            raise KdcamError("target 'label' needs the ground-truth labels")
        return ClassTarget(labels)
    if spec == "teacher":
        if teacher_logits is None:
            raise KdcamError("target 'teacher' needs the teacher's outputs")
        return ClassTarget(teacher_logits.detach().argmax(dim=1))
    if spec == "own":
        return OwnPrediction()
    if spec.startswith("class:"):
        try:
            cls = int(spec.removeprefix("class:"))
        except ValueError:
            raise KdcamError(f"bad target {spec!r}: expected class:K with an integer K") from None
        if cls < 0:
            raise KdcamError(f"bad target {spec!r}: the class index must be non-negative")
        return FixedClass(cls)
    if spec == "cosine":
        if reference is None:
            raise KdcamError("target 'cosine' needs a reference embedding")
        return CosineToReference(torch.as_tensor(reference))
    if spec == "norm":
        return EmbeddingNorm()
    raise KdcamError(f"unknown target {spec!r}; choose one of: {', '.join(TARGET_SPECS)}")


def as_target(targets: Target | Tensor | Sequence[int]) -> Target:
    """Accept a ``Target`` or plain class indices (one per image)."""
    return targets if isinstance(targets, Target) else ClassTarget(targets)
