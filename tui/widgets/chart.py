"""A line chart drawn with braille dots (2x4 per cell): live curves without graphics support."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.text import Text
from textual.widget import Widget

_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][column] within a cell


def braille_lines(values: Sequence[float | None], width: int, height: int) -> list[str]:
    """Plot ``values`` (left to right, stretched to ``width`` cells) in ``height`` rows of
    braille; consecutive points are joined vertically so a steep curve stays continuous."""
    width, height = max(1, width), max(1, height)
    cells = [[0] * width for _ in range(height)]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ["" for _ in range(height)]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    dots_x, dots_y = 2 * width, 4 * height

    def dot_y(value: float) -> int:
        return round((value - low) / span * (dots_y - 1))

    # Resample linearly to one value per dot column; gaps (None/NaN) stay gaps.
    raw = np.array([v if v is not None and math.isfinite(v) else np.nan for v in values], dtype=np.float64)
    positions = np.linspace(0, len(raw) - 1, dots_x) if len(raw) > 1 else np.zeros(dots_x)
    resampled = np.interp(positions, np.arange(len(raw)), np.nan_to_num(raw, nan=low))
    gaps = np.isnan(raw)[np.rint(positions).astype(int)]
    previous: int | None = None
    for x in range(dots_x):
        if gaps[x]:
            previous = None
            continue
        y = dot_y(float(resampled[x]))
        start_y = y if previous is None else previous
        for yy in range(min(y, start_y), max(y, start_y) + 1):
            row = height - 1 - yy // 4
            cells[row][x // 2] |= _DOT_BITS[3 - yy % 4][x % 2]
        previous = y
    return ["".join(chr(0x2800 + bits) for bits in row) for row in cells]


class BrailleChart(Widget):
    """A titled curve; ``values`` is replaced wholesale (cheap: a few hundred points at most)."""

    DEFAULT_CSS = "BrailleChart { height: 4; }"

    def __init__(self, label: str, style: str = "cyan", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.style = style
        self.values: list[float | None] = []

    def set_values(self, values: Sequence[float | None]) -> None:
        """The curve's points, left to right; None (a missing value) leaves a gap."""
        self.values = list(values)
        self.refresh()

    def render(self) -> Text:
        finite = [v for v in self.values if v is not None and math.isfinite(v)]
        caption = f"{self.label}"
        if finite:
            caption += f"  last {finite[-1]:.4g}  min {min(finite):.4g}  max {max(finite):.4g}"
        text = Text(caption + "\n", style="bold")
        plot_height = max(1, self.size.height - 1)
        for i, line in enumerate(braille_lines(self.values, self.size.width, plot_height)):
            text.append(line, style=self.style)
            if i < plot_height - 1:
                text.append("\n")
        return text
