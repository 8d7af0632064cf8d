"""Inline pictures of a fixed cell size, in the best mode the terminal offers: Sixel, the
Kitty graphics protocol, or coloured half-blocks (Unicode blocks off a terminal).

One widget for every mode, redrawn in place when its picture changes: a repaint of its own
cells, never a layout pass or a recompose (textual-image's Sixel widget swaps an inner widget
on every change, which needs a layout pass to be drawn at all). Sixel data comes from our own
encoder (``tui.widgets.sixel``); the other modes use textual-image's public renderables.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
from dataclasses import dataclass
from typing import Any

from PIL import Image
from rich.console import RenderableType
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tui.widgets import sixel

# The ANSI palette most terminals ship (xterm's): half-blocks dithered to exactly these
# colours stay readable where a 16-colour terminal would round each cell to the nearest.
_ANSI16 = (0, 0, 0, 205, 0, 0, 0, 205, 0, 205, 205, 0, 0, 0, 238, 205, 0, 205, 0, 205, 205, 229, 229, 229,
           127, 127, 127, 255, 0, 0, 0, 255, 0, 255, 255, 0, 92, 92, 255, 255, 0, 255, 0, 255, 255, 255, 255, 255)


def _xterm256() -> tuple[int, ...]:
    """The 256-colour palette: 16 ANSI, a 6x6x6 cube, 24 greys (as xterm and Rich define it)."""
    levels = (0, 95, 135, 175, 215, 255)
    cube = [c for r in levels for g in levels for b in levels for c in (r, g, b)]
    greys = [v for i in range(24) for v in (8 + 10 * i,) * 3]
    return (*_ANSI16, *cube, *greys)


@dataclass(frozen=True)
class Graphics:
    """What the terminal can show, found once before Textual owns the terminal."""

    mode: str  # "sixel", "kitty", "halfcell" or "unicode"
    cell: tuple[int, int]  # a cell's pixel width and height
    tmux: bool  # running inside tmux

    def describe(self) -> str:
        """One line for the help screen."""
        names = {"sixel": "Sixel images", "kitty": "Kitty graphics-protocol images",
                 "halfcell": "coloured half-blocks (no graphics protocol detected)",
                 "unicode": "Unicode blocks (not a terminal)"}
        via = " (inside tmux)" if self.tmux else ""
        return f"inline images: {names[self.mode]}{via}; cells {self.cell[0]}x{self.cell[1]} px"


_detected: Graphics | None = None


def _cell_size() -> tuple[int, int]:
    """Pixels per cell from the tty (TIOCGWINSZ); VT340's 10x20 where the terminal says nothing."""
    if sys.__stdout__ is None:
        return 10, 20
    try:
        answer = fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols, width, height = struct.unpack("HHHH", answer)
    except (AttributeError, OSError, TypeError, ValueError):
        return 10, 20
    if rows and cols and width and height:
        return width // cols, height // rows
    return 10, 20


def detect() -> Graphics:
    """Ask the terminal once (textual-image's queries run on import of its renderables).

    Inside tmux the queries reach tmux, not the outer terminal: Sixel is used there when tmux
    itself answers that it draws Sixel (tmux 3.4+ built with it, the outer terminal too);
    otherwise half-blocks, as the Kitty protocol's escapes would need passthrough wrapping
    that textual-image 0.12 does not do. ``KDCAM_IMAGES`` (sixel, kitty, halfcell,
    unicode) overrides the choice, e.g. for a terminal that answers wrongly."""
    global _detected
    if _detected is not None:
        return _detected
    from textual_image.renderable import Image as Best
    from textual_image.renderable.sixel import Image as SixelRenderable
    from textual_image.renderable.tgp import Image as TGPRenderable
    from textual_image.renderable.unicode import Image as UnicodeRenderable

    tmux = "TMUX" in os.environ
    mode = ("sixel" if Best is SixelRenderable else "kitty" if Best is TGPRenderable
            else "unicode" if Best is UnicodeRenderable else "halfcell")
    if tmux and mode == "kitty":
        mode = "halfcell"
    wanted = os.environ.get("KDCAM_IMAGES", "")
    if wanted in ("sixel", "kitty", "halfcell", "unicode"):
        mode = wanted
    _detected = Graphics(mode=mode, cell=_cell_size(), tmux=tmux)
    return _detected


def _fit(picture: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
    """The largest size of ``picture``'s shape inside ``box`` (pixels): square stays square."""
    scale = min(box[0] / picture.width, box[1] / picture.height)
    return max(1, int(picture.width * scale)), max(1, int(picture.height * scale))


def _palette_image(colours: tuple[int, ...]) -> Image.Image:
    image = Image.new("P", (1, 1))
    image.putpalette(colours)
    return image


class CardPicture(Widget):
    """A picture in a box of fixed cells (set by the stylesheet); ``picture`` replaces it."""

    DEFAULT_CSS = "CardPicture { width: 19; height: 10; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphics = detect()
        self._picture: Image.Image | None = None
        self._renderable: Any = None
        self._sixel: tuple[tuple[int, int], str] | None = None  # (box cells, data) of the current picture

    @property
    def picture(self) -> Image.Image | None:
        return self._picture

    @picture.setter
    def picture(self, value: Image.Image | None) -> None:
        if value is self._picture:
            return
        self._picture = value
        self._sixel = None
        if self._renderable is not None and hasattr(self._renderable, "cleanup"):
            self._renderable.cleanup()  # the Kitty protocol frees the terminal's copy
        self._renderable = None
        self.refresh()  # same cells, new pixels: a repaint of this widget only

    # -- text modes (half-blocks, Kitty placeholders, Unicode) ------------------------------
    def render(self) -> RenderableType:
        if self._picture is None or self.graphics.mode == "sixel":
            return ""
        if self._renderable is None:
            self._renderable = self._text_renderable(self._picture)
        return self._renderable

    def _text_renderable(self, picture: Image.Image) -> Any:
        width, height = self.content_size
        if self.graphics.mode == "kitty":
            from textual_image.renderable.tgp import Image as TGPRenderable
            return TGPRenderable(picture, width, height)
        if self.graphics.mode == "unicode":
            from textual_image.renderable.unicode import Image as UnicodeRenderable
            return UnicodeRenderable(picture, width, height)
        from textual_image.renderable.halfcell import Image as HalfcellRenderable
        cell_w, cell_h = self.graphics.cell
        cols, rows = _fit(picture, (width * cell_w, height * cell_h))  # pixel box, square kept
        cols, rows = max(1, round(cols / cell_w)), max(1, round(rows * 2 / cell_h))  # a cell is 1x2 half-blocks
        return HalfcellRenderable(self.for_colour_system(picture.resize((cols, rows), Image.Resampling.LANCZOS)), cols,
                                  (rows + 1) // 2)

    def for_colour_system(self, picture: Image.Image) -> Image.Image:
        """Dithered to the terminal's own palette where it has 16 or 256 colours, so every
        cell keeps the colour chosen for it instead of the nearest one Rich would pick."""
        system = self.app.console.color_system
        if system == "standard":
            palette = _ANSI16 + (0,) * (768 - len(_ANSI16))
        elif system == "256":
            palette = _xterm256()
        else:
            return picture
        return picture.convert("RGB").quantize(palette=_palette_image(palette),
                                               dither=Image.Dither.FLOYDSTEINBERG).convert("RGB")

    # -- Sixel: data injected on the last line of the box ---------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        if self.graphics.mode != "sixel":
            return super().render_lines(crop)
        if self._picture is None or not self.screen.is_active:
            return [Strip.blank(crop.width)] * crop.height
        visible = self.screen.find_widget(self).visible_region
        if visible.size != self.content_size:  # partly scrolled out: blank rather than misplaced
            return [Strip.blank(crop.width)] * crop.height
        data = self._sixel_data()
        control = ((ControlType.CURSOR_FORWARD, 0),)  # zero width for Rich, written as is
        last = Strip([
            Segment(Control.move_to(visible.x, visible.y).segment.text, Style(), control),
            Segment(data, Style(), control),
            # back to where the compositor believes the cursor is: the end of the box's last row
            Segment(Control.move_to(visible.right, visible.bottom - 1).segment.text, Style(), control),
        ], cell_length=crop.width)
        return [Strip([])] * (crop.height - 1) + [last]

    def _sixel_data(self) -> str:
        """The picture fitted (square kept) on a box-sized canvas of the background colour:
        every pixel of the box is drawn, so nothing of an earlier screen shows around it."""
        assert self._picture is not None
        box = (self.content_size.width, self.content_size.height)
        if self._sixel is None or self._sixel[0] != box:
            cell_w, cell_h = self.graphics.cell
            indexed = sixel.quantise(self._picture, 255)  # one register left for the background
            palette = (indexed.getpalette() or [])[: 3 * 255]
            background = len(palette) // 3
            canvas = Image.new("P", (box[0] * cell_w, box[1] * cell_h), background)
            canvas.putpalette(palette + list(self.background_colors[1].rgb))
            size = _fit(indexed, canvas.size)
            canvas.paste(indexed.resize(size, Image.Resampling.NEAREST), ((canvas.width - size[0]) // 2, 0))
            self._sixel = box, sixel.encode(canvas)
        return self._sixel[1]
