"""What a named dataset tells an imported checkpoint: normalisation, class names, input size.

DESIGN §7: normalisation belongs to the checkpoint. On import it defaults to the named
dataset's statistics (read from the dataset itself when its files are at hand, else from
the published values of the well-known datasets below) and can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.api.workspace import Workspace
from engine.errors import KdcamError


@dataclass(frozen=True)
class DatasetFacts:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: list[str] | None
    input_size: int


#: per-channel statistics of the training sets, as used by the common CIFAR/MNIST training scripts
KNOWN_STATISTICS: dict[str, DatasetFacts] = {
    "cifar10": DatasetFacts((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), None, 32),
    "cifar100": DatasetFacts((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), None, 32),
    "mnist": DatasetFacts((0.1307,), (0.3081,), None, 28),
}


def dataset_facts(dataset: str, workspace: Workspace | None, in_channels: int) -> DatasetFacts:
    """Facts about ``dataset``: from its test split when loadable, else from ``KNOWN_STATISTICS``."""
    from engine.data.registry import load_split, parse_spec

    root = workspace.data if workspace else Path("data")
    try:
        if parse_spec(dataset).kind == "shapes":
            return _shapes_facts(dataset, in_channels)
        imageset = load_split(dataset, "test", root)
    except KdcamError:
        kind = dataset.split("?", 1)[0].split(":", 1)[0].strip().lower()
        if kind in KNOWN_STATISTICS:
            return KNOWN_STATISTICS[kind]
        raise
    channels = imageset.channels
    if channels != in_channels:
        raise KdcamError(f"dataset {dataset} has {channels}-channel images but the model takes {in_channels} channels")
    return DatasetFacts(tuple(imageset.mean), tuple(imageset.std), list(imageset.class_names), imageset.image_size)


def _shapes_facts(dataset: str, in_channels: int) -> DatasetFacts:
    """The embedded dataset's facts without generating images (they do not depend on the images drawn)."""
    from engine.data import shapes
    from engine.data.registry import parse_spec

    if in_channels != 3:
        raise KdcamError(f"dataset {dataset} has 3-channel images but the model takes {in_channels} channels")
    classes = parse_spec(dataset).int_option("classes", shapes.DEFAULT_CLASSES, minimum=1)
    return DatasetFacts(tuple(shapes.MEAN), tuple(shapes.STD), shapes.class_names(classes), 32)
