"""Choosing the device a job runs on, shared by training and analysis."""

from __future__ import annotations

import torch

from engine.errors import KdcamError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit device that is not there is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KdcamError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KdcamError(f"device {name!r} was asked for but no CUDA GPU is available; use --device cpu")
    return device
