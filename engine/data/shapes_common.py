"""What every version of the ``shapes`` generator draws the same way: clutter, object frames and silhouettes,
colours, textures (version 3's decoys use the same frames, silhouettes and textures as its objects).

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


def object_frame(cx: np.ndarray, cy: np.ndarray, radius: np.ndarray,
                 angle: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dy): every pixel's offset from its image's object centre; (u, v): the same turned by
    ``angle`` and in units of the object's radius, the coordinates the shape tests take."""
    dx, dy = XX[None] - col(cx), YY[None] - col(cy)
    cos, sin = col(np.cos(angle)), col(np.sin(angle))
    return dx, dy, (cos * dx + sin * dy) / col(radius), (-sin * dx + cos * dy) / col(radius)


def shape_masks(shape_ids: np.ndarray, u: np.ndarray, v: np.ndarray,
                tests: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...]) -> np.ndarray:
    """Each image's object silhouette: its shape's test (``tests[shape_id]``) at every pixel's (u, v)."""
    mask = np.zeros((len(shape_ids), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for shape_id, inside in enumerate(tests):
        rows = shape_ids == shape_id
        if rows.any():
            mask[rows] = inside(u[rows], v[rows])
    return mask


def texture_masks(texture_ids: np.ndarray, dx: np.ndarray, dy: np.ndarray, period: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Where each image's texture (``TEXTURE_PATTERNS[texture_id]``, ``period`` pixels, a small tilt
    and phase of its own) uses the secondary colour; ``dx, dy`` are offsets from the texture's centre."""
    n = len(texture_ids)
    tilt = rng.uniform(-0.15, 0.15, n)
    tcos, tsin = col(np.cos(tilt)), col(np.sin(tilt))
    tx, ty = tcos * dx + tsin * dy, -tsin * dx + tcos * dy
    phase = col(rng.uniform(0.0, 1.0, n))
    second = np.zeros(dx.shape, dtype=bool)
    for texture_id, pattern in enumerate(TEXTURE_PATTERNS):
        rows = texture_ids == texture_id
        if rows.any():
            second[rows] = pattern(tx[rows] / period[rows] + phase[rows], ty[rows] / period[rows] + phase[rows])
    return second


def two_tone(background: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel colours of textured objects: an ``object_colours`` colour, and a darker shade of it
    where ``second`` is set."""
    primary = object_colours(background, rng)
    secondary = primary * rng.uniform(0.5, 0.7, (len(background), 1)).astype(np.float32)
    return np.where(second[..., None], secondary[:, None, None, :], primary[:, None, None, :])
