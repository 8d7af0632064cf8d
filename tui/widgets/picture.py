"""Inline pictures of a fixed cell size, in the best mode the terminal offers: Sixel, the
Kitty graphics protocol, or coloured half-blocks (Unicode blocks off a terminal).

One widget for every mode, redrawn in place when its picture changes: a repaint of its own
cells, never a layout pass or a recompose (textual-image's Sixel widget swaps an inner widget
on every change, which needs a layout pass to be drawn at all). Sixel data comes from our own
encoder (``tui.widgets.sixel``); the other modes use textual-image's public renderables.
"""

from __future__ import annotations

import base64
import fcntl
import io
import itertools
import os
import random
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderableType
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
    passthrough: bool  # tmux hands our escapes to the outer terminal
    why: str  # what decided the mode, for the help screen
    origin: tuple[int, int] = (0, 0)  # the tmux pane's top-left cell in the outer terminal

    def describe(self) -> str:
        """One line for the help screen: the mode and why."""
        names = {"sixel": "Sixel images", "kitty": "Kitty graphics-protocol images",
                 "halfcell": "coloured half-blocks", "unicode": "Unicode blocks"}
        return f"inline images: {names[self.mode]}: {self.why}; cells {self.cell[0]}x{self.cell[1]} px"


_detected: Graphics | None = None

# Kitty's graphics query (a 1x1 image it answers OK to without keeping), then Primary Device
# Attributes, which every terminal answers: its answer ends the wait, so a slow terminal is
# waited for and a late answer can never reach Textual as keystrokes.
_KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
_DA1 = "\x1b[c"


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


def _passthrough(data: str) -> str:
    """``data`` wrapped for tmux to hand to the outer terminal (its escapes doubled)."""
    return "\x1bPtmux;" + data.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def _tmux_passthrough() -> bool:
    """Whether this tmux pane lets escapes through to the outer terminal (``allow-passthrough``)."""
    try:
        answer = subprocess.run(["tmux", "show-options", "-Apv", "allow-passthrough"], capture_output=True,
                                text=True, timeout=2, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.strip().splitlines()[-1:] in (["on"], ["all"])


def _pane_origin() -> tuple[int, int]:
    """Where this tmux pane starts in the outer terminal: passthrough data is placed there."""
    try:
        answer = subprocess.run(["tmux", "display-message", "-p", "#{pane_left} #{pane_top}"], capture_output=True,
                                text=True, timeout=2, check=False).stdout.split()
        return int(answer[0]), int(answer[1])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return 0, 0


def _ask_terminal(wrap: bool, timeout: float = 2.0) -> tuple[bool, bool]:
    """(Sixel, Kitty protocol) as the terminal itself answers, in one round trip."""
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if stdin is None or stdout is None or not stdin.isatty() or not stdout.isatty():
        return False, False
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~(termios.ICANON | termios.ECHO)
    answer = b""
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        queries = _KITTY_QUERY + _DA1
        stdout.write(_passthrough(queries) if wrap else queries)
        stdout.flush()
        deadline = time.monotonic() + timeout
        while not re.search(rb"\x1b\[\?[0-9;]*c", answer) and time.monotonic() < deadline:
            if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                answer += os.read(fd, 1024)
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    attributes = re.search(rb"\x1b\[\?([0-9;]*)c", answer)
    sixel = attributes is not None and b"4" in attributes.group(1).split(b";")
    return sixel, b"\x1b_Gi=31;OK" in answer


def detect() -> Graphics:
    """Ask the terminal once, before Textual owns it (``tui.app.prepare_terminal``).

    Inside tmux the queries go to the outer terminal through tmux's passthrough when the pane
    allows it (``allow-passthrough on``), and so do the pictures; without it, half-blocks, and
    the help says why. ``KDCAM_IMAGES`` (sixel, kitty, halfcell, unicode) overrides the choice,
    e.g. for a terminal that answers wrongly."""
    global _detected
    if _detected is not None:
        return _detected
    tmux = "TMUX" in os.environ
    passthrough = tmux and _tmux_passthrough()
    stdout = sys.__stdout__
    if stdout is None or not stdout.isatty():
        mode, why = "unicode", "not a terminal"
    elif tmux and not passthrough:
        mode, why = "halfcell", "inside tmux without passthrough; set `allow-passthrough on` for images"
    else:
        sixel_ok, kitty_ok = _ask_terminal(wrap=passthrough)
        mode = "sixel" if sixel_ok else "kitty" if kitty_ok else "halfcell"
        why = "the terminal answered" if mode != "halfcell" else "the terminal offers no graphics protocol"
        if passthrough:
            why += " through tmux's passthrough"
    wanted = os.environ.get("KDCAM_IMAGES", "")
    if wanted in ("sixel", "kitty", "halfcell", "unicode") and wanted != mode:
        mode, why = wanted, "KDCAM_IMAGES"
    if mode == "unicode":
        import textual_image.renderable.unicode  # noqa: F401  (its import queries a tty: do it now, before Textual)
    _detected = Graphics(mode=mode, cell=_cell_size(), tmux=tmux, passthrough=passthrough, why=why,
                         origin=_pane_origin() if passthrough else (0, 0))
    return _detected


def _fit(picture: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
    """The largest size of ``picture``'s shape inside ``box`` (pixels): square stays square."""
    scale = min(box[0] / picture.width, box[1] / picture.height)
    return max(1, int(picture.width * scale)), max(1, int(picture.height * scale))


# Image ids for the Kitty protocol: from a random start, so two programs in one terminal rarely clash.
_KITTY_IDS = itertools.count(random.randint(1, 2**24))


def _kitty(payload: str = "", **keys: object) -> str:
    """One Kitty graphics-protocol command (APC ``_G``)."""
    return "\x1b_G" + ",".join(f"{k}={v}" for k, v in keys.items()) + (";" + payload if payload else "") + "\x1b\\"


def _palette_image(colours: tuple[int, ...]) -> Image.Image:
    image = Image.new("P", (1, 1))
    image.putpalette(colours)
    return image


class HalfBlocks:
    """Two pixels per cell: the upper half block in the top pixel's colour on the bottom's.
    Ours, not textual-image's, whose package runs its terminal queries on import, when
    Textual already owns stdin and their answers would arrive as keystrokes."""

    def __init__(self, picture: Image.Image) -> None:
        self.pixels = picture.convert("RGB")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        rows = np.asarray(self.pixels).tolist()
        for y in range(0, len(rows), 2):
            for x, rgb in enumerate(rows[y]):
                top = Color.from_rgb(*rgb)
                bottom = Color.from_rgb(*rows[y + 1][x]) if y + 1 < len(rows) else None
                yield Segment("▀", Style(color=top, bgcolor=bottom))
            yield Segment.line()


class CardPicture(Widget):
    """A picture in a box of fixed cells (set by the stylesheet); ``picture`` replaces it."""

    DEFAULT_CSS = "CardPicture { width: 19; height: 10; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphics = detect()
        self._picture: Image.Image | None = None
        self._renderable: Any = None
        self._sixel: tuple[tuple[int, int], str] | None = None  # (box cells, data) of the current picture
        self._kitty_image: tuple[tuple[int, int], int] | None = None  # (box cells, terminal image id)

    def on_mount(self) -> None:
        if self.graphics.mode == "kitty":
            self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def _screen_changed(self, screen: object) -> None:
        """Kitty images sit above the text, so they are taken away when another screen (a
        modal too) comes up; the repaint on return places them again."""
        if screen is not self.screen:
            self._write(self._kitty_hide())

    def on_hide(self) -> None:
        self._write(self._kitty_hide())

    def on_resize(self) -> None:
        self._renderable = None  # half-blocks are drawn to the box: a compact card's is smaller

    def on_unmount(self) -> None:
        self._write(self._kitty_forget())

    @property
    def picture(self) -> Image.Image | None:
        return self._picture

    @picture.setter
    def picture(self, value: Image.Image | None) -> None:
        if value is self._picture:
            return
        self._picture = value
        self._sixel = None
        self._write(self._kitty_forget())
        self._renderable = None
        self.refresh()  # same cells, new pixels: a repaint of this widget only

    # -- text modes (half-blocks, Unicode) ---------------------------------------------------
    def render(self) -> RenderableType:
        if self._picture is None or self.graphics.mode in ("sixel", "kitty"):
            return ""
        if self._renderable is None:
            self._renderable = self._text_renderable(self._picture)
        return self._renderable

    def _text_renderable(self, picture: Image.Image) -> Any:
        width, height = self.content_size
        if self.graphics.mode == "unicode":
            from textual_image.renderable.unicode import Image as UnicodeRenderable
            return UnicodeRenderable(picture, width, height)
        cell_w, cell_h = self.graphics.cell
        cols, rows = _fit(picture, (width * cell_w, height * cell_h))  # pixel box, square kept
        cols, rows = max(1, round(cols / cell_w)), max(1, round(rows * 2 / cell_h))  # a cell is 1x2 half-blocks
        return HalfBlocks(self.for_colour_system(picture.resize((cols, rows), Image.Resampling.LANCZOS)))

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

    # -- Sixel and Kitty: pixel data injected on the last line of the box -----------------
    def render_lines(self, crop: Region) -> list[Strip]:
        if self.graphics.mode not in ("sixel", "kitty"):
            return super().render_lines(crop)
        blank = [Strip.blank(crop.width)] * crop.height
        if self._picture is None or not self.screen.is_active:
            return blank
        visible = self.screen.find_widget(self).visible_region
        if visible.size != self.content_size:  # partly scrolled out: nothing rather than misplaced
            self._write(self._kitty_hide())
            return blank
        if self.graphics.mode == "sixel":
            data = self._sixel_data()
        else:
            data = self._kitty_data()
        control = ((ControlType.CURSOR_FORWARD, 0),)  # zero width for Rich, written as is
        # the cursor goes back to where the compositor believes it is: the end of the box's last row
        home, back = Control.move_to(visible.x, visible.y).segment.text, \
            Control.move_to(visible.right, visible.bottom - 1).segment.text
        if self.graphics.passthrough:  # to the outer terminal, at the pane's offset; tmux's cursor untouched
            x, y = self.graphics.origin
            home = Control.move_to(x + visible.x, y + visible.y).segment.text
            data, home, back = _passthrough("\x1b7" + home + data + "\x1b8"), "", ""
        if self.graphics.mode == "kitty":
            # Kitty images sit above the text: the blank cells are written first, then the placement
            strips = [Strip([Segment(" " * crop.width)], crop.width)] * (crop.height - 1)
            return strips + [Strip([Segment(" " * crop.width),
                                    Segment(home + data + back, Style(), control)], cell_length=crop.width)]
        last = Strip([Segment(home + data + back, Style(), control)], cell_length=crop.width)
        return [Strip([])] * (crop.height - 1) + [last]

    def _canvas(self, colours: int | None) -> Image.Image:
        """The picture fitted (square kept) on a box-sized canvas of the background colour:
        every pixel of the box is drawn, so nothing of an earlier screen shows around it.
        ``colours``: quantised to that many plus the background (Sixel), else RGB."""
        assert self._picture is not None
        cell_w, cell_h = self.graphics.cell
        size = (self.content_size.width * cell_w, self.content_size.height * cell_h)
        background = self.background_colors[1].rgb
        if colours is None:
            source = self._picture.convert("RGB")
            canvas = Image.new("RGB", size, background)
        else:
            source = sixel.quantise(self._picture, colours)
            palette = (source.getpalette() or [])[: 3 * colours]
            canvas = Image.new("P", size, len(palette) // 3)
            canvas.putpalette(palette + list(background))
        fitted = _fit(source, size)
        canvas.paste(source.resize(fitted, Image.Resampling.NEAREST), ((size[0] - fitted[0]) // 2, 0))
        return canvas

    def _sixel_data(self) -> str:
        box = (self.content_size.width, self.content_size.height)
        if self._sixel is None or self._sixel[0] != box:
            self._sixel = box, sixel.encode(self._canvas(255))  # one register left for the background
        return self._sixel[1]

    def _kitty_data(self) -> str:
        """The placement of this box's image, preceded by the image itself the first time.

        Direct placements (not textual-image's Unicode placeholders, which need kitty 0.28+
        and which WezTerm and Konsole do not draw): one image per picture, placed again at
        the same placement id on every repaint, which replaces rather than adds."""
        box = (self.content_size.width, self.content_size.height)
        if self._kitty_image is not None and self._kitty_image[0] == box:
            return _kitty(a="p", i=self._kitty_image[1], p=1, c=box[0], r=box[1], C=1, q=2)
        self._write(self._kitty_forget())
        buffer = io.BytesIO()
        self._canvas(None).save(buffer, "PNG", compress_level=1)
        data = base64.standard_b64encode(buffer.getvalue()).decode()
        image_id = next(_KITTY_IDS)
        chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
        transmit = "".join(
            _kitty(chunk, a="t", f=100, i=image_id, q=2, m=int(n < len(chunks) - 1)) if n == 0
            else _kitty(chunk, m=int(n < len(chunks) - 1)) for n, chunk in enumerate(chunks))
        self._kitty_image = box, image_id
        return transmit + _kitty(a="p", i=image_id, p=1, c=box[0], r=box[1], C=1, q=2)

    def _kitty_hide(self) -> str:
        """Removes this box's placement, keeping the image for the next one."""
        if self._kitty_image is None:
            return ""
        return _kitty(a="d", d="i", i=self._kitty_image[1], p=1, q=2)

    def _kitty_forget(self) -> str:
        """Frees this box's image in the terminal (its placement goes with it)."""
        if self._kitty_image is None:
            return ""
        image_id, self._kitty_image = self._kitty_image[1], None
        return _kitty(a="d", d="I", i=image_id, q=2)

    def _write(self, data: str) -> None:
        """Out of band of a repaint, through Textual's own writer, so it never splits a frame's escapes."""
        driver = getattr(self.app, "_driver", None) if self.is_attached else None
        if data and driver is not None:
            driver.write(_passthrough(data) if self.graphics.passthrough else data)
