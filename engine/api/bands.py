"""Interpretation bands (DESIGN §6): how to read a metric's mean, and a row's overall band.

Torch-free and dependency-free, part of the contract: the analysis decides bands with these,
the CLI, the TUI and the report colour them with the one table of colours below.
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


#: how each band looks: a Rich style for terminals (CLI and TUI), a hex colour and a light tint for the report
BAND_STYLES: dict[str, str] = {
    "Excellent": "bold green",
    "Good": "cyan",
    "Acceptable": "yellow",
    "Problematic": "bold red",
}
BAND_COLOURS: dict[str, str] = {  # restrained, colour-blind-friendlier tones: green, olive, amber, brick
    "Excellent": "#2e7d4f",
    "Good": "#7aa33c",
    "Acceptable": "#d9a21b",
    "Problematic": "#b84a3a",
}
BAND_TINTS: dict[str, str] = {
    "Excellent": "#dcefe3",
    "Good": "#e9f2d9",
    "Acceptable": "#f8ecc9",
    "Problematic": "#f3dcd7",
}


def band_style(band_name: str | None) -> str:
    """The terminal style of a band; unknown or missing bands are dim."""
    return BAND_STYLES.get(band_name or "", "dim")
