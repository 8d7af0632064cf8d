"""Checkpoint-store chores as engine jobs (rename, delete, list taps), shared by the CLI and the TUI.

They run on the engine thread like every other job, so the UI thread never imports torch
or touches weights.
"""

from __future__ import annotations

from engine.api.checkpoints import read_meta
from engine.api.results import ModelTaps, TapInfo
from engine.api.specs import DeleteCheckpointSpec, RenameCheckpointSpec, TapsSpec
from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.jobs import JobContext


def _store(workspace: str) -> CheckpointStore:
    return CheckpointStore(Workspace.open(workspace).checkpoints)


def run_rename(spec: RenameCheckpointSpec, ctx: JobContext) -> str:
    _store(spec.workspace).rename(spec.name, spec.new_name)
    return spec.new_name


def run_delete(spec: DeleteCheckpointSpec, ctx: JobContext) -> str:
    _store(spec.workspace).delete(spec.name)
    return spec.name


def run_taps(spec: TapsSpec, ctx: JobContext) -> ModelTaps:
    """The model is built from its metadata alone on the meta device (shapes only; no weights are read).

    A user model's code runs only when trusted; otherwise ``UntrustedModelCode`` (a
    KdcamError naming ``kdcam checkpoints trust NAME``) is the job's error.
    """
    import torch

    from engine.checkpoints.building import build_from_meta

    directory = Workspace.open(spec.workspace).checkpoints
    meta = read_meta(directory, spec.name)
    if meta.model_def:
        model = build_from_meta(meta, directory)
    else:
        with torch.device("meta"):
            model = build_from_meta(meta, directory)
    taps = tuple(TapInfo(t.name, t.channels, t.height, t.width)
                 for t in model.tap_info(meta.input_size, meta.in_channels))
    return ModelTaps(taps, model.default_cam_tap, model.default_hint_tap)
