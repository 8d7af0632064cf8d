"""The validation split: a seeded, class-stratified share of the training images held out of training.

DESIGN §6 (model selection): the best epoch is chosen on images the model never trained on and
that are not the test set, so the reported test accuracy is not selected on the test set. The
split is a pure function of (training set, fraction, seed) and is recorded in the run's
config and every checkpoint's metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data import ImageSet
from engine.errors import KdcamError

DEFAULT_FRACTION = 0.1
MAX_FRACTION = 0.5
_STREAM = 0x5A1  # the split's own random stream of the training seed


def carve_validation(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet | None, dict[str, Any]]:
    """``(train without validation, validation or None, record)``; ``fraction`` 0 keeps every image
    for training (then the best epoch is chosen on the test split, as before validation existed)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= MAX_FRACTION:
        raise KdcamError(f"validation fraction must be a number in [0, {MAX_FRACTION}], got {fraction!r}")
    if fraction == 0:
        return train, None, {"fraction": 0.0, "seed": seed, "size": 0, "of": len(train), "selects_on": "test"}
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))
    order = rng.permutation(len(train))
    labels = train.labels[order]
    # each class gives its first round(fraction * count) images in the shuffled order
    by_class = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=train.num_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_class] = np.arange(len(labels)) - np.repeat(starts, counts)
    held = rank < np.round(fraction * counts)[labels]
    if held.all() or not held.any():
        raise KdcamError(f"validation fraction {fraction} of {len(train)} training images leaves "
                         f"{'no training' if held.all() else 'no validation'} images")
    validation, kept = np.sort(order[held]), np.sort(order[~held])
    record = {"fraction": float(fraction), "seed": seed, "size": int(len(validation)), "of": len(train),
              "selects_on": "validation"}
    return train.subset(kept), train.subset(validation, "validation"), record
