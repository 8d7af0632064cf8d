"""Where training runs, and the few settings that differ between CUDA and CPU.

On CUDA: channels_last memory format, bf16 autocast, cuDNN autotuning. On CPU the same
code runs in float32 (bf16 autocast on most CPUs is slower, not faster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)



def autocast(device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of the mixed-precision context for ``device`` (bf16 on CUDA, none on CPU)."""
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def prepare_model(model: M, device: torch.device) -> M:
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
