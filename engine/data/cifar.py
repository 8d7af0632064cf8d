"""CIFAR-10 and CIFAR-100 from their official "python version" files, read without running code.

The files are pickles; an ordinary ``pickle.load`` would execute whatever a tampered file
asks for. ``SafeUnpickler`` resolves only the handful of globals the real files (and numpy
re-creations of them) use to rebuild arrays, and refuses everything else.

Layout under ``root`` (what torchvision downloads and what the tarballs extract to)::

    cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/     train, test, meta
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset
from engine.errors import KdcamError


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

# (module, name) pairs a CIFAR pickle may reference. numpy moved ``core`` to ``_core`` in 2.0;
# both spellings resolve to the same functions. ``_codecs.encode`` is how protocol-2 pickles
# written by Python 3 spell a bytes object.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays, dicts, lists and strings, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def read_pickle(path: Path) -> Any:
    """Unpickle a CIFAR file safely; any problem becomes a KdcamError naming the file."""
    try:
        data = path.read_bytes()
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except OSError as exc:
        raise KdcamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle raises anything from EOFError to TypeError
        raise KdcamError(f"{path}: not a readable CIFAR python-pickle file ({exc})") from None


def load_cifar(name: str, split: str, root: Path, download: bool) -> ImageSet:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    files = layout.train_files if split == "train" else layout.test_files
    needed = [folder / f for f in (*files, layout.meta_file)]
    if download and not all(p.exists() for p in needed):
        _download(name, root, split)
    missing = [p for p in needed if not p.exists()]
    if missing:
        everything = ", ".join((*layout.train_files, *layout.test_files, layout.meta_file))
        raise KdcamError(
            f"{name}: {missing[0]} not found. Put the CIFAR python version ({layout.url}, extracted) so that "
            f"{folder}/ holds {everything}; or pass --download to fetch it."
        )
    images, labels = [], []
    for path in needed[:-1]:
        batch = _dict(read_pickle(path), path, (b"data", layout.labels_key))
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise KdcamError(f"{path}: b'data' must be uint8 N x 3072, got {data.dtype} {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # channel planes -> NHWC
        labels.append(np.asarray(batch[layout.labels_key]))
    meta_path = needed[-1]
    meta = _dict(read_pickle(meta_path), meta_path, (layout.names_key,))
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[layout.names_key]]
    return checked_imageset(
        str(folder), split, np.concatenate(images), np.concatenate(labels), class_names,
        mean=layout.mean, std=layout.std,
    )


def _dict(obj: Any, path: Path, keys: tuple[bytes, ...]) -> dict[bytes, Any]:
    if not isinstance(obj, dict):
        raise KdcamError(f"{path}: expected a dict, found {type(obj).__name__}")
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
