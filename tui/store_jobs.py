"""Checkpoint-store chores the TUI runs as engine jobs (rename, delete, list taps).

They go through the job runner like everything else so the UI thread never imports torch
or touches weights; each names its runner function below, which runs on the engine thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from engine.jobs import JobContext


@dataclass(frozen=True)
class RenameCheckpointSpec:
    runner: ClassVar[str] = "tui.store_jobs:run_rename"
    kind: ClassVar[str] = "rename"
    workspace: str
    name: str
    new_name: str

    @property
    def title(self) -> str:
        return f"rename {self.name} -> {self.new_name}"


@dataclass(frozen=True)
class DeleteCheckpointSpec:
    runner: ClassVar[str] = "tui.store_jobs:run_delete"
    kind: ClassVar[str] = "delete"
    workspace: str
    name: str

    @property
    def title(self) -> str:
        return f"delete {self.name}"


@dataclass(frozen=True)
class TapsSpec:
    """The feature taps (name, channels, size) of a checkpoint's model, for the inspect pane."""

    runner: ClassVar[str] = "tui.store_jobs:run_taps"
    kind: ClassVar[str] = "taps"
    workspace: str
    name: str

    @property
    def title(self) -> str:
        return f"taps of {self.name}"


def _store(workspace: str) -> Any:
    from engine.checkpoints.store import CheckpointStore
    from engine.workspace import Workspace

    return CheckpointStore(Workspace.open(workspace).checkpoints)


def run_rename(spec: RenameCheckpointSpec, ctx: JobContext) -> str:
    _store(spec.workspace).rename(spec.name, spec.new_name)
    return spec.new_name


def run_delete(spec: DeleteCheckpointSpec, ctx: JobContext) -> str:
    _store(spec.workspace).delete(spec.name)
    return spec.name


def run_taps(spec: TapsSpec, ctx: JobContext) -> list[tuple[str, int, int, int]]:
    """The model is built from its metadata alone (shapes only; no weights are read).

    A user model's code runs only when trusted; otherwise ``UntrustedModelCode`` (a
    KdcamError naming ``kdcam checkpoints trust NAME``) is the job's error.
    """
    from engine.checkpoints.building import build_from_meta
    from engine.checkpoints.meta import read_meta
    from engine.workspace import Workspace

    directory = Workspace.open(spec.workspace).checkpoints
    meta = read_meta(directory, spec.name)
    model = build_from_meta(meta, directory)
    return [(t.name, t.channels, t.height, t.width) for t in model.tap_info(meta.input_size, meta.in_channels)]
