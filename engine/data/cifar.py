"""CIFAR-10 and CIFAR-100 from their official "python version" files, read without running code.

The files are pickles; an ordinary ``pickle.load`` would execute whatever a tampered file
asks for, and even numpy's own array-rebuilding functions corrupt memory when fed a forged
dtype. ``SafeUnpickler`` maps the handful of numpy names the real files (and numpy
re-creations of them) use to inert stand-ins (``engine.inert_numpy``), refuses every other
name, and only then accepts exactly what the CIFAR format holds.

Layout under ``root`` (what torchvision downloads and what the tarballs extract to)::

    cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/     train, test, meta
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset
from engine.errors import KdcamError
from engine.inert_numpy import STAND_INS, InertArray, NumpyRefused, latin1_bytes
from engine.limits import MAX_CLASSES, MAX_DATA_BYTES, MAX_IMAGES, open_regular


@dataclass(frozen=True)
class CifarLayout:
    name: str  # cifar10 | cifar100
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: bytes
    names_key: bytes
    mean: tuple[float, ...]
    std: tuple[float, ...]
    url: str = "https://www.cs.toronto.edu/~kriz/cifar.html"


LAYOUTS = {
    "cifar10": CifarLayout(
        "cifar10", "cifar-10-batches-py", tuple(f"data_batch_{k}" for k in range(1, 6)), ("test_batch",),
        "batches.meta", b"labels", b"label_names", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": CifarLayout(
        "cifar100", "cifar-100-python", ("train",), ("test",), "meta", b"fine_labels", b"fine_label_names",
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
}

#: what a CIFAR pickle may name, mapped to inert stand-ins (see engine.inert_numpy); nothing else
_STAND_INS = {**STAND_INS, "_codecs.encode": latin1_bytes}


class SafeUnpickler(pickle.Unpickler):
    """Resolves numpy's names to inert stand-ins and refuses every other global.

    No numpy function or ``__setstate__`` ever runs on the file's data: arrays come back as
    ``InertArray`` records and scalars as plain Python numbers.
    """

    def find_class(self, module: str, name: str) -> Any:
        stand_in = _STAND_INS.get(f"{module}.{name}")
        if stand_in is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return stand_in


def read_pickle(path: Path) -> Any:
    """Unpickle a CIFAR file through the stand-ins; any problem becomes a KdcamError naming the file."""
    with open_regular(path, "CIFAR python-pickle") as handle:
        MAX_DATA_BYTES.check(str(path), os.fstat(handle.fileno()).st_size, "the file's size")
        try:
            data = handle.read()
        except OSError as exc:
            raise KdcamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except NumpyRefused as exc:
        raise KdcamError(f"{path}: refused: the pickle holds {exc}; a CIFAR file holds only uint8 images, "
                         "integer labels and names") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle raises anything from EOFError to TypeError
        raise KdcamError(f"{path}: not a readable CIFAR python-pickle file ({exc})") from None


def load_cifar(name: str, split: str, root: Path, download: bool) -> ImageSet:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    files = layout.train_files if split == "train" else layout.test_files
    needed = [folder / f for f in (*files, layout.meta_file)]
    if download and not all(p.exists() for p in needed):
        _download(name, root, split)
    missing = [p for p in needed if not p.exists() and not p.is_symlink()]
    if missing:
        everything = ", ".join((*layout.train_files, *layout.test_files, layout.meta_file))
        raise KdcamError(
            f"{name}: {missing[0]} not found. Put the CIFAR python version ({layout.url}, extracted) so that "
            f"{folder}/ holds {everything}; or pass --download to fetch it."
        )
    images, labels = [], []
    total = 0
    for path in needed[:-1]:
        batch = _dict(read_pickle(path), path, (b"data", layout.labels_key))
        data = _images(batch[b"data"], path)
        total += len(data)
        MAX_IMAGES.check(str(folder), total, f"the {split} split's image count")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # channel planes -> NHWC
        labels.append(_labels(batch[layout.labels_key], path, layout.labels_key, len(data)))
    meta_path = needed[-1]
    meta = _dict(read_pickle(meta_path), meta_path, (layout.names_key,))
    class_names = _names(meta[layout.names_key], meta_path, layout.names_key)
    return checked_imageset(
        str(folder), split, np.concatenate(images), np.concatenate(labels), class_names,
        mean=layout.mean, std=layout.std,
    )


def _images(value: Any, path: Path) -> np.ndarray:
    """``b'data'``: exactly a uint8 N x 3072 array (three 32x32 colour planes per row)."""
    if not isinstance(value, InertArray):
        raise KdcamError(f"{path}: b'data' must be a uint8 N x 3072 numpy array, found {type(value).__name__}")
    try:
        data = value.to_numpy()
    except NumpyRefused as exc:
        raise KdcamError(f"{path}: refused: b'data' is {exc}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise KdcamError(f"{path}: b'data' must be uint8 N x 3072, got {data.dtype} {data.shape}")
    return data


def _labels(value: Any, path: Path, key: bytes, count: int) -> np.ndarray:
    """Labels: a list of Python ints (as CIFAR ships them) or a 1-D integer array (numpy re-creations)."""
    if isinstance(value, InertArray):
        try:
            array = value.to_numpy()
        except NumpyRefused as exc:
            raise KdcamError(f"{path}: refused: {key!r} is {exc}") from None
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise KdcamError(f"{path}: {key!r} must be 1-D integers, got {array.dtype} {array.shape}")
        if len(array) != count:
            raise KdcamError(f"{path}: {count} images but {len(array)} labels in {key!r}")
        return array
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise KdcamError(f"{path}: {key!r} must be a list of integers")
    if len(value) != count:
        raise KdcamError(f"{path}: {count} images but {len(value)} labels in {key!r}")
    if value and (min(value) < 0 or max(value) >= MAX_CLASSES.value()):
        raise KdcamError(f"{path}: {key!r} holds label {min(value) if min(value) < 0 else max(value)}, out of range")
    return np.asarray(value, dtype=np.int64)


def _names(value: Any, path: Path, key: bytes) -> list[str]:
    """Class names: a list of byte strings (the official files) or str (re-creations)."""
    if not isinstance(value, list) or not all(isinstance(n, (bytes, str)) for n in value):
        raise KdcamError(f"{path}: {key!r} must be a list of strings")
    MAX_CLASSES.check(str(path), len(value), f"the number of names in {key!r}")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in value]
    except UnicodeDecodeError:
        raise KdcamError(f"{path}: {key!r} holds a name that is not UTF-8 text") from None


def _dict(obj: Any, path: Path, keys: tuple[bytes, ...]) -> dict[bytes, Any]:
    if not isinstance(obj, dict) or not all(isinstance(k, (bytes, str)) for k in obj):
        raise KdcamError(f"{path}: expected a dict with string keys, found {type(obj).__name__}")
    obj = {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}
    for key in keys:
        if key not in obj:
            raise KdcamError(f"{path}: missing key {key!r} (has {', '.join(map(repr, obj))})")
    return obj


def _download(name: str, root: Path, split: str) -> None:
    """Let torchvision fetch and extract the official archive; we still read the files ourselves."""
    from torchvision import datasets

    dataset_class = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        dataset_class(str(root), train=split == "train", download=True)
    except Exception as exc:  # noqa: BLE001 - network and archive errors come in many types
        raise KdcamError(f"{name}: download into {root} failed ({exc})") from None
