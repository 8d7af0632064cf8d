"""The checkpoint store: ``NAME.safetensors`` (tensors) + ``NAME.json`` (metadata) in one directory.

Writes are atomic and the JSON is written last, so a checkpoint is listed only once its
weights are complete. Loading uses safetensors, which holds tensors only: it cannot run code.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api import atomic
from engine.api.checkpoints import (
    CheckpointMeta,
    check_name,
    list_checkpoints,
    meta_path,
    now_iso,
    read_meta,
    weights_path,
)
from engine.errors import KdcamError

if TYPE_CHECKING:
    from torch import nn

    from engine.models import TappedModel


class CheckpointStore:
    """One directory of checkpoints (a workspace's ``checkpoints/``)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def list(self) -> list[CheckpointMeta]:
        return list_checkpoints(self.directory)

    def exists(self, name: str) -> bool:
        return meta_path(self.directory, name).exists() and weights_path(self.directory, name).exists()

    def meta(self, name: str) -> CheckpointMeta:
        return read_meta(self.directory, name)

    def save(self, name: str, model: nn.Module, meta: CheckpointMeta, overwrite: bool = True) -> CheckpointMeta:
        """Write ``model``'s tensors and ``meta`` (name, parameter count and date filled in)."""
        from safetensors.torch import save_file

        check_name(name)
        model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: store the plain module's names
        if not overwrite and self.exists(name):
            raise KdcamError(f"a checkpoint named {name!r} already exists in {self.directory}")
        state = {key: tensor.detach().to("cpu").contiguous() for key, tensor in model.state_dict().items()}
        params = sum(p.numel() for p in model.parameters())
        meta = dataclasses.replace(meta, name=name, params=params, created=meta.created or now_iso())
        weights = weights_path(self.directory, name)
        had_weights = weights.exists()
        atomic.write_with(weights, lambda tmp: save_file(state, str(tmp)))
        try:
            atomic.write_json(meta_path(self.directory, name), meta.to_dict())
        except BaseException:
            if not had_weights:  # a new checkpoint never leaves its weights behind without metadata
                weights.unlink(missing_ok=True)
            raise
        return meta

    def load(self, name: str, device: str = "cpu") -> tuple[TappedModel, CheckpointMeta]:
        """Rebuild the model described by the metadata and load its tensors (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from engine.checkpoints.building import build_from_meta, load_state_strict

        meta = read_meta(self.directory, name)
        path = weights_path(self.directory, name)
        try:
            state = load_file(str(path), device=str(device))
        except (SafetensorError, OSError) as exc:
            raise KdcamError(f"checkpoint weights {path} are unreadable: {exc}") from None
        model = build_from_meta(meta, self.directory)
        load_state_strict(model, state, str(path))
        return model.to(device).eval(), meta

    def rename(self, old: str, new: str) -> CheckpointMeta:
        """Rename both files; refuses to overwrite an existing checkpoint."""
        meta = read_meta(self.directory, old)
        check_name(new)
        if old == new:
            return meta
        if weights_path(self.directory, new).exists() or meta_path(self.directory, new).exists():
            raise KdcamError(f"cannot rename {old!r} to {new!r}: a checkpoint named {new!r} already exists")
        # Weights first, then the new JSON, then drop the old JSON: at every instant the
        # store lists either the old name or the new one (a JSON without weights is ignored).
        os.replace(weights_path(self.directory, old), weights_path(self.directory, new))
        renamed = dataclasses.replace(meta, name=new)
        atomic.write_json(meta_path(self.directory, new), renamed.to_dict())
        meta_path(self.directory, old).unlink()
        self._rename_teacher_references(old, new)
        return renamed

    def delete(self, name: str) -> None:
        """Remove both files (metadata first, so a crash never leaves a listed half)."""
        read_meta(self.directory, name)
        meta_path(self.directory, name).unlink()
        weights_path(self.directory, name).unlink(missing_ok=True)

    def _rename_teacher_references(self, old: str, new: str) -> None:
        """Students name their teacher; keep that link when the teacher is renamed."""
        for other in self.list():
            if other.teacher == old:
                atomic.write_json(meta_path(self.directory, other.name), dataclasses.replace(other, teacher=new).to_dict())
