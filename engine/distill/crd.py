"""Contrastive representation distillation (Tian et al. 2020).

Student and teacher penultimate features are embedded into a shared 128-d unit sphere.
In the paper form each sample is contrasted against K = 16384 negatives read from two
momentum memory banks (one per view, one slot per training image, negatives drawn from
other classes) with the NCE objective; the ``infonce`` option contrasts against the
other samples of the batch instead (no memory, no dataset indices needed).

Across ranks (DDP) both forms see the *global* batch, as one process would: the bank is
updated with every rank's embeddings and indices (all-gathered), negatives are drawn for
the whole global batch from the same RNG state on every rank, so the bank stays identical
everywhere; InfoNCE scores this rank's anchors against the all-gathered batch, with
gradients flowing back through the gather.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine import distributed
from engine.api.catalogue import METHOD_DEFAULTS
from engine.distill.base import Distiller, TeacherOutputs, TrainingSet, cross_entropy, pooled_features, tap_shape
from engine.errors import KdcamError
from engine.models import TappedModel

_EPS = 1e-7


class Embed(nn.Module):
    """Linear projection onto the unit sphere."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.linear(x), dim=1)


def nce_loss(scores: Tensor, num_data: int) -> Tensor:
    """NCE loss for (batch, 1 + K) unnormalised probabilities, the positive in column 0.

    With noise distribution P_n = 1/N and K noise samples, the posterior that a score x
    came from the data is x / (x + K·P_n); the loss is the negative log-likelihood of
    "positive is data, negatives are noise", summed over columns, averaged over the batch.
    """
    k = scores.shape[1] - 1
    noise = k / num_data
    log_d1 = torch.log(scores[:, 0] / (scores[:, 0] + noise + _EPS))
    log_d0 = torch.log(noise / (scores[:, 1:] + noise + _EPS))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


def infonce_loss(student_emb: Tensor, teacher_emb: Tensor, temperature: float) -> Tensor:
    """Symmetric in-batch InfoNCE: each student embedding must pick its own teacher embedding.

    Under DDP the candidates are the global batch and the mean runs over this rank's anchors
    (rows ``offset``…): the trainer's per-rank weighting turns that into the global mean.
    """
    all_student, offset = distributed.gather_rows(student_emb, with_grad=True)
    all_teacher, _ = distributed.gather_rows(teacher_emb, with_grad=True)
    target = torch.arange(offset, offset + student_emb.shape[0], device=student_emb.device)
    return 0.5 * (F.cross_entropy(student_emb @ all_teacher.t() / temperature, target)
                  + F.cross_entropy(teacher_emb @ all_student.t() / temperature, target))


class ContrastMemory(nn.Module):
    """Two memory banks of unit vectors, one slot per training image, updated with momentum.

    The normalising constants Z are estimated once, on the first batch, as in the paper,
    and kept as buffers so a resumed run uses the same ones.
    """

    memory_student: Tensor
    memory_teacher: Tensor
    z_student: Tensor
    z_teacher: Tensor
    labels: Tensor
    by_class: Tensor
    class_start: Tensor
    class_count: Tensor

    def __init__(self, dim: int, labels: Tensor, num_negatives: int, temperature: float, momentum: float):
        super().__init__()
        num_data = labels.numel()
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_student", torch.rand(num_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_teacher", torch.rand(num_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))
        # images grouped by class, so "K negatives from other classes" is one vectorised draw
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=int(labels.max()) + 1)
        self.register_buffer("labels", labels.clone(), persistent=False)
        self.register_buffer("by_class", order, persistent=False)
        self.register_buffer("class_start", torch.cumsum(counts, 0) - counts, persistent=False)
        self.register_buffer("class_count", counts, persistent=False)
        if bool((counts == num_data).any()):
            raise KdcamError("CRD needs training images of at least two classes to draw negatives")
        self.num_data = num_data
        self.num_negatives = num_negatives
        self.temperature = temperature
        self.momentum = momentum

    def sample_negatives(self, indices: Tensor) -> Tensor:
        """(batch, K) indices of training images whose class differs from each anchor's."""
        cls = self.labels[indices]
        start, count = self.class_start[cls], self.class_count[cls]
        span = (self.num_data - count).unsqueeze(1)
        draw = (torch.rand(indices.shape[0], self.num_negatives, device=indices.device) * span).long()
        draw = torch.minimum(draw, span - 1)
        draw = draw + (draw >= start.unsqueeze(1)) * count.unsqueeze(1)  # skip the anchor's class block
        return self.by_class[draw]

    def forward(self, student_emb: Tensor, teacher_emb: Tensor, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Scores (batch, 1 + K) for the student view and the teacher view, then the memory update.

        Column 0 is the anchor's own slot, columns 1..K its negatives. Each score is
        exp(memory row · embedding / τ) / Z; the student embedding is scored against the
        teacher memory and vice versa. Scoring against the whole bank and then picking K
        columns reads the bank once per batch instead of copying B·K rows (for K = 16384
        that copy is a gigabyte per batch); the numbers are the same.
        """
        all_indices, offset = distributed.gather_rows(indices)  # the global batch, in one process's order
        negatives = self.sample_negatives(all_indices)[offset : offset + indices.shape[0]]
        slots = torch.cat([indices.unsqueeze(1), negatives], dim=1)
        with torch.autocast(student_emb.device.type, enabled=False):
            student_emb, teacher_emb = student_emb.float(), teacher_emb.float()
            logits_student = (student_emb @ self.memory_teacher.t()).gather(1, slots)
            logits_teacher = (teacher_emb @ self.memory_student.t()).gather(1, slots)
            scores_student = torch.exp(logits_student / self.temperature)
            scores_teacher = torch.exp(logits_teacher / self.temperature)
            if self.z_student < 0:  # the mean over the global batch: a sum and a count over ranks
                sums = torch.stack([scores_student.detach().double().sum(), scores_teacher.detach().double().sum(),
                                    torch.tensor(float(scores_student.numel()), device=indices.device).double()])
                total_s, total_t, count = distributed.all_reduce(sums).tolist()
                self.z_student.fill_(total_s / count * self.num_data)
                self.z_teacher.fill_(total_t / count * self.num_data)
            scores_student = scores_student / self.z_student
            scores_teacher = scores_teacher / self.z_teacher
        with torch.no_grad():
            all_student, _ = distributed.gather_rows(student_emb.detach())
            all_teacher, _ = distributed.gather_rows(teacher_emb.detach())
            self.memory_student = self._updated(self.memory_student, all_indices, all_student)
            self.memory_teacher = self._updated(self.memory_teacher, all_indices, all_teacher)
        return scores_student, scores_teacher

    def _updated(self, memory: Tensor, indices: Tensor, emb: Tensor) -> Tensor:
        """A new bank with the anchors' rows moved towards their embeddings and renormalised.

        Out of place: the old bank is saved by autograd for this batch's backward pass.
        """
        mixed = memory[indices] * self.momentum + emb.detach() * (1 - self.momentum)
        return memory.index_copy(0, indices, F.normalize(mixed, dim=1))


class ContrastiveRD(Distiller):
    """``crd``: CE + 0.8·CRD; 128-d embeddings, τ = 0.07, NCE over a momentum-0.5 bank of K = 16384."""

    key = "crd"
    title = "contrastive representation distillation"
    uses_taps = True
    defaults: ClassVar[dict[str, Any]] = METHOD_DEFAULTS["crd"]

    def __init__(self, student: TappedModel, teacher: TappedModel | None, options: dict[str, Any] | None = None,
                 training_set: TrainingSet | None = None):
        super().__init__(student, teacher, options, training_set)
        teacher = self.required_teacher
        o = self.options
        if o["mode"] not in ("nce", "infonce"):
            raise KdcamError(f"option crd.mode must be 'nce' or 'infonce', got {o['mode']!r}")
        if o["temperature"] <= 0 or o["embed_dim"] < 1 or o["num_negatives"] < 1 or not 0 <= o["momentum"] < 1:
            raise KdcamError("CRD needs temperature > 0, embed_dim ≥ 1, num_negatives ≥ 1 and 0 ≤ momentum < 1")
        self.student_tap, self.teacher_tap = student.default_cam_tap, teacher.default_cam_tap
        self.embed_student = Embed(tap_shape(student, self.student_tap, training_set)[0], o["embed_dim"])
        self.embed_teacher = Embed(tap_shape(teacher, self.teacher_tap, training_set)[0], o["embed_dim"])
        self.memory: ContrastMemory | None = None
        if o["mode"] == "nce":
            if training_set is None:
                raise KdcamError("CRD's memory bank needs the training set (size and labels)")
            self.memory = ContrastMemory(o["embed_dim"], training_set.labels, o["num_negatives"], o["temperature"], o["momentum"])

    def losses(self, logits: Tensor, taps: dict[str, Tensor], teacher: TeacherOutputs | None, labels: Tensor,
               indices: Tensor, epoch: int) -> dict[str, Tensor]:
        assert teacher is not None  # uses_teacher: the base always passes the teacher's outputs
        o = self.options
        student_emb = self.embed_student(pooled_features(taps, self.student_tap))
        teacher_emb = self.embed_teacher(pooled_features(teacher.taps, self.teacher_tap))
        if self.memory is None:
            with torch.autocast(student_emb.device.type, enabled=False):
                contrast = infonce_loss(student_emb.float(), teacher_emb.float(), o["temperature"])
        else:
            scores_s, scores_t = self.memory(student_emb, teacher_emb, indices)
            contrast = nce_loss(scores_s, self.memory.num_data) + nce_loss(scores_t, self.memory.num_data)
        return {"ce": o["ce_weight"] * cross_entropy(logits, labels), "crd": o["crd_weight"] * contrast}
