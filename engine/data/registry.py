"""Dataset spec strings -> ``ImageSet``: the loaders of every dataset the catalogue names.

A spec is ``NAME[:PATH][?key=value&...]``, for example ``shapes?classes=10&train=2000``,
``cifar100`` or ``npz:/data/mine.npz``. Options a dataset does not know are an error, so a
typo never silently trains on the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.api.datasets import DESCRIPTIONS, SPLITS, DatasetSpec, parse_spec
from engine.data import ImageSet
from engine.errors import KdcamError
from engine.limits import MAX_DATA_BYTES, MAX_IMAGES

__all__ = ["SPLITS", "DatasetSpec", "check_shapes_version", "describe_datasets", "load_split", "parse_spec"]


def load_split(spec: str, split: str, root: Path = Path("data"), download: bool = False) -> ImageSet:
    """Load one split of a dataset fully into memory.

    ``root`` is where downloadable datasets live (``root/cifar-10-batches-py`` and so on);
    ``download`` lets torchvision fetch them when they are missing.
    """
    if split not in SPLITS:
        raise KdcamError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    parsed = parse_spec(spec)
    imageset = _LOADERS[parsed.kind](parsed, split, Path(root), download)
    imageset.name = spec
    return imageset


def describe_datasets() -> dict[str, str]:
    """Dataset names and one-line descriptions, for help texts and pickers."""
    return dict(DESCRIPTIONS)


def _load_shapes(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data import shapes

    spec.check_options(("classes", "train", "test", "seed", "v", "shortcut"))
    count = spec.int_option(split, shapes.DEFAULT_TRAIN if split == "train" else shapes.DEFAULT_TEST, minimum=1)
    where = f"dataset shapes: option {split}={count}"
    MAX_IMAGES.check(where, count, "the number of images to generate")
    MAX_DATA_BYTES.check(where, count * shapes.IMAGE_SIZE**2 * 6, "the images and masks it would hold")
    classes = spec.int_option("classes", shapes.DEFAULT_CLASSES)
    version = shapes_version(spec)
    generated = shapes.generate(count, num_classes=classes, seed=spec.int_option("seed", 0), split=split,
                                version=version, shortcut=_shortcut(spec))
    mean, std = shapes.statistics(version)
    return ImageSet("shapes", split, generated.images, generated.labels, generated.class_names,
                    masks=generated.masks, mean=mean, std=std, distractor_masks=generated.distractor_masks,
                    cue_masks=generated.cue_masks, cue_labels=generated.cue_labels)


def shapes_version(spec: DatasetSpec) -> int:
    """The ``v`` option of a shapes spec (default: the current version)."""
    from engine.data import shapes

    version = spec.int_option("v", shapes.DEFAULT_VERSION, minimum=1)
    if version not in shapes.VERSIONS:
        raise KdcamError(f"dataset shapes: option v={version}: versions are {', '.join(map(str, shapes.VERSIONS))}")
    return version


def check_shapes_version(dataset: str, checkpoint: str, mean: Sequence[float], std: Sequence[float]) -> None:
    """Refuse to pair a checkpoint trained on one ``shapes`` version with another version's images.

    A checkpoint records ``dataset: "shapes"`` whatever the default version was when it was
    trained, so a workspace made before a version change would silently be analysed on other
    images. Its normalisation tells the version apart: each version's statistics are fixed, and
    training copies them into the checkpoint. Imported models (other statistics) are not checked."""
    spec = parse_spec(dataset)
    if spec.kind != "shapes" or len(mean) != 3 or len(std) != 3:
        return
    from engine.data import shapes

    wanted = shapes_version(spec)
    trained = next((v for v in shapes.VERSIONS if np.allclose(shapes.statistics(v), (mean, std), rtol=0, atol=5e-5)),
                   None)
    if trained is not None and trained != wanted:
        raise KdcamError(f"checkpoint {checkpoint!r} was trained on shapes version {trained} (its normalisation is "
                         f"that version's) but {dataset!r} is version {wanted}: use the dataset 'shapes?v={trained}' "
                         "with it")


def _shortcut(spec: DatasetSpec) -> float | None:
    raw = spec.options.get("shortcut")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise KdcamError(f"dataset shapes: option shortcut={raw!r} must be a probability in [0, 1]")
    return value


def _load_cifar(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.cifar import load_cifar

    spec.check_options(())
    return load_cifar(spec.kind, split, root, download)


def _load_mnist(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.mnist import load_mnist

    spec.check_options(())
    return load_mnist(split, root, download)


def _load_npz(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.npzset import load_npz, parse_holdout

    spec.check_options(("holdout",))
    return load_npz(Path(spec.path or ""), split, parse_holdout(spec.options.get("holdout")))


def _load_imagefolder(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.imagefolder import DEFAULT_SIZE, load_imagefolder

    spec.check_options(("size", "resize"))
    resize = spec.int_option("resize", 0, minimum=8) if "resize" in spec.options else None
    return load_imagefolder(Path(spec.path or ""), split, size=spec.int_option("size", DEFAULT_SIZE, minimum=8),
                            resize=resize)


_Loader = Callable[[DatasetSpec, str, Path, bool], ImageSet]

_LOADERS: dict[str, _Loader] = {
    "shapes": _load_shapes,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "mnist": _load_mnist,
    "npz": _load_npz,
    "imagefolder": _load_imagefolder,
}
