"""How the report shows DESIGN §6's interpretation bands: colours and the thresholds drawn as guides.

The band of each mean is decided by the analysis and stored in results.json; the report only
draws it with the contract's one table of band colours. The chart guide lines are the
analysis's own band edges.
"""

from __future__ import annotations

from engine.api.bands import BAND_COLOURS, BAND_TINTS, BANDS, THRESHOLDS
from engine.api.catalogue import METRIC_LABELS

__all__ = ["BANDS_BEST_FIRST", "BAND_COLOURS", "BAND_THRESHOLDS", "METRIC_LABELS", "band_colour", "band_tint"]

BANDS_BEST_FIRST = tuple(reversed(BANDS))

# (edge, band that starts at this edge) — the guide lines of each metric's chart.
BAND_THRESHOLDS: dict[str, list[tuple[float, str]]] = {
    metric: list(zip(edges, BANDS_BEST_FIRST[:len(edges)], strict=True)) for metric, edges in THRESHOLDS.items()
}


def band_colour(band: str | None) -> str:
    return BAND_COLOURS.get(band or "", "#888888")


def band_tint(band: str | None) -> str:
    return BAND_TINTS.get(band or "", "#f2f2f2")
