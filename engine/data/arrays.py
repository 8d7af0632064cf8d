"""Checking user-supplied arrays before they become an ``ImageSet``.

Datasets from files (npz, image folders, CIFAR/MNIST copies) can be wrong in many small
ways; each check here names the source and says what was expected, so the problem is
found at load time rather than as a shape error deep inside training.
"""

from __future__ import annotations

import numpy as np

from engine.data import ImageSet
from engine.errors import KdcamError
from engine.limits import MAX_CLASSES

HOLDOUT_FRACTION = 0.2  # share of a single-file dataset used as its test split
HOLDOUT_SEED = 0


def checked_imageset(
    source: str,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    masks: np.ndarray | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> ImageSet:
    """Validate the arrays and build an ImageSet; statistics default to the images' own."""
    images = _checked_images(source, images)
    labels = _checked_labels(source, labels, len(images))
    if class_names is None:
        class_names = [str(k) for k in range(int(labels.max()) + 1 if len(labels) else 0)]
    class_names = [str(name) for name in class_names]
    MAX_CLASSES.check(source, len(class_names), "the number of class names")
    if len(set(class_names)) != len(class_names):
        raise KdcamError(f"{source}: class names are not unique")
    if len(labels) and labels.max() >= len(class_names):
        raise KdcamError(
            f"{source}: labels out of range: found label {int(labels.max())} but there are only "
            f"{len(class_names)} classes (labels must be 0..{len(class_names) - 1})"
        )
    if masks is not None:
        masks = _checked_masks(source, masks, images.shape[:3])
    if mean is None or std is None:
        mean, std = channel_statistics(images)
    return ImageSet(source, split, images, labels, class_names, masks=masks, mean=mean, std=std)


def channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 NHWC images, in [0, 1] units."""
    if len(images) == 0:
        channels = images.shape[3]
        return (0.5,) * channels, (0.25,) * channels
    pixels = images.reshape(-1, images.shape[3]).astype(np.float64) / 255.0
    std = np.maximum(pixels.std(axis=0), 1e-3)  # a constant channel must not divide by zero
    return tuple(round(float(m), 4) for m in pixels.mean(axis=0)), tuple(round(float(s), 4) for s in std)


def holdout_split(count: int, split: str, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """Indices of ``split`` when one set of images must serve as both train and test.

    A fixed random ``fraction`` is the test split, the rest is train: the same file
    always splits the same way, so test images never leak into training.
    """
    order = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    test_count = round(count * fraction)
    chosen = order[:test_count] if split == "test" else order[test_count:]
    return np.sort(chosen)


def _checked_images(source: str, images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8:
        raise KdcamError(f"{source}: images must be uint8 (0-255), got dtype {images.dtype}")
    if images.ndim == 3:  # N x H x W greyscale
        images = images[..., None]
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise KdcamError(
            f"{source}: images must be N x H x W x C with C = 1 or 3 (channels last), got shape {images.shape}"
        )
    if images.shape[1] < 8 or images.shape[2] < 8:
        raise KdcamError(f"{source}: images of {images.shape[1]}x{images.shape[2]} pixels are too small (min 8x8)")
    return np.ascontiguousarray(images)


def _checked_labels(source: str, labels: np.ndarray, count: int) -> np.ndarray:
    """1-D integer labels in 0..MAX_CLASSES-1, as int64.

    The range is checked in the file's own dtype before the cast: a uint64 of 2**64-1 would
    wrap to -1 and a label of 2**62 would claim that many classes.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise KdcamError(f"{source}: labels must be a 1-D integer array, got dtype {labels.dtype} shape {labels.shape}")
    if len(labels) != count:
        raise KdcamError(f"{source}: {count} images but {len(labels)} labels")
    if len(labels):
        low, high = int(labels.min()), int(labels.max())  # Python ints: exact for every integer dtype
        if low < 0:
            raise KdcamError(f"{source}: labels out of range: found negative label {low}")
        limit = MAX_CLASSES.value()
        if high >= limit:
            raise KdcamError(
                f"{source}: labels out of range: found label {high}, which implies {high + 1:,} classes; "
                f"kdcam's limit is {limit:,} classes ({MAX_CLASSES.env}=N raises it)"
            )
    return labels.astype(np.int64)


def _checked_masks(source: str, masks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if masks.dtype != bool and not (np.issubdtype(masks.dtype, np.integer) and set(np.unique(masks)) <= {0, 1}):
        raise KdcamError(f"{source}: masks must be boolean (or 0/1 integers), got dtype {masks.dtype}")
    if masks.shape != shape:
        raise KdcamError(f"{source}: masks must have shape {shape} (N x H x W, like the images), got {masks.shape}")
    return masks.astype(bool)
