"""Decoupled KD (Zhao et al. 2022): the KD loss split into target-class and non-target parts."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS, STANDARDIZE_COMPANIONS
from engine.distill.base import Distiller, TeacherOutputs, cross_entropy
from engine.distill.kd import standardize

_MASK = 1000.0  # subtracted from the gold logit so it vanishes from the non-target softmax


def dkd_terms(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """(TCKD, NCKD), each T²-scaled and averaged over the batch.

    TCKD: KL between the binary distributions (p_gold, 1 − p_gold) of teacher and student.
    NCKD: KL between the distributions over the non-target classes (gold class masked out).
    """
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
    gold = F.one_hot(labels, s.shape[1]).bool()
    p_s, p_t = s.softmax(dim=1), t.softmax(dim=1)
    binary_s = torch.stack([(p_s * gold).sum(1), (p_s * ~gold).sum(1)], dim=1)
    binary_t = torch.stack([(p_t * gold).sum(1), (p_t * ~gold).sum(1)], dim=1)
    tckd = F.kl_div(binary_s.clamp_min(1e-12).log(), binary_t, reduction="sum") / s.shape[0]
    log_q_s = F.log_softmax(s - _MASK * gold, dim=1)
    q_t = F.softmax(t - _MASK * gold, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="sum") / s.shape[0]
    return tckd * temperature**2, nckd * temperature**2


class DecoupledKD(Distiller):
    """``dkd``: CE + min(epoch/20, 1)·(α·TCKD + β·NCKD), α = 1, β = 8, T = 4."""

    key = "dkd"
    title = "decoupled KD"
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["dkd"]
    companions: ClassVar[dict[str, dict[str, Any]]] = {"standardize": STANDARDIZE_COMPANIONS["dkd"]}

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        s, t = (standardize(logits), standardize(teacher.logits)) if o["standardize"] else (logits, teacher.logits)
        tckd, nckd = dkd_terms(s, t, labels, o["temperature"])
        ramp = min(epoch / o["warmup_epochs"], 1.0) if o["warmup_epochs"] > 0 else 1.0
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "tckd": ramp * o["alpha"] * tckd,
            "nckd": ramp * o["beta"] * nckd,
        }
