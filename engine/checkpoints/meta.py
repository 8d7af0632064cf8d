"""Checkpoint metadata (``NAME.json`` beside ``NAME.safetensors``). Torch-free.

The TUI lists the store on its UI thread, so everything needed to show a checkpoint
(architecture, classes, normalisation, provenance, accuracy) lives in this JSON file and
is read without touching the weights.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import KdcamError
from engine.workspace import read_json

WEIGHTS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"
ROLES = ("teacher", "student", "imported")

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,119}")


@dataclass
class CheckpointMeta:
    """Everything kdcam knows about one checkpoint besides its tensors."""

    name: str
    arch: str  # a registry architecture, or "custom" for a --model-def class
    num_classes: int
    width: float = 1.0
    in_channels: int = 3
    input_size: int = 32
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    dataset: str | None = None
    class_names: list[str] | None = None
    role: str = "imported"  # teacher | student | imported
    method: str | None = None  # the KD method key that trained a student
    teacher: str | None = None  # the teacher checkpoint's name, for students
    accuracy: float | None = None  # test top-1 in [0, 1]
    recipe: str | None = None
    epochs: int | None = None
    run_id: str | None = None
    params: int | None = None
    created: str = field(default_factory=lambda: now_iso())
    source_path: str | None = None  # the imported file, as given
    source_sha256: str | None = None
    model_def: str | None = None  # "path/to/file.py:ClassName" for user model classes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckpointMeta":
        """Build from JSON; unknown keys (written by a newer kdcam) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in kwargs and kwargs[key] is not None:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def check_name(name: str) -> str:
    """A checkpoint name is also a file name: the shared rule of ``engine.names``."""
    from engine.names import check_id

    return check_id("checkpoint name", name)


def weights_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{check_name(name)}{WEIGHTS_SUFFIX}"


def meta_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{check_name(name)}{META_SUFFIX}"


def read_meta(directory: str | Path, name: str) -> CheckpointMeta:
    """The metadata of checkpoint ``name``; a clear error when it is missing or unreadable."""
    path = meta_path(directory, name)
    if not path.exists() or not weights_path(directory, name).exists():
        known = ", ".join(m.name for m in list_checkpoints(directory)) or "none"
        raise KdcamError(f"no checkpoint named {name!r} in {directory} (known: {known})")
    data = read_json(path)
    if not isinstance(data, dict):
        raise KdcamError(f"checkpoint metadata {path} is not valid JSON")
    try:
        return CheckpointMeta.from_dict(data)
    except TypeError as exc:
        raise KdcamError(f"checkpoint metadata {path} is incomplete: {exc}") from None


def list_checkpoints(directory: str | Path) -> list[CheckpointMeta]:
    """Every complete checkpoint (both files present, JSON readable), sorted by name.

    Half-written or foreign files are skipped silently: another process may be writing
    to the store while the TUI lists it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{META_SUFFIX}")):
        name = path.name[: -len(META_SUFFIX)]
        if not _NAME_PATTERN.fullmatch(name) or not (directory / f"{name}{WEIGHTS_SUFFIX}").exists():
            continue
        data = read_json(path)
        if not isinstance(data, dict):
            continue
        try:
            meta = CheckpointMeta.from_dict(data)
        except (TypeError, ValueError):
            continue
        meta.name = name  # the file name is the truth
        found.append(meta)
    return found
