"""A file kdcam refuses gets one message saying what the file is and why, naming it as given.

Directories and FIFOs that carry a checkpoint's or dataset's name are reported as such
(a FIFO is never opened, which would block forever); a symlink is named, not its target;
torch's advice to load with ``weights_only=False`` or to "file an issue" never reaches the
user; a numpy object array is called an object array, not a corrupt file.
"""

from __future__ import annotations

import os
import signal
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.api.specs import ImportSpec
from engine.checkpoints.importer import import_checkpoint
from engine.data import load_split
from engine.errors import KdcamError

TORCH_ADVICE = ("weights_only", "file an issue", "safe_globals", "trusted source")


@contextmanager
def no_blocking(seconds: int = 10) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the reader blocks, e.g. opening a FIFO."""

    def timed_out(signum: int, frame: object) -> None:
        raise TimeoutError("the reader blocked")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def import_error(workspace: Path, path: Path) -> str:
    with no_blocking(), pytest.raises(KdcamError) as err:
        import_checkpoint(ImportSpec(str(workspace), str(path)))
    message = str(err.value)
    assert not any(advice in message for advice in TORCH_ADVICE), message
    return message


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def test_a_directory_named_like_a_checkpoint_is_called_a_directory(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "x.pth").mkdir()
    message = import_error(workspace, tmp_path / "x.pth")
    assert f"{tmp_path / 'x.pth'}: is a directory, not a checkpoint file" in message
    assert "no such file" not in message


def test_a_fifo_named_like_a_checkpoint_is_refused_without_blocking(workspace: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.pth")
    message = import_error(workspace, tmp_path / "x.pth")
    assert f"{tmp_path / 'x.pth'}: is a named pipe (FIFO), not a checkpoint file" in message


@pytest.mark.parametrize("spec", ["npz:{d}/data.npz", "imagefolder:{d}/folder"])
def test_a_fifo_in_a_dataset_is_refused_without_blocking(spec: str, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "data.npz")
    (tmp_path / "folder" / "cats").mkdir(parents=True)
    os.mkfifo(tmp_path / "folder" / "cats" / "a.png")
    with no_blocking(), pytest.raises(KdcamError) as err:
        load_split(spec.format(d=tmp_path), "train")
    assert str(tmp_path) in str(err.value)


def test_errors_name_the_symlink_given_not_its_target(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "blob-7f3a.pth"
    target.write_bytes(b"\x13 not a checkpoint")
    (tmp_path / "model.pth").symlink_to(target)
    message = import_error(workspace, tmp_path / "model.pth")
    assert str(tmp_path / "model.pth") in message and "blob-7f3a" not in message
    (tmp_path / "dangling.pth").symlink_to(tmp_path / "gone.pth")
    assert "a symbolic link whose target does not exist" in import_error(workspace, tmp_path / "dangling.pth")


def test_a_numpy_object_array_in_a_checkpoint_is_named_not_called_corrupt(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "extras.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "history": np.array([{"lr": 0.1}], dtype=object)}, path)
    message = import_error(workspace, path)
    assert str(path) in message and "numpy dtype 'O8'" in message and "truncated or corrupt" not in message


def test_unusual_pickle_data_is_explained_without_torchs_advice(workspace: Path, tmp_path: Path) -> None:
    """torch answers an opcode it does not support with "file an issue"; kdcam says what it is."""
    path = tmp_path / "odd.pth"
    torch.save({"epoch": 1}, path)
    with zipfile.ZipFile(path) as original:
        members = {info.filename: original.read(info) for info in original.infolist()}
    with zipfile.ZipFile(path, "w") as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, b"\x80\x03B\x01\x00\x00\x00x." if name.endswith("/data.pkl") else content)
    message = import_error(workspace, path)
    assert f"{path}: refused: its pickle data is not a plain weights file" in message


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated; old files still exist
def test_a_torchscript_archive_is_named_as_one(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    message = import_error(workspace, path)
    assert f"{path}: a TorchScript archive" in message
