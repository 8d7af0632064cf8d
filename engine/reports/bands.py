"""How the report shows DESIGN §6's interpretation bands: names, colours and the thresholds drawn as guides.

The band of each mean is decided by the analysis and stored in results.json; the report only
draws it. The thresholds here are the band edges of DESIGN §6, used for chart guide lines.
"""

from __future__ import annotations

BANDS = ("Excellent", "Good", "Acceptable", "Problematic")

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
    "pearson": [(0.85, "Excellent"), (0.70, "Good"), (0.50, "Acceptable")],
    "l2_similarity": [(0.85, "Excellent"), (0.70, "Good"), (0.50, "Acceptable")],
    "iou": [(0.75, "Excellent"), (0.60, "Good"), (0.40, "Acceptable")],
    "kl": [(0.15, "Excellent"), (0.30, "Good"), (0.60, "Acceptable")],
}


def band_colour(band: str | None) -> str:
    return BAND_COLOURS.get(band or "", "#888888")


def band_tint(band: str | None) -> str:
    return BAND_TINTS.get(band or "", "#f2f2f2")
