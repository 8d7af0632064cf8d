"""Heatmap pictures from CAM arrays with numpy and Pillow only (no torch, no matplotlib):
colour a map, blend it over the image, and lay a labelled panel out as one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# A jet-like ramp (blue → cyan → green → yellow → red), the convention of CAM papers.
_ANCHORS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_COLOURS = np.array([[0, 0, 143], [0, 160, 255], [40, 220, 80], [255, 220, 0], [200, 0, 0]], dtype=np.float64)
COLORMAP = np.stack([np.interp(np.linspace(0, 1, 256), _ANCHORS, _COLOURS[:, c]) for c in range(3)], axis=1
                    ).round().astype(np.uint8)  # 256 x 3 lookup table


def colourise(cam: np.ndarray) -> np.ndarray:
    """uint8 H x W map (0..255) -> uint8 H x W x 3 colours."""
    return COLORMAP[np.asarray(cam, dtype=np.uint8)]


def as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The coloured map blended over the image (alpha = weight of the map)."""
    blended = (1 - alpha) * as_rgb(image).astype(np.float32) + alpha * colourise(cam).astype(np.float32)
    return blended.round().clip(0, 255).astype(np.uint8)


def picture(image: np.ndarray, cam: np.ndarray | None, blend: bool) -> Image.Image:
    """What a card shows: the image (cam None), the overlay, or the raw coloured map."""
    if cam is None:
        return Image.fromarray(as_rgb(image))
    return Image.fromarray(overlay(image, cam) if blend else colourise(cam))


@dataclass(frozen=True)
class Card:
    """One tile of the browser panel."""

    title: str  # "original" or the model name
    caption: str  # "pred circle 91%"
    correct: bool | None  # None for the original
    picture: Image.Image


def panel_png(cards: Sequence[Card], path: Path, scale: int = 4) -> Path:
    """Cards side by side, each upscaled ``scale``x (nearest), titled, caption green when right
    and red when wrong; written atomically."""
    from engine.api import atomic

    tile = max(card.picture.width for card in cards) * scale
    text_h = 28
    canvas = Image.new("RGB", (len(cards) * (tile + 8) + 8, tile + 2 * text_h + 8), "white")
    draw = ImageDraw.Draw(canvas)
    for i, card in enumerate(cards):
        x = 8 + i * (tile + 8)
        canvas.paste(card.picture.resize((tile, tile), Image.Resampling.NEAREST), (x, text_h))
        draw.text((x, 4), card.title[: tile // 6], fill="black")
        colour = "black" if card.correct is None else ("#1a7f37" if card.correct else "#cf222e")
        draw.text((x, text_h + tile + 6), card.caption[: tile // 6], fill=colour)
        if card.correct is not None:
            draw.rectangle((x - 2, text_h - 2, x + tile + 1, text_h + tile + 1), outline=colour, width=2)
    atomic.write_with(path, lambda tmp: canvas.save(tmp, format="PNG"))
    return path
