"""Per-image map metrics (DESIGN §6) and per-pair output statistics, batched in torch.

Every function takes a batch of maps ``N x H x W`` in [0, 1] (any float dtype, any device)
and returns one value per image, computed for the whole batch at once: an analysis of ten
thousand images and seven models is a few hundred tensor operations, never a Python loop
over images.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: teacher-vs-student map metrics, in the order they are reported
PAIR_METRICS = ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance")
#: the four metrics that carry an interpretation band
BANDED_METRICS = ("pearson", "l2_similarity", "iou", "kl")

KL_EPS = 1e-8
IOU_THRESHOLD = 0.5


def _flat(maps: Tensor) -> Tensor:
    return maps.reshape(maps.shape[0], -1).float()


def _correlation(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise Pearson correlation of two N x n matrices; NaN where a row is constant."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denominator = torch.sqrt((a * a).sum(dim=1) * (b * b).sum(dim=1))
    return torch.where(denominator > 0, (a * b).sum(dim=1) / denominator, torch.full_like(denominator, torch.nan))


def pearson(t: Tensor, s: Tensor) -> Tensor:
    """Correlation of the n pixel values of each pair of maps."""
    return _correlation(_flat(t), _flat(s))


def l2_similarity(t: Tensor, s: Tensor) -> Tensor:
    """1 − sqrt(mean((T − S)²)): 1 for identical maps, 0 for opposite binary maps."""
    return 1.0 - torch.sqrt(((_flat(t) - _flat(s)) ** 2).mean(dim=1))


def iou(t: Tensor, s: Tensor, threshold: float = IOU_THRESHOLD) -> Tensor:
    """|{T>0.5} ∩ {S>0.5}| / |{T>0.5} ∪ {S>0.5}|, and 1 when both sets are empty."""
    a, b = _flat(t) > threshold, _flat(s) > threshold
    intersection = (a & b).sum(dim=1).float()
    union = (a | b).sum(dim=1).float()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def kl(t: Tensor, s: Tensor) -> Tensor:
    """Σ p·log((p + 1e-8)/(q + 1e-8)) with p = T/ΣT, q = S/ΣS (teacher map as the reference)."""
    p, q = _flat(t), _flat(s)
    p = p / p.sum(dim=1, keepdim=True)
    q = q / q.sum(dim=1, keepdim=True)
    return (p * torch.log((p + KL_EPS) / (q + KL_EPS))).sum(dim=1)


def average_ranks(x: Tensor) -> Tensor:
    """1-based ranks of every row of an N x n matrix, ties sharing their mean rank.

    One sort per row; a tie group's first and last sorted positions come from running
    max/min scans, so the cost is the sort plus a few elementwise passes.
    """
    ordered, order = torch.sort(x, dim=1)
    n = x.shape[1]
    position = torch.arange(n, device=x.device).expand_as(ordered)
    starts_group = torch.ones_like(ordered, dtype=torch.bool)
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends_group = torch.ones_like(starts_group)
    ends_group[:, :-1] = starts_group[:, 1:]
    first = torch.where(starts_group, position, torch.zeros_like(position)).cummax(dim=1).values
    last = torch.where(ends_group, position, torch.full_like(position, n)).flip(1).cummin(dim=1).values.flip(1)
    mean_rank = (first + last).to(x.dtype) / 2 + 1
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(t: Tensor, s: Tensor, t_ranks: Tensor | None = None) -> Tensor:
    """Spearman rank correlation: Pearson of average ranks (``t_ranks`` reuses the teacher's)."""
    if t_ranks is None:
        t_ranks = average_ranks(_flat(t))
    return _correlation(t_ranks, average_ranks(_flat(s)))


def peak_positions(maps: Tensor) -> Tensor:
    """(row, column) of each map's first maximum in row-major order, N x 2."""
    width = maps.shape[-1]
    flat_index = _flat(maps).argmax(dim=1)
    return torch.stack((flat_index // width, flat_index % width), dim=1)


def peak_distance(t: Tensor, s: Tensor) -> Tensor:
    """Euclidean distance in pixels between the two maps' peaks."""
    return (peak_positions(t) - peak_positions(s)).float().norm(dim=1)


def pair_metrics(t: Tensor, s: Tensor, t_ranks: Tensor | None = None) -> dict[str, Tensor]:
    """Every teacher-vs-student map metric of DESIGN §6, one value per image each.

    ``t_ranks`` (``average_ranks`` of the flattened teacher maps) saves re-ranking the
    teacher's maps for every student."""
    return {
        "pearson": pearson(t, s),
        "l2_similarity": l2_similarity(t, s),
        "iou": iou(t, s),
        "kl": kl(t, s),
        "spearman": spearman(t, s, t_ranks),
        "peak_distance": peak_distance(t, s),
    }


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """1.0 when a map's peak lies inside the object mask, else 0.0."""
    peaks = peak_positions(maps)
    rows = torch.arange(maps.shape[0], device=maps.device)
    return masks[rows, peaks[:, 0], peaks[:, 1]].float()


def energy_in_mask(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of a map's total mass that lies inside the object mask (NaN for an all-zero map)."""
    flat, inside = _flat(maps), _flat(masks.to(maps.dtype))
    total = flat.sum(dim=1)
    return torch.where(total > 0, (flat * inside).sum(dim=1) / total.clamp_min(1e-12), torch.full_like(total, torch.nan))


def agreement(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    """1.0 where teacher and student make the same top-1 prediction."""
    return (teacher_logits.argmax(dim=1) == student_logits.argmax(dim=1)).float()


def output_kl(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    """KL(softmax(t) ‖ softmax(s)) per image, computed from log-probabilities for stability."""
    log_p = torch.log_softmax(teacher_logits.float(), dim=1)
    log_q = torch.log_softmax(student_logits.float(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def correct(logits: Tensor, labels: Tensor) -> Tensor:
    """1.0 where the top-1 prediction is the label; its mean is the accuracy."""
    return (logits.argmax(dim=1) == labels).float()
