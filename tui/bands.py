"""How the interpretation bands of DESIGN §6 look on screen (the thresholds live in the engine)."""

from __future__ import annotations

from rich.text import Text

from engine.analysis.bands import BANDS

BAND_STYLES = {
    "Excellent": "bold green",
    "Good": "cyan",
    "Acceptable": "yellow",
    "Problematic": "bold red",
}


def band_text(text: str, band: str | None) -> Text:
    return Text(text, style=BAND_STYLES.get(band or "", "dim"))


def legend() -> Text:
    """One line naming the bands in their colours, best first, with the thresholds."""
    legend = Text("bands: ")
    for band in reversed(BANDS):
        legend.append(f" {band} ", style=f"reverse {BAND_STYLES[band]}")
        legend.append(" ")
    legend.append(" Pearson,L2 >.85 ≥.7 ≥.5 · IoU >.75 ≥.6 ≥.4 · KL <.15 ≤.3 ≤.6", style="dim")
    return legend
