"""Hinton's logit matching: softened teacher probabilities as targets; optionally standardised logits."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS, STANDARDIZE_COMPANIONS
from engine.distill.base import Distiller, TeacherOutputs, cross_entropy

#: added to the standard deviation, as in the logit-standardisation paper's code
STD_EPS = 1e-7


def standardize(logits: Tensor) -> Tensor:
    """Per-sample z-score (Sun et al., CVPR 2024): (z − mean) / (std + 1e-7), unbiased std as their code.

    The softmax then sees only the logits' relations, not their range, so a small student is not
    asked to match a large teacher's logit magnitude.
    """
    z = logits.float()
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + STD_EPS)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, standardized: bool = False) -> Tensor:
    """T²·KL(softmax(t/T) ‖ softmax(s/T)), summed over classes, averaged over the batch.

    The T² factor keeps gradient magnitudes comparable across temperatures (Hinton et al.).
    With ``standardized`` both logit rows are z-scored first (``standardize``).
    """
    if standardized:
        student_logits, teacher_logits = standardize(student_logits), standardize(teacher_logits)
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1).mean()
    return kl * temperature**2


class LogitKD(Distiller):
    """``kd``: 0.1·CE + 0.9·T²·KL with T = 4; ``standardize=true``: z-scored logits, weight 9 at T = 2."""

    key = "kd"
    title = "logit matching (Hinton KD)"
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["kd"]
    companions: ClassVar[dict[str, dict[str, Any]]] = {"standardize": STANDARDIZE_COMPANIONS["kd"]}

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "kd": o["kd_weight"] * kd_loss(logits, teacher.logits, o["temperature"], o["standardize"]),
        }
