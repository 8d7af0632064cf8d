"""Hinton's logit matching: softened teacher probabilities as targets."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TeacherOutputs, cross_entropy


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T²·KL(softmax(t/T) ‖ softmax(s/T)), summed over classes, averaged over the batch.

    The T² factor keeps gradient magnitudes comparable across temperatures (Hinton et al.).
    """
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1).mean()
    return kl * temperature**2


class LogitKD(Distiller):
    """``kd``: 0.1·CE + 0.9·T²·KL with T = 4."""

    key = "kd"
    title = "logit matching (Hinton KD)"
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["kd"]

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "kd": o["kd_weight"] * kd_loss(logits, teacher.logits, o["temperature"]),
        }
