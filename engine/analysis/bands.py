"""Interpretation bands (DESIGN §6): how to read a metric's mean, and a row's overall band.

Torch-free and dependency-free: the TUI colours its leaderboard with these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: band names indexed by score: Problematic 0 … Excellent 3
BANDS = ("Problematic", "Acceptable", "Good", "Excellent")

#: (Excellent, Good, Acceptable) edges of each banded metric. Higher-is-better metrics use >
#: for Excellent and >= below it; KL (lower is better) uses < for Excellent and <= below it.
THRESHOLDS: dict[str, tuple[float, float, float]] = {
    "pearson": (0.85, 0.70, 0.50),
    "l2_similarity": (0.85, 0.70, 0.50),
    "iou": (0.75, 0.60, 0.40),
    "kl": (0.15, 0.30, 0.60),
}
LOWER_IS_BETTER = frozenset({"kl"})
BANDED = tuple(THRESHOLDS)


def band_score(metric: str, value: float | None) -> int:
    """3 Excellent, 2 Good, 1 Acceptable, 0 Problematic; a missing (None/NaN) mean scores 0."""
    if value is None or math.isnan(value):
        return 0
    if metric not in THRESHOLDS:
        raise KeyError(f"metric {metric!r} has no interpretation band; banded metrics: {', '.join(BANDED)}")
    excellent, good, acceptable = THRESHOLDS[metric]
    if metric in LOWER_IS_BETTER:
        if value < excellent:
            return 3
        if value <= good:
            return 2
        return 1 if value <= acceptable else 0
    if value > excellent:
        return 3
    if value >= good:
        return 2
    return 1 if value >= acceptable else 0


def band(metric: str, value: float | None) -> str:
    return BANDS[band_score(metric, value)]


def overall_score(means: Mapping[str, float | None]) -> int:
    """Average of the four metrics' scores, rounded half up (2.5 → 3, 1.25 → 1)."""
    scores = [band_score(metric, means.get(metric)) for metric in BANDED]
    return math.floor(sum(scores) / len(scores) + 0.5)


def overall_band(means: Mapping[str, float | None]) -> str:
    return BANDS[overall_score(means)]
