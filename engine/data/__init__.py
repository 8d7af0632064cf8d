"""Datasets as arrays in memory: every split is an ``ImageSet``.

Dataset specs are strings: ``shapes`` (embedded default), ``cifar10``, ``cifar100``,
``mnist``, ``npz:PATH``, ``imagefolder:PATH``. ``load_split(spec, split, root)`` returns
the split; dataset-specific options ride on the spec (e.g. ``shapes?classes=10&train=2000``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass
class ImageSet:
    """One split, fully in memory. Normalisation statistics are defaults for new checkpoints."""

    name: str  # the dataset spec it came from
    split: str
    images: np.ndarray  # uint8, N x H x W x C
    labels: np.ndarray  # int64, N
    class_names: list[str]
    masks: np.ndarray | None = None  # bool, N x H x W: the object, where the dataset knows it
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    #: bool N x H x W: objects that are not the labelled one (shapes v2), where the dataset knows them
    distractor_masks: np.ndarray | None = None
    #: bool N x H x W: a spurious cue (shapes v2 with ``shortcut=P``), and the class it names (int64 N)
    cue_masks: np.ndarray | None = None
    cue_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray, split: str | None = None) -> ImageSet:
        """The images at ``rows`` (every per-image array cut the same way), e.g. a validation split."""
        def cut(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[rows]

        return replace(self, split=split or self.split, images=self.images[rows], labels=self.labels[rows],
                       masks=cut(self.masks), distractor_masks=cut(self.distractor_masks),
                       cue_masks=cut(self.cue_masks), cue_labels=cut(self.cue_labels))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])


# Re-exported last: the registry imports ImageSet from this module.
from engine.data.registry import describe_datasets, load_split, parse_spec  # noqa: E402

__all__ = ["ImageSet", "describe_datasets", "load_split", "parse_spec"]
