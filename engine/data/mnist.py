"""MNIST from its raw IDX files (optionally gzipped), in torchvision's folder layout.

Under ``root``: ``MNIST/raw/`` holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``). Images stay
28x28 with one channel; the models end in global average pooling, so any size works.
"""

from __future__ import annotations

import gzip
import math
import zlib
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset
from engine.errors import KdcamError
from engine.limits import MAX_DATA_BYTES, MAX_IMAGES, open_regular

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
    images_path, labels_path = [p for p in paths if p is not None]
    images = read_idx(images_path, _IMAGES_MAGIC)
    labels = read_idx(labels_path, _LABELS_MAGIC)
    return checked_imageset(str(folder), split, images, labels, [str(k) for k in range(10)], mean=MEAN, std=STD)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file: a big-endian header (magic, dimension sizes) then unsigned bytes.

    The sizes the header claims are checked against ``engine.limits`` before the body is
    read or inflated, and exactly that many bytes are inflated from a ``.gz`` (a gzip bomb
    stops at the claimed size).
    """
    dims = magic & 0xFF
    header_size = 4 * (1 + dims)
    with open_regular(path, "MNIST IDX") as raw_handle:
        try:
            with gzip.GzipFile(fileobj=raw_handle) if path.suffix == ".gz" else nullcontext(raw_handle) as handle:
                header = handle.read(header_size)
                if len(header) < header_size or int.from_bytes(header[:4], "big") != magic:
                    raise KdcamError(f"{path}: not an MNIST IDX file (expected magic number {magic:#010x})")
                shape = tuple(int.from_bytes(header[4 * (k + 1) : 4 * (k + 2)], "big") for k in range(dims))
                MAX_IMAGES.check(str(path), shape[0], "the number of entries its header claims")
                expected = math.prod(shape)
                MAX_DATA_BYTES.check(str(path), expected, f"the size its header claims (shape {shape})")
                body = handle.read(expected + 1)  # one more byte reveals trailing data
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise KdcamError(f"{path}: cannot read ({exc})") from None
    if len(body) != expected:
        found = f"{len(body)}" if len(body) <= expected else "more"
        raise KdcamError(f"{path}: header says {shape} but the file holds {found} values (truncated?)")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


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
