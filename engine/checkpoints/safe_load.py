"""Read a foreign checkpoint file into a flat ``{name: tensor}`` dict without running its code.

``.pt/.pth/.th`` files go through ``torch.load(weights_only=True)``, whose unpickler
only rebuilds tensors and plain containers; a pickle that names any other callable
(``os.system``, a model class) is refused before anything runs. numpy values beside the
weights (a ``best_acc`` saved as ``numpy.float64``) are read through inert stand-ins
(``engine.inert_numpy``) registered under numpy's names: no numpy class or ``__setstate__``
ever sees the file's bytes, since a forged numpy dtype corrupts memory. ``.safetensors``
holds tensors only. Every failure becomes one ``KdcamError`` naming the file as given and
saying why kdcam refuses it; torch's own advice ("weights_only=False", "file an issue") is
never passed on.
"""

from __future__ import annotations

import numbers
import pickle
import pickletools
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

from engine.errors import KdcamError
from engine.inert_numpy import STAND_INS, NumpyRefused
from engine.limits import open_regular, regular_file

SUFFIXES = (".pt", ".pth", ".th", ".safetensors")
#: keys under which training scripts (RepDistiller, mdistiller, pytorch-cifar, Lightning…) nest the weights
CONTAINER_KEYS = ("model", "state_dict", "net", "model_state_dict", "model_state", "student", "weights")
#: prefixes added by DataParallel / DistributedDataParallel and torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
_REFUSED_HINT = (
    "kdcam reads only tensors and plain data from a checkpoint and never runs code from it; "
    "re-save the weights with torch.save(model.state_dict(), PATH) or as .safetensors"
)


@dataclass
class LoadedCheckpoint:
    """The tensors of a file plus what the training script stored beside them."""

    state: dict[str, Tensor]
    accuracy: float | None = None
    epoch: int | None = None
    notes: list[str] = field(default_factory=list)


def read_checkpoint(path: Path) -> LoadedCheckpoint:
    """Load ``path`` safely and unwrap it to a bare state dict.

    Messages name ``path`` as given (a symlink, not its target); a directory or FIFO that
    carries a checkpoint's name is reported as what it is, and a FIFO is never opened.
    """
    info = regular_file(path, "checkpoint")
    if path.suffix.lower() not in SUFFIXES:
        raise KdcamError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)}")
    if info.st_size == 0:
        raise KdcamError(f"{path}: the file is empty")
    with open_regular(path, "checkpoint") as handle:
        head = handle.read(16)
        if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path, head):
            return LoadedCheckpoint(_load_safetensors(path))
        handle.seek(0)
        return unwrap(_torch_load(path, handle, head), path)


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + header_len <= path.stat().st_size


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise KdcamError(f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}") from None


def _torch_load(path: Path, handle: BinaryIO, head: bytes) -> Any:
    is_zip = head.startswith(_ZIP_MAGIC)
    if not is_zip and (not head or head[0] != _PICKLE_PROTO):
        raise KdcamError(f"{path}: not a PyTorch or safetensors checkpoint (unrecognised content)")
    if is_zip and not zipfile.is_zipfile(handle):
        raise KdcamError(f"{path}: the file is truncated or corrupt (its zip archive cannot be read)")
    handle.seek(0)
    # Registered for good rather than per call: the stand-ins are inert, and a per-call
    # registration would be removed under a concurrent load in another thread.
    torch.serialization.add_safe_globals(_INERT_NUMPY)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it is about to refuse anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*TorchScript archive", category=UserWarning)
            return torch.load(handle, map_location="cpu", weights_only=True)
    except NumpyRefused as exc:
        raise KdcamError(
            f"{path}: refused: its pickle holds {exc}; numpy values beside the weights are read only as "
            "plain numbers and numeric arrays. " + _REFUSED_HINT
        ) from None
    except pickle.UnpicklingError as exc:
        refused = re.findall(r"GLOBAL ([\w.]+)", str(exc)) or (
            _pickle_globals(path) if not is_zip else []
        )
        if refused:
            raise KdcamError(
                f"{path}: refused because loading it would execute code (its pickle calls {refused[0]}). "
                + _REFUSED_HINT
            ) from None
        raise KdcamError(
            f"{path}: refused: its pickle data is not a plain weights file ({_torch_reason(exc)}). " + _REFUSED_HINT
        ) from None
    except RuntimeError as exc:
        text = str(exc)
        if "TorchScript" in text:
            raise KdcamError(
                f"{path}: a TorchScript archive (torch.jit.save); loading one runs its code, so kdcam "
                "refuses it. " + _REFUSED_HINT
            ) from None
        if "legacy .tar format" in text:
            raise KdcamError(
                f"{path}: a checkpoint in PyTorch's legacy .tar format, which cannot be read without running "
                "code, so kdcam refuses it. " + _REFUSED_HINT
            ) from None
        raise KdcamError(f"{path}: the file is truncated or corrupt: {_torch_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises anything from EOFError to TypeError
        raise KdcamError(f"{path}: the file is truncated or corrupt: {_torch_reason(exc)}") from None


#: numpy's pickle names mapped to inert stand-ins, in torch's ``(object, "module.name")`` form
_INERT_NUMPY: list[Any] = [(stand_in, name) for name, stand_in in STAND_INS.items()]
_TORCH_ADVICE = ("weights_only", "file an issue", "safe_globals", "trusted source", "pytorch.org", "Weights only")


def _torch_reason(exc: BaseException) -> str:
    """The first line of torch's error that states a fact, not advice to load the file unsafely."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    for line in text.splitlines():
        line = line.strip()
        if line and not any(advice in line for advice in _TORCH_ADVICE):
            return line.rstrip(".")
    return type(exc).__name__


def _pickle_globals(path: Path) -> list[str]:
    """Callables a raw pickle would import, read from its opcodes without executing anything.

    torch's unpickler stops at the first opcode it does not support, before it sees the
    name; this tells the user what the file would have run.
    """
    found: list[str] = []
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(path.read_bytes()):
            if opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - not a pickle at all: nothing to report
        return found
    return found


def unwrap(obj: Any, path: Path) -> LoadedCheckpoint:
    """Find the state dict inside a training script's container and strip wrapper prefixes."""
    notes: list[str] = []
    accuracy = epoch = None
    if isinstance(obj, Mapping) and not _is_state_dict(obj):
        accuracy = _number(obj, ("accuracy", "best_acc", "best_prec1", "acc", "best_accuracy", "test_acc", "prec1"))
        epoch_value = _number(obj, ("epoch",))
        epoch = int(epoch_value) if epoch_value is not None else None
        for key in CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], Mapping) and _is_state_dict(obj[key]):
                notes.append(f"weights taken from the {key!r} entry")
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        found = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, Mapping) else type(obj).__name__
        raise KdcamError(
            f"{path}: no state dict found (a mapping of tensor names to tensors, possibly under "
            f"{'/'.join(repr(k) for k in CONTAINER_KEYS[:3])}); the file holds: {found}"
        )
    state = {str(k): v for k, v in obj.items()}
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
            notes.append(f"stripped the {prefix!r} prefix")
    if accuracy is not None and accuracy > 1.0:
        accuracy /= 100.0  # scripts store percentages
    return LoadedCheckpoint(state, accuracy, epoch, notes)


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def _number(container: Mapping, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = container.get(key)
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, numbers.Real) and not isinstance(value, bool):  # numpy scalars included
            return float(value)
    return None
