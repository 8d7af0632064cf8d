"""How the report shows DESIGN §6's interpretation bands: names, colours and the thresholds drawn as guides.

The band of each mean is decided by the analysis and stored in results.json; the report only
draws it. The chart guide lines are the analysis's own band edges.
"""

from __future__ import annotations

from engine.analysis import bands as analysis_bands

BANDS = tuple(reversed(analysis_bands.BANDS))  # best first

# Restrained, colour-blind-friendlier tones: green, olive, amber, brick.
BAND_COLOURS = {
    "Excellent": "#2e7d4f",
    "Good": "#7aa33c",
    "Acceptable": "#d9a21b",
    "Problematic": "#b84a3a",
}
BAND_TINTS = {
    "Excellent": "#dcefe3",
    "Good": "#e9f2d9",
    "Acceptable": "#f8ecc9",
    "Problematic": "#f3dcd7",
}

METRIC_LABELS = {
    "pearson": "Pearson correlation",
    "l2_similarity": "L2 similarity",
    "iou": "IoU (maps > 0.5)",
    "kl": "KL divergence",
}

# (edge, band that starts at this edge) — the guide lines of each metric's chart.
BAND_THRESHOLDS: dict[str, list[tuple[float, str]]] = {
    metric: list(zip(edges, BANDS)) for metric, edges in analysis_bands.THRESHOLDS.items()
}


def band_colour(band: str | None) -> str:
    return BAND_COLOURS.get(band or "", "#888888")


def band_tint(band: str | None) -> str:
    return BAND_TINTS.get(band or "", "#f2f2f2")
