"""Methods without a teacher: the independent student (CE) and label smoothing."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TeacherOutputs, cross_entropy


class IndependentStudent(Distiller):
    """``si``: the baseline every distillation method is compared with: plain CE."""

    key = "si"
    title = "independent student (CE)"
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["si"]
    uses_teacher = False

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        return {"ce": self.options["ce_weight"] * cross_entropy(logits, labels)}


class LabelSmoothing(Distiller):
    """``ls``: CE against labels smoothed by ε (0.1): the teacher-free regulariser KD is often compared with."""

    key = "ls"
    title = "label smoothing"
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["ls"]
    uses_teacher = False

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        return {"ce": self.options["ce_weight"] * cross_entropy(logits, labels, self.options["epsilon"])}
