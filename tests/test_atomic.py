"""Atomic writes: a failure mid-write leaves the previous file (or nothing), never half a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import atomic


def test_write_json_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "meta.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2, "b": [1, 2]})
    assert target.read_text().startswith("{") and '"b"' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["meta.json"]


def test_failure_mid_write_keeps_the_old_file_and_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    atomic.write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(target) as handle:
            handle.write(b"new partial")
            raise RuntimeError("disk vanished")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_write_with_renames_only_after_the_writer_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"

    def failing_writer(path: Path) -> None:
        path.write_bytes(b"half")
        raise ValueError("renderer crashed")

    with pytest.raises(ValueError):
        atomic.write_with(target, failing_writer)
    assert list(tmp_path.iterdir()) == []
    atomic.write_with(target, lambda p: p.write_bytes(b"png"))
    assert target.read_bytes() == b"png"


def test_atomic_directory_appears_only_complete(tmp_path: Path) -> None:
    dest = tmp_path / "exports" / "report"
    with pytest.raises(KeyError):
        with atomic.atomic_directory(dest) as tmp:
            (tmp / "a.csv").write_text("x")
            raise KeyError("figure failed")
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    with atomic.atomic_directory(dest) as tmp:
        (tmp / "a.csv").write_text("x")
    assert (dest / "a.csv").read_text() == "x"


def test_json_understands_numpy_scalars_and_arrays(tmp_path: Path) -> None:
    import numpy as np

    target = tmp_path / "r.json"
    atomic.write_json(target, {"mean": np.float32(0.5), "hist": np.arange(3), "where": tmp_path})
    import json

    loaded = json.loads(target.read_text())
    assert loaded["mean"] == 0.5 and loaded["hist"] == [0, 1, 2] and loaded["where"] == str(tmp_path)


def test_files_and_directories_get_the_permissions_of_normally_created_ones(tmp_path: Path) -> None:
    """mkstemp/mkdtemp create private 0600/0700 entries; results must be readable like any file."""
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain-dir").mkdir()
    atomic.write_text(tmp_path / "meta.json", "{}")
    with atomic.atomic_directory(tmp_path / "report") as tmp:
        (tmp / "a.txt").write_text("x")

    def mode(name: str) -> int:
        return (tmp_path / name).stat().st_mode & 0o777

    assert mode("meta.json") == mode("plain.txt")
    assert mode("report") == mode("plain-dir")
