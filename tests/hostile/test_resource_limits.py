"""Data files that claim huge sizes fail at once with a message, before anything is allocated.

Each file is written by the test to *claim* far more than it holds (a header, a label, a
picture's dimensions, a compressed member). The promise: a ``KdcamError`` naming the file,
the claim and the environment variable that raises the limit, with Python's peak memory
(numpy's allocations included, via tracemalloc) a few megabytes at most.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from engine.data import load_split
from engine.errors import KdcamError

PEAK_BYTES = 8 * 2**20  # far below what any of the claims would need


@contextmanager
def bounded_memory() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"peak {peak:,} bytes"


def refused(spec: str, *needles: str, root: Path = Path("data")) -> str:
    with bounded_memory(), pytest.raises(KdcamError) as err:
        load_split(spec, "train", root=root)
    message = str(err.value)
    for needle in needles:
        assert needle in message, message
    return message


def npy_bytes(shape: tuple[int, ...], dtype: str, body: bytes) -> bytes:
    """A .npy member whose header claims ``shape`` whatever ``body`` really holds."""
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue() + body


def write_npz(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return path


def tiny_images(count: int = 4) -> bytes:
    return npy_bytes((count, 8, 8, 3), "|u1", bytes(count * 8 * 8 * 3))


def test_a_label_of_2_to_the_62_is_refused_before_naming_that_many_classes(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2**62, 3], dtype=np.int64)
    path = write_npz(tmp_path / "big-label.npz", {"images": tiny_images(), "labels": npy_bytes((4,), "<i8", labels.tobytes())})
    refused(f"npz:{path}", str(path), "found label 4611686018427387904", "KDCAM_MAX_CLASSES")


def test_uint64_labels_that_would_wrap_to_minus_one_are_refused(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2**64 - 1, 1], dtype=np.uint64)
    path = write_npz(tmp_path / "wrap.npz", {"images": tiny_images(), "labels": npy_bytes((4,), "<u8", labels.tobytes())})
    refused(f"npz:{path}", str(path), "found label 18446744073709551615")


def test_uint64_labels_in_range_still_load(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1, 0], dtype=np.uint64)
    path = write_npz(tmp_path / "ok.npz", {"images": tiny_images(), "labels": npy_bytes((4,), "<u8", labels.tobytes())})
    loaded = load_split(f"npz:{path}", "train")
    assert loaded.labels.dtype == np.int64 and set(loaded.labels.tolist()) <= {0, 1}


def test_an_npz_header_claiming_four_billion_images_is_refused_before_allocating(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "claims.npz", {
        "images": npy_bytes((4_000_000_000, 32, 32, 3), "|u1", bytes(3072)),
        "labels": npy_bytes((4,), "<i8", bytes(32)),
    })
    refused(f"npz:{path}", str(path), "'images'", "4,000,000,000 images", "KDCAM_MAX_IMAGES")


@pytest.mark.parametrize("honest_header", [True, False], ids=["header claims the bomb", "header lies small"])
def test_a_deflate_bomb_in_an_npz_is_refused_before_inflating(
    honest_header: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 MiB of zeros deflate to ~24 KiB; kdcam reads the header and the zip directory, not the body."""
    monkeypatch.setenv("KDCAM_MAX_DATA_BYTES", str(4 * 2**20))
    count = 24 * 2**20 // 192
    shape = (count, 8, 8, 3) if honest_header else (4, 8, 8, 3)
    path = write_npz(tmp_path / "bomb.npz", {
        "images": npy_bytes(shape, "|u1", bytes(count * 192)),
        "labels": npy_bytes((4,), "<i8", bytes(32)),
    }, compress=True)
    assert path.stat().st_size < 2**20
    needles = ("KDCAM_MAX_DATA_BYTES",) if honest_header else ("truncated or forged",)
    refused(f"npz:{path}", str(path), "'images'", *needles)


def test_an_object_array_in_an_npz_is_named_as_such(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "objects.npz", {"images": npy_bytes((1,), "|O", b"\x80\x02N."), "labels": tiny_images()})
    message = refused(f"npz:{path}", str(path), "numpy object array", "never loaded")
    assert "corrupt" not in message


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG (8-bit RGB) whose header claims ``width`` x ``height``, with no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b""))
                     + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [8000, 20000])
def test_a_huge_png_in_an_image_folder_is_refused_before_decoding(side: int, tmp_path: Path) -> None:
    """8000x8000 is over kdcam's limit; 20000x20000 is over PIL's own, which was a raw traceback."""
    from PIL import Image

    (tmp_path / "cats").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "cats" / "a.png")
    write_png_header(tmp_path / "dogs" / "huge.png", side, side)
    message = refused(f"imagefolder:{tmp_path}", str(tmp_path / "dogs" / "huge.png"), "KDCAM_MAX_IMAGE_PIXELS")
    assert "DecompressionBomb" not in message


def write_idx(path: Path, magic: int, shape: tuple[int, ...], body: bytes) -> None:
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in shape) + body
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)


def mnist_folder(root: Path) -> Path:
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    write_idx(folder / "train-labels-idx1-ubyte", 0x801, (4,), bytes(4))
    return folder


def test_an_mnist_header_claiming_huge_sizes_is_refused(tmp_path: Path) -> None:
    write_idx(mnist_folder(tmp_path) / "train-images-idx3-ubyte", 0x803, (2**31, 28, 28), bytes(784))
    refused("mnist", "train-images-idx3-ubyte", "2,147,483,648 images", "KDCAM_MAX_IMAGES", root=tmp_path)


def test_a_gzip_bomb_behind_a_small_mnist_header_is_never_inflated(tmp_path: Path) -> None:
    write_idx(mnist_folder(tmp_path) / "train-images-idx3-ubyte.gz", 0x803, (4, 28, 28), bytes(24 * 2**20))
    refused("mnist", "train-images-idx3-ubyte.gz", "header says (4, 28, 28)", root=tmp_path)


def test_a_shapes_split_of_a_hundred_million_images_is_refused_at_once() -> None:
    refused("shapes?train=100000000", "shapes", "train=100000000", "KDCAM_MAX_IMAGES")


def test_limits_are_overridable_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_npz(tmp_path / "four.npz", {"images": tiny_images(), "labels": npy_bytes((4,), "<i8", bytes(32))})
    assert len(load_split(f"npz:{path}", "train")) == 4  # npz:FILE is used whole (a holdout is asked for)
    monkeypatch.setenv("KDCAM_MAX_IMAGES", "3")
    refused(f"npz:{path}", "4 images", "limit of 3 images")
    monkeypatch.setenv("KDCAM_MAX_IMAGES", "lots")
    refused(f"npz:{path}", "KDCAM_MAX_IMAGES='lots' is not an integer")
