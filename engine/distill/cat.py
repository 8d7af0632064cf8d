"""Class activation transfer (CAT-KD, Guo et al., CVPR 2023): the student matches the teacher's
class activation maps, i.e. *where* each class's evidence lies, pooled to a coarse grid.

A model whose head is ``Linear(global-average-pool(F))`` has one class activation map per class,
``CAM_k = W_k · F`` (the classifier applied as a 1x1 convolution before pooling; the bias only
shifts every position alike and is left out, as CAT-KD's converted models have none). Both maps
are average-pooled to ``resolution`` x ``resolution``, optionally L2-normalised per map, and
compared with a mean squared error. A student without such a head gets a learned 1x1
convolution from its last feature map to one map per class instead.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TrainingSet, cross_entropy, tap_shape
from engine.errors import KdcamError
from engine.models import TappedModel

CLASS_PICKS = ("top", "bottom")


def linear_head(model: TappedModel, training_set: TrainingSet | None) -> nn.Linear | None:
    """The classifier that maps the globally pooled ``default_cam_tap`` to the logits, if there is one.

    Found by shape (an ``nn.Linear`` from the tap's channels to the classes) and confirmed on one
    probe batch: logits == Linear(mean over positions of the tap). Anything else (a user model with a
    non-linear head) returns None.
    """
    tap = model.default_cam_tap
    channels, _, _ = tap_shape(model, tap, training_set)
    candidates = [m for m in model.modules()
                  if isinstance(m, nn.Linear) and m.in_features == channels and m.out_features == model.num_classes]
    if not candidates:
        return None
    size = training_set.input_size if training_set else 32
    in_channels = training_set.in_channels if training_set else 3
    device = next(model.parameters()).device
    probe = torch.randn(2, in_channels, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, taps = model.forward_taps(probe)
            pooled = taps[tap].float().mean(dim=(2, 3))
            for linear in candidates:
                if torch.allclose(linear(pooled), logits.float(), rtol=1e-4, atol=1e-4):
                    return linear
    finally:
        model.train(was_training)
    return None


def class_activation_maps(features: Tensor, linear: nn.Linear) -> Tensor:
    """N x K x h x w: the classifier's weights applied at every position of ``features`` (N x C x h x w)."""
    return torch.einsum("nchw,kc->nkhw", features.float(), linear.weight.float())


def pick_classes(teacher_logits: Tensor, fraction: float, pick: str) -> Tensor | None:
    """Per sample, the indices (N x k) of the classes whose maps are transferred; None for all of them.

    k = ceil(fraction · K) classes ranked by the teacher's logits, highest first ("top") or lowest
    first ("bottom"), as CAT-KD's partial-transfer study.
    """
    classes = teacher_logits.shape[1]
    k = max(1, math.ceil(fraction * classes - 1e-9))
    if k >= classes:
        return None
    return teacher_logits.topk(k, dim=1, largest=pick == "top").indices


def cat_loss(student_cams: Tensor, teacher_cams: Tensor, resolution: int, normalize: bool) -> Tensor:
    """mean((norm(pool(CAM_s)) − norm(pool(CAM_t)))²) over samples, classes and the pooled grid."""
    s = F.adaptive_avg_pool2d(student_cams.float(), resolution)
    t = F.adaptive_avg_pool2d(teacher_cams.float(), resolution)
    if normalize:
        s, t = F.normalize(s.flatten(2), dim=2), F.normalize(t.flatten(2), dim=2)
    return F.mse_loss(s, t)


class ClassActivationTransfer(Distiller):
    """``cat``: CE + β·mean((pool(CAM_s) − pool(CAM_t))²), β = 4.5, 2x2 maps (CAT-KD's code)."""

    key = "cat"
    title = "class activation transfer (CAT-KD)"
    uses_taps = True
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["cat"]

    def __init__(self, student: TappedModel, teacher: TappedModel | None, options: dict[str, Any] | None = None,
                 training_set: TrainingSet | None = None):
        super().__init__(student, teacher, options, training_set)
        assert teacher is not None  # the base refuses a missing teacher
        o = self.options
        if not 0 < o["class_fraction"] <= 1:
            raise KdcamError(f"option cat.class_fraction must be in (0, 1], got {o['class_fraction']!r}")
        if o["class_pick"] not in CLASS_PICKS:
            raise KdcamError(f"option cat.class_pick must be one of {', '.join(CLASS_PICKS)}, got {o['class_pick']!r}")
        if o["resolution"] < 1:
            raise KdcamError(f"option cat.resolution must be at least 1, got {o['resolution']!r}")
        head = linear_head(teacher, training_set)
        if head is None:
            raise KdcamError(
                f"method 'cat' needs a teacher whose classifier is one linear layer on the globally pooled "
                f"{teacher.default_cam_tap!r} features (its class activation maps come from those weights)")
        self.teacher_head = [head]  # a list: the teacher's layer must not register as this module's child
        self.student_tap = student.default_cam_tap
        self.teacher_tap = teacher.default_cam_tap
        student_head = linear_head(student, training_set)
        # the student's own classifier gives its maps (the paper); a learned 1x1 projection otherwise
        self.projection: nn.Conv2d | None = None
        if student_head is None:
            channels = tap_shape(student, self.student_tap, training_set)[0]
            self.projection = nn.Conv2d(channels, student.num_classes, kernel_size=1, bias=False)
        self.student_head = [student_head]

    def student_cams(self, features: Tensor) -> Tensor:
        head = self.student_head[0]
        if head is not None:
            return class_activation_maps(features, head)
        assert self.projection is not None
        projected: Tensor = self.projection(features)
        return projected.float()

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: tuple[Tensor, dict[str, Tensor]] | None,
               labels: Tensor, indices: Tensor, epoch: int) -> dict[str, Tensor]:
        o = self.options
        assert teacher is not None
        teacher_logits, teacher_taps = teacher
        cams_t = class_activation_maps(teacher_taps[self.teacher_tap], self.teacher_head[0])
        cams_s = self.student_cams(taps[self.student_tap])
        picked = pick_classes(teacher_logits, o["class_fraction"], o["class_pick"])
        if picked is not None:
            cams_t = cams_t.gather(1, picked[:, :, None, None].expand(-1, -1, *cams_t.shape[2:]))
            cams_s = cams_s.gather(1, picked[:, :, None, None].expand(-1, -1, *cams_s.shape[2:]))
        return {
            "ce": o["ce_weight"] * cross_entropy(logits, labels),
            "cat": o["cat_weight"] * cat_loss(cams_s, cams_t, o["resolution"], o["normalize"]),
        }
