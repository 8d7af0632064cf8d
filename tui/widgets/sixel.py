"""A small Sixel encoder (numpy + Pillow) that every Sixel terminal draws the same way.

Why not textual-image's (0.12, the last release for Python 3.11): it defines each colour
register lazily, in the middle of the pixel data, the first time a band uses it. xterm
(``-ti vt340``, checked by screenshots) draws the rows around such a definition in the
wrong colour: the horizontal streaks and the strip along the top of the browser's
pictures. Moving the same definitions to the start of the image makes the output clean,
and that is the layout every mainstream encoder (libsixel, ImageMagick) writes: all
registers first, then the bands. Each band here is one line per colour present (``$``
returns to the band's start, 0 bits leave pixels alone, ``-`` moves to the next band), with
``!n`` repeats — nothing relies on later passes overwriting earlier ones.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

BAND = 6  # pixel rows per sixel band


def quantise(picture: Image.Image, colours: int = 256) -> Image.Image:
    """A palette image of at most ``colours`` colours: exact when the picture has that few,
    else Pillow's fast octree with Floyd–Steinberg dithering. Quantising the small source
    before scaling it up is what keeps encoding cheap."""
    rgb = picture.convert("RGB")
    colours = max(2, min(256, colours))
    dither = Image.Dither.FLOYDSTEINBERG if rgb.getcolors(colours) is None else Image.Dither.NONE
    return rgb.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=dither)


@functools.lru_cache(maxsize=8)
def _tokens(width: int) -> np.ndarray:
    """tokens[n, v]: n sixels of value v as written ("!n<c>" from 4 on, shorter than repeats)."""
    table = np.empty((width + 1, 64), dtype=object)
    for v in range(64):
        char = chr(63 + v)
        table[:4, v] = [char * n for n in range(4)]
        table[4:, v] = [f"!{n}{char}" for n in range(4, width + 1)]
    return table


def _lines(sixels: np.ndarray, band_of: np.ndarray, colour_of: np.ndarray) -> str:
    """Run-length encode every (band, colour) line at once and join them with their colour
    selectors, "$" between lines of a band and "-" between bands."""
    lines, width = sixels.shape
    flat = sixels.ravel()
    boundary = np.ones(flat.size, dtype=bool)
    boundary[1:] = flat[1:] != flat[:-1]
    boundary[::width] = True  # every line starts a run
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.append(starts, flat.size))
    values, line_of = flat[starts], starts // width
    last_in_line = np.append(line_of[1:] != line_of[:-1], True)
    keep = ~(last_in_line & (values == 0))  # trailing 0 sixels change nothing
    starts, lengths, values, line_of = starts[keep], lengths[keep], values[keep], line_of[keep]
    runs = _tokens(width)[lengths, values]
    first_in_band = np.append(True, band_of[1:] != band_of[:-1])
    separator = np.where(first_in_band, "-", "$")
    separator[0] = ""
    prefixes = np.char.add(separator.astype(str), np.char.add("#", colour_of.astype(str))).astype(object)
    first_run = np.searchsorted(line_of, np.arange(lines))
    return "".join(np.insert(runs, first_run, prefixes).tolist()) + "-"


def encode(picture: Image.Image, colours: int = 256) -> str:
    """``picture`` as one Sixel image, 1:1 pixels: a palette image ("P", at most 256
    colours) as it is, any other mode quantised first."""
    indexed = picture if picture.mode == "P" else quantise(picture, colours)
    pixels = np.asarray(indexed, dtype=np.uint8)
    height, width = pixels.shape
    palette = np.asarray(indexed.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    used = np.unique(pixels)
    percent = (palette[used] * 100 + 127) // 255
    out = [f'\x1bP0;1;0q"1;1;{width};{height}']
    out.extend(f"#{int(c)};2;{r};{g};{b}" for c, (r, g, b) in zip(used, percent.tolist(), strict=True))
    padded = np.full((-(-height // BAND) * BAND, width), -1, dtype=np.int16)
    padded[:height] = pixels
    bands = padded.reshape(-1, BAND, width)
    # sixels[b, c, x]: bit k set where pixel row k of band b at column x has colour used[c]
    rank = np.zeros(256, dtype=np.int64)
    rank[used] = np.arange(used.size)
    rows, cols = np.nonzero(padded >= 0)
    keys = ((rows // BAND) * used.size + rank[padded[rows, cols]]) * width + cols
    counts = np.bincount(keys, weights=1 << (rows % BAND), minlength=len(bands) * used.size * width)
    sixels = counts.astype(np.uint8).reshape(len(bands), used.size, width)
    band_of, colour_of = np.nonzero(sixels.any(axis=2))  # the (band, colour) lines to write
    out.append(_lines(sixels[band_of, colour_of], band_of, used[colour_of]))
    out.append("\x1b\\")
    return "".join(out)
