"""``npz:PATH`` datasets: your own arrays in a numpy ``.npz`` file.

Arrays: ``images`` (uint8, N x H x W x C with C = 1 or 3, or N x H x W), ``labels``
(integers 0..K-1), optional ``masks`` (bool N x H x W: where the object is, used to score
CAMs) and optional ``class_names`` (K strings). PATH is either one ``.npz`` file or a
directory holding ``train.npz`` and/or ``test.npz`` (``test.npz`` alone is enough to
analyse or evaluate). One file is used *whole* for both splits - it is usually a test set
to analyse or evaluate a model trained elsewhere - unless ``?holdout=F`` asks for a fixed
random fraction F of it as the test split and the rest as the train split (do that to
train on it). Object (pickled) arrays are refused: an npz never runs code. Each array's
header is checked against ``engine.limits`` before its body is inflated, so a forged
header or a deflate bomb fails at once with a message instead of exhausting memory.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from engine.data import ImageSet
from engine.data.arrays import checked_imageset, holdout_split
from engine.errors import KdcamError
from engine.limits import MAX_CLASSES, MAX_DATA_BYTES, MAX_IMAGES, open_regular


def load_npz(path: Path, split: str, holdout: float | None = None) -> ImageSet:
    """``split`` of the file or directory at ``path``; ``holdout`` splits one file (see the module doc)."""
    if path.is_dir():
        if holdout is not None:
            raise KdcamError(f"npz: {path} is a directory of train.npz/test.npz; ?holdout splits a single file only")
        return _read(path / f"{split}.npz", split, None)
    return _read(path, split, holdout)


def parse_holdout(raw: str | None) -> float | None:
    """The ``?holdout=F`` option: a fraction strictly between 0 and 1, or None when absent."""
    if raw is None:
        return None
    try:
        fraction = float(raw)
    except ValueError:
        raise KdcamError(f"dataset npz: option holdout={raw!r} is not a number (a fraction such as 0.2)") from None
    if not 0 < fraction < 1:
        raise KdcamError(f"dataset npz: option holdout={raw} must be a fraction between 0 and 1, such as 0.2")
    return fraction


def _read(path: Path, split: str, holdout: float | None) -> ImageSet:
    if not path.exists() and not path.is_symlink():
        hint = ""
        if path.parent.is_dir() and path.name in ("train.npz", "test.npz"):
            hint = (" (a directory holds test.npz to analyse or evaluate, and train.npz too to train; or give "
                    "one file with ?holdout=0.2 to split it)")
        raise KdcamError(f"npz: {path} not found{hint}")
    with open_regular(path, "numpy .npz") as handle:
        arrays = read_npz(path, handle)
    images, labels, masks = arrays["images"], arrays["labels"], arrays.get("masks")
    names = arrays.get("class_names")
    class_names: list[str] | None = None
    if names is not None:
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise KdcamError(f"{path}: class_names must be a 1-D array of strings, got {names.dtype}")
        MAX_CLASSES.check(str(path), len(names), "the number of class_names")
        class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    # check everything first, on the whole file, so errors name the file rather than a split
    whole = checked_imageset(str(path), split, images, labels, class_names, masks)
    if holdout is None:
        return whole
    chosen = holdout_split(len(whole), split, holdout)
    if len(chosen) == 0:
        raise KdcamError(f"{path}: ?holdout={holdout} of {len(whole)} images leaves the {split} split empty")
    return ImageSet(
        whole.name, split, whole.images[chosen], whole.labels[chosen], whole.class_names,
        masks=None if whole.masks is None else whole.masks[chosen], mean=whole.mean, std=whole.std,
    )


def read_npz(path: Path, handle: BinaryIO) -> dict[str, np.ndarray]:
    """The known arrays of an npz, each checked against the limits before its body is read.

    ``np.load`` allocates whatever a member's header claims and then inflates the member;
    here each ``.npy`` header is read first (without decompressing the body), the claimed
    size is checked against ``engine.limits`` and against the size the zip directory
    records for the member, and only then exactly that many bytes are inflated.
    """
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise KdcamError(f"{path}: not a readable .npz file (not a zip archive; write it with numpy.savez): {exc}") from None
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist() if not info.is_dir()}
        for key in ("images", "labels"):
            if key not in members:
                raise KdcamError(f"{path}: no {key!r} array (found: {', '.join(members) or 'nothing'})")
        try:
            return {key: _member(path, archive, members[key], key) for key in _KNOWN if key in members}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise KdcamError(f"{path}: not a readable .npz file (truncated or corrupt: {exc})") from None


_KNOWN = ("images", "labels", "masks", "class_names")
_CHUNK = 1 << 22


def _member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    where = f"{path}: array {key!r}"
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(member)
        else:
            raise KdcamError(f"{where} uses .npy format version {version}, which kdcam does not read")
        if dtype.hasobject:
            raise KdcamError(
                f"{where} is a numpy object array (pickled Python objects, which can run code); "
                "object arrays are never loaded: save plain uint8/integer/bool/string arrays"
            )
        count = math.prod(shape)
        if key != "class_names" and shape:
            MAX_IMAGES.check(where, shape[0], "the number of entries its header claims")
        claimed = count * dtype.itemsize
        MAX_DATA_BYTES.check(where, claimed, "the size its header claims")
        header = member.tell()
        if info.file_size != header + claimed:
            raise KdcamError(
                f"{where}: its header claims shape {shape} of {dtype} ({claimed:,} bytes) but the archive "
                f"records {info.file_size - header:,} bytes (truncated or forged)"
            )
        array = np.empty(count, dtype=dtype)
        target = array.data.cast("B")
        received = 0
        while received < claimed:  # in chunks: one huge read() would build the whole body twice
            chunk = member.read(min(claimed - received, _CHUNK))
            if not chunk:
                raise KdcamError(f"{where}: truncated ({received:,} of {claimed:,} bytes)")
            target[received : received + len(chunk)] = chunk
            received += len(chunk)
    return array.reshape(shape, order="F" if fortran else "C")
