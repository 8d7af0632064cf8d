"""Forged numpy objects in downloaded files never reach numpy.

A pickle that names only numpy's own array-rebuilding functions can still BUILD a dtype
whose flags lie (an object dtype marked as holding no objects); numpy then reads pointers
from the file's bytes: a segfault, and code execution once an address is known. The files
here are written opcode by opcode, in the CIFAR container and in both torch containers
(zip and legacy). Each is read by the ``kdcam`` command in a subprocess, so a crash shows
as a signal instead of killing the test run; the promise is kdcam's own exit code, one
message naming the file, and no marker file from the payload that follows the forgery.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoints.safe_load import read_checkpoint
from engine.data import load_split

ROOT = Path(__file__).resolve().parents[2]
KDCAM_ERROR_EXIT = 1  # engine.cli.main: a KdcamError is printed and exits 1
POINTER = b"\x41" * 8  # what numpy would dereference as a PyObject*


# ---- pickle opcodes, protocol 2, written by hand -------------------------------------------------

def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def op_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def op_bytes(raw: bytes) -> bytes:
    """Bytes the way Python 3 spells them at protocol 2 (torch's unpickler has no BINBYTES)."""
    return op_global("_codecs", "encode") + op_str(raw.decode("latin-1")) + op_str("latin1") + b"\x86R"


def op_dtype(code: str, flags: int = 0, fields: bytes = b"NN") -> bytes:
    """``numpy.dtype(code)`` then BUILD with a state that lies: its flags say "no Python objects
    inside" (or claim them for a float), or it grafts an object-typed field onto a number."""
    tail = op_int(-1) + op_int(-1) + op_int(flags) if fields == b"NN" else op_int(8) + op_int(1) + op_int(flags)
    state = b"(" + b"K\x03" + op_str("|") + b"N" + fields + tail + b"t"
    return op_global("numpy", "dtype") + op_str(code) + b"\x89\x88\x87R" + state + b"b"


#: names ('a',) and fields {'a': (numpy.dtype('O8'), 0)}: a pointer-typed field on a float64
OBJECT_FIELD = (
    op_str("a") + b"\x85" + b"}(" + op_str("a")
    + b"(" + op_global("numpy", "dtype") + op_str("O8") + b"\x89\x88\x87R" + b"K\x00t" + b"u"
)


def op_scalar(core: str, dtype: bytes, raw: bytes) -> bytes:
    return op_global(f"numpy.{core}.multiarray", "scalar") + dtype + op_bytes(raw) + b"\x86R"


def op_array(dtype: bytes, shape: tuple[int, ...], raw: bytes) -> bytes:
    """``_reconstruct(ndarray, (0,), b'b')`` then BUILD with (version, shape, dtype, fortran, bytes)."""
    new = op_global("numpy._core.multiarray", "_reconstruct") + op_global("numpy", "ndarray")
    new += b"K\x00\x85" + op_bytes(b"b") + b"\x87R"
    dims = b"(" + b"".join(op_int(d) for d in shape) + b"t"
    return new + b"(K\x01" + dims + dtype + b"\x89" + op_bytes(raw) + b"tb"


def op_frombuffer(dtype: bytes, shape: tuple[int, ...], raw: bytes) -> bytes:
    """The protocol-5 spelling: ``_frombuffer(buffer, dtype, shape, order)``."""
    dims = b"(" + b"".join(op_int(d) for d in shape) + b"t"
    args = b"(" + op_bytes(raw) + dtype + dims + op_str("C") + b"t"
    return op_global("numpy._core.numeric", "_frombuffer") + args + b"R"


def op_system(command: str) -> bytes:
    return op_global("posix", "system") + op_str(command) + b"\x85R"


def op_list(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def op_dict(items: list[tuple[str, bytes]]) -> bytes:
    return b"}(" + b"".join(op_str(key) + value for key, value in items) + b"u"


def pickle_of(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


# ---- the forged objects ----------------------------------------------------------------------------

FORGED: dict[str, bytes] = {
    "object dtype, scalar (numpy.core)": op_scalar("core", op_dtype("O8"), POINTER),
    "object dtype, scalar (numpy._core)": op_scalar("_core", op_dtype("O8"), POINTER),
    "object dtype, array": op_array(op_dtype("O8"), (1,), POINTER),
    "object dtype, array (protocol-5 spelling)": op_frombuffer(op_dtype("O8"), (1,), POINTER),
    "float dtype with an object field, scalar": op_scalar("_core", op_dtype("f8", fields=OBJECT_FIELD), POINTER),
    "float dtype with an object field, array": op_array(op_dtype("f8", fields=OBJECT_FIELD), (1,), POINTER),
    "float dtype with lying flags, array": op_array(op_dtype("f8", flags=63), (1,), POINTER),
}


def run_kdcam(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "2000"}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "-w", str(workspace), *args],
        check=False, cwd=workspace, env=env, capture_output=True, text=True, timeout=120,
    )


def assert_refused(result: subprocess.CompletedProcess[str], path: Path, marker: Path) -> None:
    assert result.returncode == KDCAM_ERROR_EXIT, (result.returncode, result.stderr[-2000:])
    message = " ".join(result.stderr.split())
    assert "Traceback" not in message
    assert message.count("error:") == 1
    assert str(path) in message and "refused" in message
    assert "numpy dtype" in message
    assert not marker.exists()


# ---- CIFAR container ---------------------------------------------------------------------------------

def write_cifar10_test_split(folder: Path, batch: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}, protocol=2))
    path = folder / "test_batch"
    path.write_bytes(batch)
    return path


@pytest.mark.parametrize("forged", sorted(FORGED))
def test_forged_dtype_in_a_cifar_batch_is_refused_without_crashing(forged: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    good = op_array(op_dtype("u1"), (1, 3072), bytes(3072))
    batch = (
        op_dict([("data", FORGED[forged]), ("labels", op_list(b"K\x00")), ("x", op_system(f"touch {marker}"))])
        if "array" in forged
        else op_dict([("data", good), ("labels", op_list(FORGED[forged])), ("x", op_system(f"touch {marker}"))])
    )
    path = write_cifar10_test_split(tmp_path / "data" / "cifar-10-batches-py", pickle_of(batch))
    result = run_kdcam(tmp_path, "data", "preview", "cifar10", "--split", "test")
    assert_refused(result, path, marker)


def cifar_batch(images: np.ndarray, labels: np.ndarray, protocol: int) -> bytes:
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": planes, b"labels": labels, b"batch_label": b"x"}, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 5])
def test_genuine_cifar_pickles_written_by_numpy_still_load(protocol: int, tmp_path: Path) -> None:
    """numpy's own pickling (arrays, numpy labels, both protocols) reads back bit for bit."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(cifar_batch(images, labels, protocol))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": ["cat", "dog"]}, protocol=protocol))
    test = load_split("cifar10", "test", root=tmp_path)
    assert np.array_equal(test.images, images)
    assert test.labels.tolist() == labels.tolist()
    assert test.class_names == ["cat", "dog"]


def py2_str(raw: bytes) -> bytes:
    """BINSTRING: a Python 2 ``str``, read back as bytes with ``encoding="bytes"``."""
    return b"T" + struct.pack("<i", len(raw)) + raw


def test_the_official_python2_spelling_of_a_cifar_batch_still_loads(tmp_path: Path) -> None:
    """The real files were pickled by Python 2: numpy.core names and byte strings everywhere."""
    pixels = bytes(range(256)) * 24  # two images of 3072 bytes
    dtype = (op_global("numpy", "dtype") + py2_str(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + py2_str(b"|") + b"NNN" + op_int(-1) + op_int(-1) + b"K\x00tb")
    data = (op_global("numpy.core.multiarray", "_reconstruct") + op_global("numpy", "ndarray")
            + b"K\x00\x85" + py2_str(b"b") + b"\x87R"
            + b"(K\x01(" + op_int(2) + op_int(3072) + b"t" + dtype + b"\x89" + py2_str(pixels) + b"tb")
    batch = b"}(" + py2_str(b"data") + data + py2_str(b"labels") + b"](K\x01K\x00eu"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle_of(batch))
    meta = b"}(" + py2_str(b"label_names") + b"](" + py2_str(b"airplane") + py2_str(b"automobile") + b"eu"
    (folder / "batches.meta").write_bytes(pickle_of(meta))
    test = load_split("cifar10", "test", root=tmp_path)
    assert test.images.tobytes() == np.frombuffer(pixels, np.uint8).reshape(2, 3, 32, 32).transpose(0, 2, 3, 1).tobytes()
    assert test.labels.tolist() == [1, 0] and test.class_names == ["airplane", "automobile"]


# ---- torch containers ----------------------------------------------------------------------------------

def write_zip_checkpoint(path: Path, data_pkl: bytes) -> None:
    """A genuine torch zip checkpoint whose ``data.pkl`` is replaced by ``data_pkl``."""
    torch.save({"epoch": 1}, path)
    with zipfile.ZipFile(path) as original:
        members = {info.filename: original.read(info) for info in original.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, data_pkl if name.endswith("/data.pkl") else content)


def write_legacy_checkpoint(path: Path, obj_pkl: bytes) -> None:
    """torch's legacy layout: magic number, protocol version, system info, the object, storage keys."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = b"".join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, info))
    path.write_bytes(head + obj_pkl + pickle.dumps([], protocol=2))


@pytest.mark.parametrize(
    ("container", "forged"),
    [
        ("zip", "float dtype with lying flags, array"),
        ("zip", "float dtype with an object field, scalar"),
        ("legacy", "object dtype, scalar (numpy.core)"),
    ],
)
def test_forged_dtype_in_a_torch_checkpoint_is_refused_without_crashing(
    container: str, forged: str, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "downloaded.pth"
    obj = pickle_of(op_dict([("best_acc", FORGED[forged]), ("x", op_system(f"touch {marker}"))]))
    (write_zip_checkpoint if container == "zip" else write_legacy_checkpoint)(path, obj)
    result = run_kdcam(tmp_path, "checkpoints", "import", str(path))
    assert_refused(result, path, marker)
    assert "weights_only=False" not in result.stderr and "file an issue" not in result.stderr
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_genuine_checkpoint_with_numpy_values_still_loads(legacy: bool, tmp_path: Path) -> None:
    """A best_acc saved as numpy.float64, an epoch as numpy.int64 and a numpy RNG state load as data."""
    weights = {"conv.weight": torch.arange(6.0).reshape(1, 1, 2, 3)}
    saved = {"model": weights, "best_acc": np.float64(68.5), "epoch": np.int64(30),
             "rng": np.random.RandomState(0).get_state()[1]}
    path = tmp_path / "trained.pth"
    torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
    loaded = read_checkpoint(path)
    assert loaded.accuracy == pytest.approx(0.685) and type(loaded.accuracy) is float
    assert loaded.epoch == 30
    assert torch.equal(loaded.state["conv.weight"], weights["conv.weight"])
