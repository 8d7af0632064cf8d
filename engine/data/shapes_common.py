"""What both versions of the ``shapes`` generator draw the same way: clutter, object colours, textures.

Version 1's images depend on these exact functions and the order of their random draws:
change them and ``shapes?v=1`` no longer reproduces old workspaces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

IMAGE_SIZE = 32

YY, XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5


def col(values: np.ndarray) -> np.ndarray:
    """Per-image values shaped to broadcast against B x H x W."""
    return values.astype(np.float32)[:, None, None]


def background(n: int, rng: np.random.Generator) -> np.ndarray:
    """A greyish random base with low-contrast blobs and lines: clutter to look past."""
    # greyish, so that the saturated object's silhouette stands out from the clutter
    base = (rng.uniform(0.2, 0.75, (n, 1, 1, 1)) + rng.uniform(-0.08, 0.08, (n, 1, 1, 3))).astype(np.float32)
    gradient = rng.uniform(-0.1, 0.1, (n, 1, 1, 2)).astype(np.float32)
    image = base + (gradient[..., :1] * (XX[None, ..., None] / IMAGE_SIZE - 0.5)
                    + gradient[..., 1:] * (YY[None, ..., None] / IMAGE_SIZE - 0.5))

    blobs = 5
    bx = rng.uniform(0, IMAGE_SIZE, (n, blobs, 1, 1)).astype(np.float32)
    by = rng.uniform(0, IMAGE_SIZE, (n, blobs, 1, 1)).astype(np.float32)
    br = rng.uniform(2.0, 7.0, (n, blobs, 1, 1)).astype(np.float32)
    inside = ((XX - bx) ** 2 + (YY - by) ** 2) < br**2  # n x blobs x H x W
    tint = rng.uniform(-0.09, 0.09, (n, blobs, 3)).astype(np.float32)
    image += np.einsum("nbhw,nbc->nhwc", inside.astype(np.float32), tint, optimize=True)

    lines = 3
    theta = rng.uniform(0, np.pi, (n, lines, 1, 1)).astype(np.float32)
    offset = rng.uniform(-12, 12, (n, lines, 1, 1)).astype(np.float32)
    distance = np.abs(np.cos(theta) * (XX - 16) + np.sin(theta) * (YY - 16) - offset)
    on_line = (distance < rng.uniform(0.5, 1.2, (n, lines, 1, 1))).astype(np.float32)
    tint = rng.uniform(-0.08, 0.08, (n, lines, 3)).astype(np.float32)
    image += np.einsum("nlhw,nlc->nhwc", on_line, tint, optimize=True)
    return np.asarray(image)


def object_colours(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saturated random colours, flipped in brightness where they would blend into the background."""
    n = len(background)
    colour = rng.uniform(0.15, 1.0, (n, 3)).astype(np.float32)
    colour[np.arange(n), rng.integers(0, 3, n)] = rng.uniform(0.8, 1.0, n)  # one strong channel
    bg_mean = background.mean(axis=(1, 2))
    too_close = np.abs(colour.mean(axis=1) - bg_mean.mean(axis=1)) < 0.2
    colour[too_close] = np.clip(1.15 - colour[too_close], 0.0, 1.0)
    return colour


# Each pattern takes texture coordinates in units of its period and says "secondary colour here".
TEXTURE_PATTERNS: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda x, y: np.zeros(x.shape, dtype=bool),  # solid
    lambda x, y: (y % 1.0) < 0.5,  # horizontal stripes
    lambda x, y: ((x + y) / np.sqrt(2) % 1.0) < 0.5,  # diagonal stripes
    lambda x, y: ((x % 1.0) < 0.5) ^ ((y % 1.0) < 0.5),  # checkered
    lambda x, y: ((x % 1.0) - 0.5) ** 2 + ((y % 1.0) - 0.5) ** 2 < 0.09,  # dotted
)
