"""Attention transfer (Zagoruyko & Komodakis): match where activations are strong, per tap."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TeacherOutputs, TrainingSet, check_tap, cross_entropy, tap_shape
from engine.errors import KdcamError
from engine.models import TappedModel


def attention_map(features: Tensor) -> Tensor:
    """a = L2-normalise(flatten(mean over channels of F²)): one unit vector per image."""
    return F.normalize(features.float().pow(2).mean(dim=1).flatten(1), dim=1)


def at_loss(student_taps: list[Tensor], teacher_taps: list[Tensor]) -> Tensor:
    """Σ over taps of mean((a_s − a_t)²)."""
    pairs = zip(student_taps, teacher_taps, strict=True)
    return torch.stack([(attention_map(s) - attention_map(t)).pow(2).mean() for s, t in pairs]).sum()


class AttentionTransfer(Distiller):
    """``at``: CE + 1000·Σ_taps mean((a_s − a_t)²) over the shared taps after the first (``taps`` to choose);
    ``warmup_epochs`` > 0 ramps the AT term in linearly (none in the reference)."""

    key = "at"
    title = "attention transfer"
    uses_taps = True
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["at"]

    def __init__(self, student: TappedModel, teacher: TappedModel | None, options: dict[str, Any] | None = None,
                 training_set: TrainingSet | None = None):
        super().__init__(student, teacher, options, training_set)
        teacher = self.required_teacher
        # default: every tap both models share except the first, full-resolution one, as the
        # reference implementations do (RepDistiller feat[1:-1], mdistiller feats[1:])
        wanted = [t for t in self.options["taps"].split(",") if t] or [
            t for t in student.tap_names[1:] if t in teacher.tap_names
        ]
        for tap in wanted:
            check_tap(student, tap, "student", self.key)
            check_tap(teacher, tap, "teacher", self.key)
            if tap_shape(student, tap, training_set)[1:] != tap_shape(teacher, tap, training_set)[1:]:
                raise KdcamError(f"method 'at': tap {tap!r} has different spatial sizes in teacher and student")
        if not wanted:
            raise KdcamError("method 'at': teacher and student share no feature tap")
        self.taps = wanted

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        assert teacher is not None
        student_taps = [taps[t] for t in self.taps]
        teacher_taps = [teacher.taps[t] for t in self.taps]
        ramp = min(epoch / o["warmup_epochs"], 1.0) if o["warmup_epochs"] > 0 else 1.0
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "at": ramp * o["at_weight"] * at_loss(student_taps, teacher_taps),
        }
