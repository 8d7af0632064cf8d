"""How the interpretation bands of DESIGN §6 look on screen (names, thresholds and styles live in the contract)."""

from __future__ import annotations

from rich.text import Text

from engine.api.bands import BANDS, band_style


def band_text(text: str, band: str | None) -> Text:
    return Text(text, style=band_style(band))


def legend() -> Text:
    """One line naming the bands in their colours, best first, with the thresholds."""
    legend = Text("bands: ")
    for band in reversed(BANDS):
        legend.append(f" {band} ", style=f"reverse {band_style(band)}")
        legend.append(" ")
    legend.append(" Pearson,L2 >.85 ≥.7 ≥.5 · IoU >.75 ≥.6 ≥.4 · KL <.15 ≤.3 ≤.6", style="dim")
    return legend
