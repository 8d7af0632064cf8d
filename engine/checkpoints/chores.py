"""Checkpoint-store chores as engine jobs (rename, delete, list taps), shared by the CLI and the TUI.

They run on the engine thread like every other job, so the UI thread never imports torch
or touches weights.
"""

from __future__ import annotations

from engine.api.checkpoints import read_meta
from engine.api.integrity import scan_store
from engine.api.results import ModelTaps
from engine.api.specs import DeleteCheckpointSpec, RenameCheckpointSpec, RepairCheckpointsSpec, TapsSpec
from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.jobs import JobContext


def _store(workspace: str) -> CheckpointStore:
    return CheckpointStore(Workspace.open(workspace).checkpoints)


def run_rename(spec: RenameCheckpointSpec, ctx: JobContext) -> str:
    _store(spec.workspace).rename(spec.name, spec.new_name)
    return spec.new_name


def run_repair(spec: RepairCheckpointsSpec, ctx: JobContext) -> list[str]:
    """Roll every journal forward, then set aside what no checkpoint accounts for; what was done, in words."""
    store = CheckpointStore(Workspace.open(spec.workspace).checkpoints, on_wait=ctx.log)
    report = scan_store(store.directory)
    actions: list[str] = []
    with store.writing():  # rolls every journal forward
        actions += [f"completed the interrupted change {p.name}" for p in report.pending if not p.exists()]
        actions += [f"dropped {p.path.name}, an uncommitted copy (its change never started)"
                    for p in report.temporaries if not p.path.exists()]
        left = scan_store(store.directory)
        aside = [*left.pending, *(p.path for p in left.orphans + left.temporaries)]
        if aside:
            target = store.quarantine(aside)
            actions += [f"moved {path.name} to {target}" for path in aside]
    return actions


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
    taps = tuple(model.tap_info(meta.input_size, meta.in_channels))
    return ModelTaps(taps, model.default_cam_tap, model.default_hint_tap)
