"""The embedded ``shapes`` dataset: procedural 32x32 RGB images, one textured object on clutter.

Why procedural: the whole pipeline (train teachers and students, compute CAMs, score them
against ground truth) must run offline on a laptop CPU in minutes. Each image holds one
object whose class is *shape x texture* (``"circle/striped-h"``); its boolean mask is the
ground truth where a CAM should look. Some classes are deliberately close (circle vs
octagon, square vs rounded square, horizontal vs diagonal stripes) so that a model makes
structured confusions and a teacher's soft labels carry "dark knowledge". The default 20
classes are 4 shapes x 5 textures; ``classes=25`` and up add rounded squares, diamonds, ...

Rendering is vectorised with numpy over a whole chunk of images: per-image parameters are
drawn first, then every pixel of every image is computed with broadcasting. The train and
test splits come from independent random streams of the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.errors import KdcamError

IMAGE_SIZE = 32
DEFAULT_CLASSES = 20
DEFAULT_TRAIN = 5000
DEFAULT_TEST = 1000
# Per-channel statistics measured on the default train split (seed 0); fixed so that every
# split and every seed normalises the same way.
MEAN = (0.4934, 0.4931, 0.4941)
STD = (0.2104, 0.2107, 0.2110)

_CHUNK = 1024  # images rendered at once: bounds memory (a chunk's clutter is ~50 MB of float32)
_SPLIT_STREAM = {"train": 0, "test": 1}

# Shapes and textures, most important first. Neighbours in each list are the similar pairs.
SHAPES = ("circle", "octagon", "square", "triangle", "rounded-square", "diamond", "cross", "ring")
TEXTURES = ("solid", "striped-h", "striped-d", "checkered", "dotted")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)


def class_table(num_classes: int = DEFAULT_CLASSES) -> list[tuple[int, int]]:
    """The ``(shape, texture)`` index pairs of the first ``num_classes`` classes.

    Classes grow as nested grids (1 shape x 2 textures, 2 x 3, 3 x 4, 4 x 5, then more shapes),
    so any class count keeps the similar pairs together; the default 20 is 4 shapes x 5 textures.
    Textures are easy for a CNN and shapes hard, hence more textures than shapes.
    """
    if not 2 <= num_classes <= MAX_CLASSES:
        raise KdcamError(f"shapes: classes must be between 2 and {MAX_CLASSES}, got {num_classes}")
    pairs = [(s, t) for s in range(len(SHAPES)) for t in range(len(TEXTURES))]
    pairs.sort(key=lambda st: (max(st[0] + 1, st[1]), st[0], st[1]))
    return pairs[:num_classes]


def class_names(num_classes: int = DEFAULT_CLASSES) -> list[str]:
    return [f"{SHAPES[s]}/{TEXTURES[t]}" for s, t in class_table(num_classes)]


@dataclass
class ShapesSplit:
    images: np.ndarray  # uint8 N x 32 x 32 x 3
    labels: np.ndarray  # int64 N
    masks: np.ndarray  # bool N x 32 x 32
    class_names: list[str]


def generate(num_images: int, num_classes: int = DEFAULT_CLASSES, seed: int = 0, split: str = "train") -> ShapesSplit:
    """Render ``num_images`` images; a pure function of its arguments."""
    if split not in _SPLIT_STREAM:
        raise KdcamError(f"shapes: split must be 'train' or 'test', got {split!r}")
    if num_images < 0:
        raise KdcamError(f"shapes: the number of images must be >= 0, got {num_images}")
    table = np.array(class_table(num_classes), dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM[split]]))
    labels = rng.permutation(np.arange(num_images) % num_classes).astype(np.int64)
    images = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    masks = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        chunk = table[labels[start:stop]]
        images[start:stop], masks[start:stop] = _render(chunk[:, 0], chunk[:, 1], rng)
    return ShapesSplit(images, labels, masks, class_names(num_classes))


# --- rendering ---------------------------------------------------------------------------

_YY, _XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5


def _col(values: np.ndarray) -> np.ndarray:
    """Per-image values shaped to broadcast against B x H x W."""
    return values.astype(np.float32)[:, None, None]


def _render(shape_ids: np.ndarray, texture_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(shape_ids)
    background = _background(n, rng)

    radius = rng.uniform(10.0, 13.0, n)
    cx = rng.uniform(radius * 0.8, IMAGE_SIZE - radius * 0.8)
    cy = rng.uniform(radius * 0.8, IMAGE_SIZE - radius * 0.8)
    angle = rng.uniform(-0.1, 0.1, n)  # +-6 degrees: edges stay near axis-aligned, squares never diamonds
    dx, dy = _XX[None] - _col(cx), _YY[None] - _col(cy)
    cos, sin = _col(np.cos(angle)), _col(np.sin(angle))
    u, v = (cos * dx + sin * dy) / _col(radius), (-sin * dx + cos * dy) / _col(radius)

    mask = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for shape_id, inside in enumerate(_SHAPE_TESTS):
        rows = shape_ids == shape_id
        if rows.any():
            mask[rows] = inside(u[rows], v[rows])

    # Textures live in pixel units (period ~4-6 px) with a small tilt of their own.
    period = _col(rng.uniform(4.0, 6.0, n))
    tilt = rng.uniform(-0.15, 0.15, n)
    tcos, tsin = _col(np.cos(tilt)), _col(np.sin(tilt))
    tx, ty = tcos * dx + tsin * dy, -tsin * dx + tcos * dy
    phase = _col(rng.uniform(0.0, 1.0, n))
    second = np.zeros_like(mask)
    for texture_id, pattern in enumerate(_TEXTURE_PATTERNS):
        rows = texture_ids == texture_id
        if rows.any():
            second[rows] = pattern(tx[rows] / period[rows] + phase[rows], ty[rows] / period[rows] + phase[rows])

    primary = _object_colours(background, rng)
    secondary = primary * rng.uniform(0.5, 0.7, (n, 1)).astype(np.float32)
    colour = np.where(second[..., None], secondary[:, None, None, :], primary[:, None, None, :])
    shading = 1.0 + 0.12 * (u * _col(rng.uniform(-1, 1, n)) + v * _col(rng.uniform(-1, 1, n)))
    image = np.where(mask[..., None], colour * shading[..., None], background)
    image += 0.03 * rng.standard_normal(image.shape, dtype=np.float32)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mask


def _background(n: int, rng: np.random.Generator) -> np.ndarray:
    """A greyish random base with low-contrast blobs and lines: clutter to look past."""
    # greyish, so that the saturated object's silhouette stands out from the clutter
    base = (rng.uniform(0.2, 0.75, (n, 1, 1, 1)) + rng.uniform(-0.08, 0.08, (n, 1, 1, 3))).astype(np.float32)
    gradient = rng.uniform(-0.1, 0.1, (n, 1, 1, 2)).astype(np.float32)
    image = base + (gradient[..., :1] * (_XX[None, ..., None] / IMAGE_SIZE - 0.5)
                    + gradient[..., 1:] * (_YY[None, ..., None] / IMAGE_SIZE - 0.5))

    blobs = 5
    bx = rng.uniform(0, IMAGE_SIZE, (n, blobs, 1, 1)).astype(np.float32)
    by = rng.uniform(0, IMAGE_SIZE, (n, blobs, 1, 1)).astype(np.float32)
    br = rng.uniform(2.0, 7.0, (n, blobs, 1, 1)).astype(np.float32)
    inside = ((_XX - bx) ** 2 + (_YY - by) ** 2) < br**2  # n x blobs x H x W
    tint = rng.uniform(-0.09, 0.09, (n, blobs, 3)).astype(np.float32)
    image += np.einsum("nbhw,nbc->nhwc", inside.astype(np.float32), tint, optimize=True)

    lines = 3
    theta = rng.uniform(0, np.pi, (n, lines, 1, 1)).astype(np.float32)
    offset = rng.uniform(-12, 12, (n, lines, 1, 1)).astype(np.float32)
    distance = np.abs(np.cos(theta) * (_XX - 16) + np.sin(theta) * (_YY - 16) - offset)
    on_line = (distance < rng.uniform(0.5, 1.2, (n, lines, 1, 1))).astype(np.float32)
    tint = rng.uniform(-0.08, 0.08, (n, lines, 3)).astype(np.float32)
    image += np.einsum("nlhw,nlc->nhwc", on_line, tint, optimize=True)
    return image


def _object_colours(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saturated random colours, flipped in brightness where they would blend into the background."""
    n = len(background)
    colour = rng.uniform(0.15, 1.0, (n, 3)).astype(np.float32)
    colour[np.arange(n), rng.integers(0, 3, n)] = rng.uniform(0.8, 1.0, n)  # one strong channel
    bg_mean = background.mean(axis=(1, 2))
    too_close = np.abs(colour.mean(axis=1) - bg_mean.mean(axis=1)) < 0.2
    colour[too_close] = np.clip(1.15 - colour[too_close], 0.0, 1.0)
    return colour


# Each test takes object coordinates (u, v) in units of the object's radius.
_SQRT3 = np.float32(np.sqrt(3.0))


def _rounded_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half, corner = 0.85, 0.38
    qx = np.maximum(np.abs(u) - (half - corner), 0.0)
    qy = np.maximum(np.abs(v) - (half - corner), 0.0)
    return qx**2 + qy**2 <= corner**2


_SHAPE_TESTS: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda u, v: u**2 + v**2 <= 0.9,  # circle
    lambda u, v: np.maximum(np.maximum(np.abs(u), np.abs(v)), (np.abs(u) + np.abs(v)) / np.sqrt(2)) <= 0.86,  # octagon
    lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.85,  # square
    lambda u, v: (v <= 0.55) & (_SQRT3 * np.abs(u) - v <= 1.1),  # triangle, pointing up
    _rounded_square,
    lambda u, v: np.abs(u) + np.abs(v) <= 1.1,  # diamond
    lambda u, v: (np.minimum(np.abs(u), np.abs(v)) <= 0.33) & (np.maximum(np.abs(u), np.abs(v)) <= 1.0),  # cross
    lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.3),  # ring
)

# Each pattern takes texture coordinates in units of its period and says "secondary colour here".
_TEXTURE_PATTERNS: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda x, y: np.zeros(x.shape, dtype=bool),  # solid
    lambda x, y: (y % 1.0) < 0.5,  # horizontal stripes
    lambda x, y: ((x + y) / np.sqrt(2) % 1.0) < 0.5,  # diagonal stripes
    lambda x, y: ((x % 1.0) < 0.5) ^ ((y % 1.0) < 0.5),  # checkered
    lambda x, y: ((x % 1.0) - 0.5) ** 2 + ((y % 1.0) - 0.5) ** 2 < 0.09,  # dotted
)
