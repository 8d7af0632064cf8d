"""``npz:PATH`` datasets: your own arrays in a numpy ``.npz`` file.

Arrays: ``images`` (uint8, N x H x W x C with C = 1 or 3, or N x H x W), ``labels``
(integers 0..K-1), optional ``masks`` (bool N x H x W: where the object is, used to score
CAMs) and optional ``class_names`` (K strings). PATH is either one ``.npz`` file, split into
train and test by a fixed 80/20 holdout, or a directory holding ``train.npz`` and
``test.npz``. Files are read with ``allow_pickle=False``: an npz never runs code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset, holdout_split
from engine.errors import KdcamError


def load_npz(path: Path, split: str) -> ImageSet:
    if path.is_dir():
        return _read(path / f"{split}.npz", split, holdout=False)
    return _read(path, split, holdout=True)


def _read(path: Path, split: str, holdout: bool) -> ImageSet:
    if not path.is_file():
        hint = " (a directory must hold train.npz and test.npz)" if path.parent.is_dir() and path.name in (
            "train.npz", "test.npz") else ""
        raise KdcamError(f"npz: {path} not found{hint}")
    if not zipfile.is_zipfile(path):
        raise KdcamError(f"{path}: not a readable .npz file (not a zip archive; write it with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        raise KdcamError(f"{path}: cannot load its arrays ({exc}); object arrays are never loaded") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise KdcamError(f"{path}: not a readable .npz file ({exc})") from None
    if "images" not in arrays:
        raise KdcamError(f"{path}: no 'images' array (found: {', '.join(arrays) or 'nothing'})")
    if "labels" not in arrays:
        raise KdcamError(f"{path}: no 'labels' array (found: {', '.join(arrays)})")
    images, labels, masks = arrays["images"], arrays["labels"], arrays.get("masks")
    class_names = arrays.get("class_names")
    if class_names is not None:
        if class_names.ndim != 1 or class_names.dtype.kind not in "US":
            raise KdcamError(f"{path}: class_names must be a 1-D array of strings, got {class_names.dtype}")
        class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in class_names.tolist()]
    # check everything first, on the whole file, so errors name the file rather than a split
    whole = checked_imageset(str(path), split, images, labels, class_names, masks)
    if not holdout:
        return whole
    chosen = holdout_split(len(whole), split)
    return ImageSet(
        whole.name, split, whole.images[chosen], whole.labels[chosen], whole.class_names,
        masks=None if whole.masks is None else whole.masks[chosen], mean=whole.mean, std=whole.std,
    )
