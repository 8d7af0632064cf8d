"""The embedded ``shapes`` dataset: procedural 32x32 RGB images, one labelled textured object on clutter.

Why procedural: the whole pipeline (train teachers and students, compute CAMs, score them
against ground truth) must run offline on a laptop CPU in minutes. Each image holds one
object whose class is *shape x texture* (``"circle/striped-h"``); its boolean mask is the
ground truth where a CAM should look. The default 20 classes are 4 shapes x 5 textures.

Three versions, chosen by the spec's ``v`` option:
- ``v=3`` (the default; ``engine/data/shapes_scenes.py``): objects of random size and position,
  decoys (objects of a shape no class uses, in the class textures) with their own masks, every
  class learnable at 32x32, and an optional spurious cue (``shortcut=P``). A testbed where
  localisation has headroom.
- ``v=2`` (the same module): the same scenes with small bars as distractors, which no model
  looked at; reproduces the images of workspaces made before version 3 bit for bit.
- ``v=1`` (this module's ``_render``): one large object near the middle; reproduces the images
  of workspaces made before version 2 bit for bit.

Rendering is vectorised with numpy over a whole chunk of images: per-image parameters are
drawn first, then every pixel of every image is computed with broadcasting. The train and
test splits come from independent random streams of the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.data import shapes_scenes
from engine.data.shapes_common import IMAGE_SIZE as IMAGE_SIZE
from engine.data.shapes_common import background, col, object_frame, shape_masks, texture_masks, two_tone
from engine.errors import KdcamError

DEFAULT_CLASSES = 20
DEFAULT_TRAIN = 5000
DEFAULT_TEST = 1000
VERSIONS = (1, 2, 3)
DEFAULT_VERSION = 3
# Per-channel statistics measured on the default train split (seed 0) of version 1; fixed so
# that every split and every seed normalises the same way (later versions' are in shapes_scenes).
MEAN_V1 = (0.4934, 0.4931, 0.4941)
STD_V1 = (0.2104, 0.2107, 0.2110)
MEAN, STD = shapes_scenes.STATISTICS[DEFAULT_VERSION]  # the default version's

_CHUNK = 1024  # images rendered at once: bounds memory (a chunk's clutter is ~50 MB of float32)
_SPLIT_STREAM = {"train": 0, "test": 1}
_CUE_STREAM = 2  # the cue's own random stream: the same seed gives the same objects with or without it

# Version 1's shapes, most important first; neighbours are the similar pairs (circle vs octagon
# proved indistinguishable at 32x32, which version 2 fixes).
SHAPES_V1 = ("circle", "octagon", "square", "triangle", "rounded-square", "diamond", "cross", "ring")
TEXTURES = ("solid", "striped-h", "striped-d", "checkered", "dotted")
MAX_CLASSES = len(SHAPES_V1) * len(TEXTURES)
assert MAX_CLASSES == len(shapes_scenes.SHAPES) * len(shapes_scenes.TEXTURES) and shapes_scenes.TEXTURES == TEXTURES


def shape_names(version: int = DEFAULT_VERSION) -> tuple[str, ...]:
    return SHAPES_V1 if version == 1 else shapes_scenes.SHAPES


def statistics(version: int = DEFAULT_VERSION) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The fixed normalisation (mean, std) of a version."""
    return (MEAN_V1, STD_V1) if version == 1 else shapes_scenes.STATISTICS[version]


def class_table(num_classes: int = DEFAULT_CLASSES) -> list[tuple[int, int]]:
    """The ``(shape, texture)`` index pairs of the first ``num_classes`` classes.

    Classes grow as nested grids (1 shape x 2 textures, 2 x 3, 3 x 4, 4 x 5, then more shapes),
    so any class count keeps the similar pairs together; the default 20 is 4 shapes x 5 textures.
    Textures are easy for a CNN and shapes hard, hence more textures than shapes.
    """
    if not 2 <= num_classes <= MAX_CLASSES:
        raise KdcamError(f"shapes: classes must be between 2 and {MAX_CLASSES}, got {num_classes}")
    pairs = [(s, t) for s in range(len(SHAPES_V1)) for t in range(len(TEXTURES))]
    pairs.sort(key=lambda st: (max(st[0] + 1, st[1]), st[0], st[1]))
    return pairs[:num_classes]


def class_names(num_classes: int = DEFAULT_CLASSES, version: int = DEFAULT_VERSION) -> list[str]:
    shapes = shape_names(version)
    return [f"{shapes[s]}/{TEXTURES[t]}" for s, t in class_table(num_classes)]


def max_decoy_classes() -> int:
    """The most classes that leave version 3 a shape for its decoys."""
    return max(n for n in range(2, MAX_CLASSES + 1)
               if len(shapes_scenes.decoy_shapes(np.array([s for s, _ in class_table(n)]))))


@dataclass
class ShapesSplit:
    images: np.ndarray  # uint8 N x 32 x 32 x 3
    labels: np.ndarray  # int64 N
    masks: np.ndarray  # bool N x 32 x 32
    class_names: list[str]
    distractor_masks: np.ndarray | None = None  # bool N x 32 x 32 (version 2)
    cue_masks: np.ndarray | None = None  # bool N x 32 x 32 (version 2 with a shortcut)
    cue_labels: np.ndarray | None = None  # int64 N: the class each cue names


def generate(num_images: int, num_classes: int = DEFAULT_CLASSES, seed: int = 0, split: str = "train",
             version: int = DEFAULT_VERSION, shortcut: float | None = None) -> ShapesSplit:
    """Render ``num_images`` images; a pure function of its arguments.

    ``shortcut`` (version 2 and later) adds the spurious cue: on train it names the label with
    that probability, on test a random class."""
    if split not in _SPLIT_STREAM:
        raise KdcamError(f"shapes: split must be 'train' or 'test', got {split!r}")
    if num_images < 0:
        raise KdcamError(f"shapes: the number of images must be >= 0, got {num_images}")
    if version not in VERSIONS:
        raise KdcamError(f"shapes: version must be one of {', '.join(map(str, VERSIONS))}, got {version}")
    if shortcut is not None and (version == 1 or not 0.0 <= shortcut <= 1.0):
        raise KdcamError(f"shapes: shortcut must be a probability in [0, 1] and needs v=2 or later, got {shortcut}"
                         f"{' with v=1' if version == 1 else ''}")
    table = np.array(class_table(num_classes), dtype=np.int64)
    decoys = shapes_scenes.decoy_shapes(table[:, 0]) if version >= 3 else None
    if decoys is not None and not len(decoys):
        raise KdcamError(f"shapes: version 3 draws its decoys from shapes no class uses, and {num_classes} classes "
                         f"use every shape: ask for at most {max_decoy_classes()} classes, or v=2")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM[split]]))
    labels = rng.permutation(np.arange(num_images) % num_classes).astype(np.int64)
    images = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    masks = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    names = class_names(num_classes, version)
    if version == 1:
        for start in range(0, num_images, _CHUNK):
            stop = min(start + _CHUNK, num_images)
            chunk = table[labels[start:stop]]
            images[start:stop], masks[start:stop] = _render(chunk[:, 0], chunk[:, 1], rng)
        return ShapesSplit(images, labels, masks, names)

    distractors = np.empty_like(masks)
    cue_rng = cue_labels = cues = None
    if shortcut is not None:
        cue_rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM[split], _CUE_STREAM]))
        cue_labels = shapes_scenes.cue_classes(labels, num_classes, shortcut, split == "train", cue_rng)
        cues = np.empty_like(masks)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        chunk = table[labels[start:stop]]
        rendered = shapes_scenes.render(chunk[:, 0], chunk[:, 1], rng, None if cue_labels is None
                                        else cue_labels[start:stop], num_classes, cue_rng, decoys)
        images[start:stop], masks[start:stop] = rendered.images, rendered.masks
        distractors[start:stop] = rendered.distractor_masks
        if cues is not None and rendered.cue_masks is not None:
            cues[start:stop] = rendered.cue_masks
    return ShapesSplit(images, labels, masks, names, distractors, cues, cue_labels)


# --- version 1 rendering ---------------------------------------------------------------

def _render(shape_ids: np.ndarray, texture_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(shape_ids)
    clutter = background(n, rng)

    radius = rng.uniform(10.0, 13.0, n)
    cx = rng.uniform(radius * 0.8, IMAGE_SIZE - radius * 0.8)
    cy = rng.uniform(radius * 0.8, IMAGE_SIZE - radius * 0.8)
    angle = rng.uniform(-0.1, 0.1, n)  # +-6 degrees: edges stay near axis-aligned, squares never diamonds
    dx, dy, u, v = object_frame(cx, cy, radius, angle)
    mask = shape_masks(shape_ids, u, v, _SHAPE_TESTS)

    # Textures live in pixel units (period ~4-6 px) with a small tilt of their own.
    period = col(rng.uniform(4.0, 6.0, n))
    second = texture_masks(texture_ids, dx, dy, period, rng)
    colour = two_tone(clutter, second, rng)
    shading = 1.0 + 0.12 * (u * col(rng.uniform(-1, 1, n)) + v * col(rng.uniform(-1, 1, n)))
    image = np.where(mask[..., None], colour * shading[..., None], clutter)
    image += 0.03 * rng.standard_normal(image.shape, dtype=np.float32)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mask


# Each test takes object coordinates (u, v) in units of the object's radius.
_SQRT3 = np.float32(np.sqrt(3.0))


def _rounded_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half, corner = 0.85, 0.38
    qx = np.maximum(np.abs(u) - (half - corner), 0.0)
    qy = np.maximum(np.abs(v) - (half - corner), 0.0)
    return np.asarray(qx**2 + qy**2 <= corner**2)


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

