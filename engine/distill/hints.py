"""FitNet hints (Romero et al.): a regressor maps a student tap onto the teacher's tap."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TeacherOutputs, TrainingSet, check_tap, cross_entropy, tap_shape
from engine.errors import KdcamError
from engine.models import TappedModel


class HintRegressor(nn.Module):
    """conv + BN + ReLU from the student's channels to the teacher's; strided or upsampled
    first when the two taps differ in spatial size (the usual ConvReg of the references)."""

    def __init__(self, student_shape: tuple[int, int, int], teacher_shape: tuple[int, int, int]):
        super().__init__()
        (s_c, s_h, _), (t_c, t_h, _) = student_shape, teacher_shape
        conv: nn.Module
        if s_h == t_h:
            conv = nn.Conv2d(s_c, t_c, kernel_size=3, padding=1)
        elif s_h == 2 * t_h:
            conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
        elif 2 * s_h == t_h:
            conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
        else:
            raise KdcamError(f"hint taps differ in size ({s_h} px vs {t_h} px); choose taps of equal or 2x size")
        self.net = nn.Sequential(conv, nn.BatchNorm2d(t_c), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FitNetHints(Distiller):
    """``hints``: CE + 100·MSE(regressor(student tap), teacher tap), tap = stage-2 output."""

    key = "hints"
    title = "FitNet hints"
    uses_taps = True
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["hints"]

    def __init__(self, student: TappedModel, teacher: TappedModel | None, options: dict[str, Any] | None = None,
                 training_set: TrainingSet | None = None):
        super().__init__(student, teacher, options, training_set)
        teacher = self.required_teacher
        self.student_tap = self.options["tap"] or student.default_hint_tap
        self.teacher_tap = self.options["teacher_tap"] or self.options["tap"] or teacher.default_hint_tap
        check_tap(student, self.student_tap, "student", self.key)
        check_tap(teacher, self.teacher_tap, "teacher", self.key)
        self.regressor = HintRegressor(
            tap_shape(student, self.student_tap, training_set), tap_shape(teacher, self.teacher_tap, training_set)
        )

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        mapped = self.regressor(taps[self.student_tap])
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "hint": o["hint_weight"] * F.mse_loss(mapped.float(), teacher.taps[self.teacher_tap].float()),
        }
