"""MNIST from its raw IDX files (optionally gzipped), in torchvision's folder layout.

Under ``root``: ``MNIST/raw/`` holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``). Images stay
28x28 with one channel; the models end in global average pooling, so any size works.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset
from engine.errors import KdcamError

FOLDER = Path("MNIST") / "raw"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MEAN, STD = (0.1307,), (0.3081,)
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 or 1 dimensions


def load_mnist(split: str, root: Path, download: bool) -> ImageSet:
    folder = root / FOLDER
    paths = [_find(folder / name) for name in FILES[split]]
    if download and None in paths:
        _download(root, split)
        paths = [_find(folder / name) for name in FILES[split]]
    if None in paths:
        everything = ", ".join(name for pair in FILES.values() for name in pair)
        missing = FILES[split][paths.index(None)]
        raise KdcamError(
            f"mnist: {folder / missing} not found (nor {missing}.gz). Put the four MNIST IDX files "
            f"({everything}, gzipped or not) in {folder}/; or pass --download to fetch them."
        )
    images_path, labels_path = paths
    images = read_idx(images_path, _IMAGES_MAGIC)
    labels = read_idx(labels_path, _LABELS_MAGIC)
    return checked_imageset(str(folder), split, images, labels, [str(k) for k in range(10)], mean=MEAN, std=STD)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file: a big-endian header (magic, dimension sizes) then unsigned bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise KdcamError(f"{path}: cannot read ({exc})") from None
    dims = magic & 0xFF
    header = 4 * (1 + dims)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise KdcamError(f"{path}: not an MNIST IDX file (expected magic number {magic:#010x})")
    shape = tuple(int.from_bytes(raw[4 * (k + 1) : 4 * (k + 2)], "big") for k in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise KdcamError(f"{path}: header says {shape} but the file holds {body.size} values (truncated?)")
    return body.reshape(shape)


def _find(path: Path) -> Path | None:
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return candidate
    return None


def _download(root: Path, split: str) -> None:
    from torchvision import datasets

    try:
        datasets.MNIST(str(root), train=split == "train", download=True)
    except Exception as exc:  # noqa: BLE001 - network and archive errors come in many types
        raise KdcamError(f"mnist: download into {root} failed ({exc})") from None
