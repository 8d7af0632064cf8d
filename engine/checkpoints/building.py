"""Rebuild a checkpoint's model from its metadata, and load tensors with a readable verdict.

``load_state_dict``'s own error is a wall of text; users importing a foreign file need to
know in one line which tensors are missing, extra, or of the wrong shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.api.checkpoints import CheckpointMeta
from engine.errors import KdcamError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from engine.models import TappedModel

_SHOWN = 4  # tensor names listed per category before "(+N more)"


def build_from_meta(meta: CheckpointMeta) -> "TappedModel":
    """A freshly initialised model of the checkpoint's architecture (registry or user class)."""
    if meta.model_def:
        from engine.checkpoints.user_model import build_user_model

        return build_user_model(meta.model_def, meta.num_classes, meta.in_channels, meta.input_size)
    from engine.models import build_model

    return build_model(meta.arch, meta.num_classes, meta.width, meta.in_channels)


def state_mismatch(
    expected: Mapping[str, "Tensor"], given: Mapping[str, "Tensor"], compare_shapes: bool = True
) -> str | None:
    """None when ``given`` has exactly the tensor names (and shapes) of ``expected``, else why not."""
    missing = [k for k in expected if k not in given]
    unknown = [k for k in given if k not in expected]
    wrong = [
        f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if compare_shapes and k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if wrong:
        problems.append(f"shape mismatch (file vs model): {_some(wrong)}")
    if missing:
        problems.append(f"missing tensors: {_some(missing)}")
    if unknown:
        problems.append(f"unknown tensors: {_some(unknown)}")
    return "; ".join(problems) or None


def load_state_strict(model: "nn.Module", state: Mapping[str, "Tensor"], source: str) -> None:
    """Copy ``state`` into ``model`` or raise one clear KdcamError naming ``source``."""
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise KdcamError(f"{source}: tensors do not fit {type(model).__name__}: {problem}")
    model.load_state_dict(dict(state), strict=True)


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")
