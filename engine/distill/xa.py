"""Explanation alignment (e²KD, "Good Teachers Explain", Parchami-Araghi et al., ECCV 2024): the
student's Grad-CAM is pulled towards the teacher's for the same class, on top of CE and KD.

The student's map is computed *on the training graph*: the class score is differentiated with
respect to the CAM tap only (``torch.autograd.grad(..., inputs=tap, create_graph=True)``), so the
loss can flow back through the Grad-CAM weights into the student (a double backward from the tap
to the logits). The teacher's map is the analysis engine's own Grad-CAM (``engine.cam``), which
never records a graph through the teacher's weights.

Maps as e²KD's code: positive part of the Grad-CAM, bilinearly upsampled to the input size (so
taps of different sizes compare), then 1 − cosine similarity per image, averaged over the batch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.api.catalogue import METHOD_DEFAULTS
from engine.cam.compute import compute_cams
from engine.cam.methods import gradcam
from engine.cam.targets import OwnPrediction
from engine.distill.base import Distiller, TrainingSet, check_tap, cross_entropy
from engine.distill.kd import kd_loss
from engine.errors import KdcamError
from engine.models import TappedModel

TARGETS = ("teacher", "label")


def upsampled(raw: Tensor, size: tuple[int, int]) -> Tensor:
    """N x h x w raw Grad-CAM -> N x H x W: ReLU, then bilinear upsampling (align_corners=False)."""
    return F.interpolate(raw.float().clamp_min(0)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def gradcam_on_graph(logits: Tensor, activations: Tensor, classes: Tensor) -> Tensor:
    """Raw Grad-CAM (N x h x w) of ``classes`` at ``activations``, differentiable in both.

    Only d score / d tap is taken (``inputs`` is the tap alone, no parameter gradient is filled);
    ``create_graph`` keeps that gradient on the graph so a loss on the map trains the student.
    """
    rows = torch.arange(logits.shape[0], device=logits.device)
    score = logits[rows, classes].sum()
    (grads,) = torch.autograd.grad(score, activations, create_graph=True)
    return gradcam(activations, grads)


def explanation_loss(student_maps: Tensor, teacher_maps: Tensor) -> Tensor:
    """mean over images of 1 − cos(flatten(student map), flatten(teacher map))."""
    s, t = student_maps.flatten(1).float(), teacher_maps.flatten(1).float()
    return (1 - F.cosine_similarity(s, t, dim=1)).mean()


class ExplanationAlignment(Distiller):
    """``xa``: CE + KD (T = 1) + λ·(1 − cos(Grad-CAM_s, Grad-CAM_t)), λ = 1, for the teacher's top-1 class."""

    key = "xa"
    title = "explanation alignment (e2KD)"
    uses_taps = True
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["xa"]

    def __init__(self, student: TappedModel, teacher: TappedModel | None, options: dict[str, Any] | None = None,
                 training_set: TrainingSet | None = None):
        super().__init__(student, teacher, options, training_set)
        assert teacher is not None  # the base refuses a missing teacher
        o = self.options
        if o["target"] not in TARGETS:
            raise KdcamError(f"option xa.target must be one of {', '.join(TARGETS)}, got {o['target']!r}")
        if o["temperature"] <= 0:
            raise KdcamError(f"option xa.temperature must be positive, got {o['temperature']!r}")
        self.student_tap = o["tap"] or student.default_cam_tap
        self.teacher_tap = o["teacher_tap"] or o["tap"] or teacher.default_cam_tap
        check_tap(student, self.student_tap, "student", self.key)
        check_tap(teacher, self.teacher_tap, "teacher", self.key)

    def forward(self, images: Tensor, labels: Tensor, indices: Tensor, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The teacher's Grad-CAM first (it picks the class), then the student's on its training graph."""
        o = self.options
        assert self.teacher is not None
        target = OwnPrediction() if o["target"] == "teacher" else labels
        cams = compute_cams(self.teacher, images.detach(), target, "gradcam", self.teacher_tap)
        teacher_logits = cams.logits.float()
        classes = teacher_logits.argmax(dim=1) if o["target"] == "teacher" else labels
        size = (images.shape[-2], images.shape[-1])
        teacher_maps = upsampled(cams.raw, size)
        logits, taps = self.student.forward_taps(images)
        with torch.enable_grad():
            student_maps = upsampled(gradcam_on_graph(logits, taps[self.student_tap], classes), size)
        terms = {"ce": o["ce_weight"] * cross_entropy(logits, labels)}
        if o["kd_weight"] > 0:
            terms["kd"] = o["kd_weight"] * kd_loss(logits, teacher_logits, o["temperature"], o["standardize"])
        terms["xa"] = o["xa_weight"] * explanation_loss(student_maps, teacher_maps)
        return logits, terms
