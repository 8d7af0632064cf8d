"""``shapes`` versions 2 and 3: scenes for a localisation testbed with headroom (DESIGN §7).

Version 1 drew one large object (10-13 px radius) near the middle of every 32x32 image, so
every model's map was "a blob in the middle" and similarity to the teacher saturated; some of
its classes (circle vs octagon) could not be told apart at that resolution. Versions 2 and 3:

- the labelled object has a random size (radius 4.5-11 px; its mask covers about 15% of the
  image on average, under 5% for the smallest) and a random position;
- 0-2 *distractors* per image (one on average asked for; about 70% of images show at least
  one, fewer where a large object leaves no room), drawn with the same colours and textures as
  objects, never over the object; their mask is kept (``distractor_masks``). What they are is
  the one difference between the versions:
  - version 2: elongated bars (3-6 px half-length), a shape no class has. Measured, no model
    looked at them (about 2% of every map, teacher and students alike: RESULTS.md), so the
    measure had no contrast and any two models that found the object had alike maps;
  - version 3 (the default): *decoys*, objects of a shape no class uses (diamond, ring,
    half-disc, star with the default 20 classes), 4-7 px radius, in the class textures. Half of
    a class (its texture) is visible on a decoy, the other half (its shape) only on the object,
    so a model that has learned textures but not shapes can look at the wrong object;
- every class is learnable at 32x32: shapes that stay distinct when small (circle, square,
  triangle, cross, ...), texture periods that scale with the object (3-5.5 px, never below
  the pixel grid's limit). The similar pairs are textures (horizontal vs diagonal stripes,
  checkered vs dotted) and small round vs square objects: hard, but separable;
- an optional spurious cue (``shortcut=P``): a 4x4 marker whose colour names a class. On the
  train split it names the true class with probability P (otherwise another class, uniformly);
  on the test split it names a uniformly random class, independent of the label. Its mask
  (``cue_masks``) and the class it names (``cue_labels``) are kept.

Everything is vectorised over a chunk of images and is a pure function of (count, classes,
seed, split, shortcut, version). Colours and textures are drawn independently of the class, so
the class lives in the object's shape and texture only (and in the cue, where asked for).
Version 2's images depend on the order of its random draws: ``shapes?v=2`` reproduces them bit
for bit (a test holds their hashes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.data.shapes_common import (
    IMAGE_SIZE,
    TEXTURE_PATTERNS,
    XX,
    YY,
    background,
    col,
    object_frame,
    shape_masks,
    texture_masks,
    two_tone,
)

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring", "half-disc", "star")
TEXTURES = ("solid", "striped-h", "striped-d", "checkered", "dotted")
# Per-channel statistics of each version, measured on its default train split (seed 0, no cue);
# fixed so that every split and seed normalises the same way.
STATISTICS = {
    2: ((0.4846, 0.4840, 0.4829), (0.1937, 0.1926, 0.1932)),
    3: ((0.4841, 0.4851, 0.4858), (0.1972, 0.1967, 0.1979)),
}

RADIUS = (4.5, 11.0)  # object radius in pixels
DISTRACTOR_COUNTS = (0.25, 0.5, 0.25)  # probability of 0, 1, 2 distractors per image
DISTRACTOR_LENGTH = (3.0, 6.0)  # half-length of a bar in pixels
DISTRACTOR_ASPECT = 0.35  # half-width / half-length
DECOY_RADIUS = (4.0, 7.0)  # version 3's decoy radius in pixels
DECOY_REACH = 0.9  # how much of its radius a decoy keeps clear of the object and the image edge
CUE_SIZE = 4  # the marker is CUE_SIZE x CUE_SIZE pixels
_CANDIDATES = 16  # positions tried per distractor or marker before it is left out


@dataclass
class Rendered:
    images: np.ndarray  # uint8 n x 32 x 32 x 3
    masks: np.ndarray  # bool n x 32 x 32, the labelled object
    distractor_masks: np.ndarray  # bool n x 32 x 32
    cue_masks: np.ndarray | None  # bool n x 32 x 32, where a cue is drawn
    cue_labels: np.ndarray | None  # int64 n, the class the cue names


def cue_classes(labels: np.ndarray, num_classes: int, shortcut: float, train: bool,
                rng: np.random.Generator) -> np.ndarray:
    """The class each image's marker names: the label with probability ``shortcut`` on train
    (otherwise another class, uniformly); a uniformly random class on test."""
    n = len(labels)
    if not train:
        return rng.integers(0, num_classes, n).astype(np.int64)
    other = (labels + rng.integers(1, num_classes, n)) % num_classes  # never the label itself
    return np.where(rng.random(n) < shortcut, labels, other).astype(np.int64)


def cue_colours(num_classes: int) -> np.ndarray:
    """One saturated colour per class (hues evenly spaced), num_classes x 3 in [0, 1]."""
    hue = np.arange(num_classes, dtype=np.float32) / num_classes
    k = (np.array([5.0, 3.0, 1.0], np.float32)[None, :] + hue[:, None] * 6.0) % 6.0
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)  # HSV (hue, 1, 1) -> RGB


def decoy_shapes(class_shapes: np.ndarray) -> np.ndarray:
    """The shapes version 3 draws its decoys from: those no class uses (empty when every one is)."""
    return np.setdiff1d(np.arange(len(SHAPES)), class_shapes)


def render(shape_ids: np.ndarray, texture_ids: np.ndarray, rng: np.random.Generator,
           cue: np.ndarray | None = None, num_classes: int = 0,
           cue_rng: np.random.Generator | None = None, decoys: np.ndarray | None = None) -> Rendered:
    """One chunk of images; ``cue`` holds the class each marker names (None: no marker);
    ``decoys`` the shapes version 3's distractors take (None: version 2's bars).

    The marker is placed with its own generator ``cue_rng`` and drawn last but for the object,
    so an image with a cue is the same image without it except under the marker."""
    n = len(shape_ids)
    image = background(n, rng)

    radius = rng.uniform(*RADIUS, n).astype(np.float32)
    cx = rng.uniform(radius * 0.9, IMAGE_SIZE - radius * 0.9).astype(np.float32)
    cy = rng.uniform(radius * 0.9, IMAGE_SIZE - radius * 0.9).astype(np.float32)

    # distractors first (the object is drawn over them), each away from the object
    wanted = rng.choice(len(DISTRACTOR_COUNTS), size=n, p=DISTRACTOR_COUNTS)
    distractor_masks = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    placed = [(cx, cy, radius)]
    for k in range(len(DISTRACTOR_COUNTS) - 1):
        if decoys is None:
            length = rng.uniform(*DISTRACTOR_LENGTH, n).astype(np.float32)
            x, y, ok = _place(rng, length, placed)
            ok &= wanted > k
            region = _bar(x, y, length, rng.uniform(0, np.pi, n).astype(np.float32)) & ok[:, None, None]
            image = _paint(image, region, _textured(n, x, y, length, rng), rng)
            reach = length
        else:
            size = rng.uniform(*DECOY_RADIUS, n).astype(np.float32)
            reach = size * DECOY_REACH
            x, y, ok = _place(rng, reach, placed)
            ok &= wanted > k
            region, texture = _decoy(x, y, size, decoys, rng)
            region &= ok[:, None, None]
            image = _paint(image, region, texture, rng)
        distractor_masks |= region
        placed.append((x, y, np.where(ok, reach, -1e3).astype(np.float32)))

    dx, dy, u, v = object_frame(cx, cy, radius, rng.uniform(-0.1, 0.1, n))
    mask = shape_masks(shape_ids, u, v, SHAPE_TESTS)
    second = _texture(texture_ids, dx, dy, radius, rng)
    colour = two_tone(image, second, rng)
    shading = 1.0 + 0.12 * (u * col(rng.uniform(-1, 1, n)) + v * col(rng.uniform(-1, 1, n)))

    cue_masks = None
    if cue is not None and cue_rng is not None:
        half = np.full(n, CUE_SIZE * 0.75, np.float32)  # about the marker's half-diagonal
        mx, my, ok = _place(cue_rng, half, placed, margin=0.0)
        left, top = np.round(mx - CUE_SIZE / 2), np.round(my - CUE_SIZE / 2)
        cue_masks = ((XX[None] >= col(left)) & (XX[None] < col(left + CUE_SIZE)) & (YY[None] >= col(top))
                     & (YY[None] < col(top + CUE_SIZE)) & ok[:, None, None] & ~mask)
        image = np.where(cue_masks[..., None], cue_colours(num_classes)[cue][:, None, None, :], image)
        distractor_masks &= ~cue_masks

    image = np.where(mask[..., None], colour * shading[..., None], image)
    distractor_masks &= ~mask
    image += 0.03 * rng.standard_normal(image.shape, dtype=np.float32)
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Rendered(pixels, mask, distractor_masks, cue_masks, cue)


def _place(rng: np.random.Generator, size: np.ndarray, others: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
           margin: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A centre per image at least ``size + other's size + margin`` from every placed thing:
    the first of a few random candidates that fits; ``ok`` is False where none did."""
    n = len(size)
    low, high = size[:, None], IMAGE_SIZE - size[:, None]
    x = rng.uniform(0, 1, (n, _CANDIDATES)).astype(np.float32) * (high - low) + low
    y = rng.uniform(0, 1, (n, _CANDIDATES)).astype(np.float32) * (high - low) + low
    fits = np.ones((n, _CANDIDATES), dtype=bool)
    for ox, oy, osize in others:
        distance = np.hypot(x - ox[:, None], y - oy[:, None])
        fits &= distance >= (size + osize)[:, None] + margin
    first = fits.argmax(axis=1)
    rows = np.arange(n)
    return x[rows, first], y[rows, first], fits[rows, first]


def _bar(x: np.ndarray, y: np.ndarray, length: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """An elongated ellipse (no class has this shape)."""
    dx, dy = XX[None] - col(x), YY[None] - col(y)
    along = col(np.cos(theta)) * dx + col(np.sin(theta)) * dy
    across = -col(np.sin(theta)) * dx + col(np.cos(theta)) * dy
    return np.asarray((along / col(length)) ** 2 + (across / col(length * DISTRACTOR_ASPECT)) ** 2 <= 1.0)


def _texture(texture_ids: np.ndarray, dx: np.ndarray, dy: np.ndarray, size: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Where each image's texture uses the secondary colour; the period follows the object's size
    (3-5.5 px), so a small object still shows a few periods and none falls below 3 px."""
    period = col(np.clip(size * 0.5, 3.0, 5.5) * rng.uniform(0.9, 1.1, len(texture_ids)))
    return texture_masks(texture_ids, dx, dy, period, rng)


def _decoy(x: np.ndarray, y: np.ndarray, size: np.ndarray, decoys: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A decoy centred at (x, y): its silhouette (a random shape of ``decoys``, tilted like an
    object) and where its texture (any class texture) uses the secondary colour."""
    n = len(size)
    dx, dy, u, v = object_frame(x, y, size, rng.uniform(-0.1, 0.1, n))
    silhouette = shape_masks(decoys[rng.integers(0, len(decoys), n)], u, v, SHAPE_TESTS)
    return silhouette, _texture(rng.integers(0, len(TEXTURE_PATTERNS), n), dx, dy, size, rng)


def _textured(n: int, x: np.ndarray, y: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random texture (any of the class textures) for a distractor centred at (x, y)."""
    texture = rng.integers(0, len(TEXTURE_PATTERNS), n)
    return _texture(texture, XX[None] - col(x), YY[None] - col(y), size, rng)


def _paint(image: np.ndarray, region: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a two-colour textured region in an object-like colour."""
    return np.where(region[..., None], two_tone(image, second, rng), image)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Five rounded points: radius 0.62 +- 0.38 around the centre."""
    r = np.sqrt(u**2 + v**2)
    theta = np.arctan2(u, -v)  # a point straight up
    return np.asarray(r <= 0.62 + 0.38 * np.cos(5 * theta))


_SQRT3 = np.float32(np.sqrt(3.0))

# Each test takes object coordinates (u, v) in units of the object's radius.
SHAPE_TESTS: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda u, v: u**2 + v**2 <= 0.9,  # circle
    lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.8,  # square
    lambda u, v: (v <= 0.55) & (_SQRT3 * np.abs(u) - v <= 1.1),  # triangle, pointing up
    lambda u, v: (np.minimum(np.abs(u), np.abs(v)) <= 0.33) & (np.maximum(np.abs(u), np.abs(v)) <= 1.0),  # cross
    lambda u, v: np.abs(u) + np.abs(v) <= 1.1,  # diamond
    lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.3),  # ring
    lambda u, v: (u**2 + v**2 <= 1.0) & (v <= 0.25),  # half-disc, flat side down
    _star,
)
