"""Dataset spec strings -> ``ImageSet``: the one place that knows every dataset by name.

A spec is ``NAME[:PATH][?key=value&...]``, for example ``shapes?classes=10&train=2000``,
``cifar100`` or ``npz:/data/mine.npz``. Options a dataset does not know are an error, so a
typo never silently trains on the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from engine.data import ImageSet
from engine.errors import KdcamError
from engine.limits import MAX_DATA_BYTES, MAX_IMAGES

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # shapes | cifar10 | cifar100 | mnist | npz | imagefolder
    path: str | None = None  # for npz and imagefolder
    options: dict[str, str] = field(default_factory=dict)

    def int_option(self, key: str, default: int, minimum: int = 0) -> int:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise KdcamError(f"dataset {self.kind}: option {key}={raw!r} is not an integer") from None
        if value < minimum:
            raise KdcamError(f"dataset {self.kind}: option {key}={value} must be >= {minimum}")
        return value

    def check_options(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            known = ", ".join(allowed) if allowed else "none"
            raise KdcamError(f"dataset {self.kind}: unknown option(s) {', '.join(unknown)} (known: {known})")


def parse_spec(spec: str) -> DatasetSpec:
    """Split ``NAME[:PATH][?options]`` and check that NAME is a dataset we know."""
    body, _, query = spec.strip().partition("?")
    kind, colon, path = body.partition(":")
    kind = kind.strip().lower()
    if kind not in _LOADERS:
        raise KdcamError(f"unknown dataset {spec!r}; known: {', '.join(_DESCRIPTIONS)}")
    needs_path = kind in ("npz", "imagefolder")
    if needs_path and not path:
        raise KdcamError(f"dataset {kind} needs a path: {kind}:PATH")
    if colon and not needs_path:
        raise KdcamError(f"dataset {kind} takes no path (got {spec!r})")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise KdcamError(f"dataset {spec!r}: options must look like ?key=value&key=value") from None
    return DatasetSpec(kind, path or None, options)


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
    return dict(_DESCRIPTIONS)


def _load_shapes(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data import shapes

    spec.check_options(("classes", "train", "test", "seed"))
    count = spec.int_option(split, shapes.DEFAULT_TRAIN if split == "train" else shapes.DEFAULT_TEST, minimum=1)
    where = f"dataset shapes: option {split}={count}"
    MAX_IMAGES.check(where, count, "the number of images to generate")
    MAX_DATA_BYTES.check(where, count * shapes.IMAGE_SIZE**2 * 4, "the images and masks it would hold")
    classes = spec.int_option("classes", shapes.DEFAULT_CLASSES)
    generated = shapes.generate(count, num_classes=classes, seed=spec.int_option("seed", 0), split=split)
    return ImageSet("shapes", split, generated.images, generated.labels, generated.class_names,
                    masks=generated.masks, mean=shapes.MEAN, std=shapes.STD)


def _load_cifar(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.cifar import load_cifar

    spec.check_options(())
    return load_cifar(spec.kind, split, root, download)


def _load_mnist(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.mnist import load_mnist

    spec.check_options(())
    return load_mnist(split, root, download)


def _load_npz(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.npzset import load_npz

    spec.check_options(())
    return load_npz(Path(spec.path or ""), split)


def _load_imagefolder(spec: DatasetSpec, split: str, root: Path, download: bool) -> ImageSet:
    from engine.data.imagefolder import DEFAULT_SIZE, load_imagefolder

    spec.check_options(("size",))
    return load_imagefolder(Path(spec.path or ""), split, size=spec.int_option("size", DEFAULT_SIZE, minimum=8))


_Loader = Callable[[DatasetSpec, str, Path, bool], ImageSet]

_LOADERS: dict[str, _Loader] = {
    "shapes": _load_shapes,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "mnist": _load_mnist,
    "npz": _load_npz,
    "imagefolder": _load_imagefolder,
}

_DESCRIPTIONS: dict[str, str] = {
    "shapes": "embedded procedural shapes x textures with object masks (options: classes, train, test, seed)",
    "cifar10": "CIFAR-10, python version under ROOT/cifar-10-batches-py (--download to fetch)",
    "cifar100": "CIFAR-100, python version under ROOT/cifar-100-python (--download to fetch)",
    "mnist": "MNIST IDX files under ROOT/MNIST/raw (--download to fetch)",
    "npz": "npz:PATH - arrays images (uint8 NHWC), labels, optional masks and class_names; "
    "one file or a dir with train.npz and test.npz",
    "imagefolder": "imagefolder:PATH - one subfolder per class (optionally under train/ and test/); option size",
}
