"""Model-definition code in a store, handled without running it: reading, hashing, copying,
locating and checking a checkpoint's copy, and validating constructor arguments. Torch-free.

The CLI shows and trusts model code through this module; building a model from it
(``engine.checkpoints.user_model``) runs it only after these checks and the user's trust.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engine.api import atomic, trust
from engine.errors import KdcamError

if TYPE_CHECKING:
    from engine.api.checkpoints import CheckpointMeta

#: where model-definition copies live inside a store
DEFS_DIR = "model-defs"
#: a model definition larger than this is not a model file
MAX_SOURCE_BYTES = 1 << 20
#: limits on --model-args: the JSON text, nesting depth and number of values
MAX_ARGS_CHARS = 4096
_MAX_ARGS_DEPTH = 4
_MAX_ARGS_VALUES = 256


class UntrustedModelCode(KdcamError):
    """The checkpoint's model code is not trusted (or not verifiable); nothing was run."""


@dataclass(frozen=True)
class ModelSource:
    """The bytes of a model-definition file, with their sha256 and where they came from."""

    data: bytes
    sha256: str
    origin: str  # for messages: the file the bytes were read from


def split_model_def(model_def: str, option: str = "--model-def") -> tuple[str, str]:
    """``path/to/file.py:NAME`` → (path text, NAME)."""
    path_text, sep, name = model_def.rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise KdcamError(f"{option} must look like path/to/file.py:NAME (a class or a function), got {model_def!r}")
    return path_text, name


def read_user_file(path_text: str) -> ModelSource:
    """The file the user named on the command line (resolved against the current directory)."""
    path = Path(path_text).expanduser().resolve()
    if path.suffix != ".py" or not path.is_file():
        raise KdcamError(f"model definition file {path} does not exist or is not a .py file")
    return _read_source(path)


def _read_source(path: Path) -> ModelSource:
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise KdcamError(f"model definition file {path} is {size} bytes; kdcam reads at most {MAX_SOURCE_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise KdcamError(f"cannot read model definition file {path}: {exc.strerror}") from None
    return ModelSource(data, hashlib.sha256(data).hexdigest(), str(path))


def stored_source(directory: Path, meta: CheckpointMeta) -> tuple[Path, ModelSource, str]:
    """The store's copy of ``meta``'s model code, checked to be inside the store and unmodified.

    Returns (path, source, definition name). Trust is *not* checked here (``trust`` shows
    the file before trusting it); ``build_from_stored`` checks it.
    """
    name = meta.name
    path_text, def_name = split_model_def(str(meta.model_def), f"checkpoint {name!r}: model_def")
    relative = PurePosixPath(path_text)
    if relative.is_absolute() or ".." in relative.parts or relative.suffix != ".py":
        raise UntrustedModelCode(
            f"checkpoint {name!r} names model code outside its store ({path_text!r}); kdcam only runs code "
            "copied into the store at import. Re-import the weights with "
            f"`kdcam checkpoints import FILE --model-def PATH.py:{def_name}`"
        )
    store = directory.resolve()
    path = (store / relative).resolve()
    if not path.is_relative_to(store) or not path.is_file():
        raise UntrustedModelCode(f"checkpoint {name!r}: its model code {store / relative} is missing or leaves "
                                 f"the store {store}; re-import the weights with --model-def")
    recorded = meta.model_def_sha256
    if not trust.is_sha256(recorded):
        raise UntrustedModelCode(f"checkpoint {name!r} records no valid sha256 of its model code {path}; "
                                 "re-import the weights with --model-def")
    source = _read_source(path)
    if source.sha256 != recorded:
        raise UntrustedModelCode(
            f"checkpoint {name!r}: its model code {path} was modified since import (sha256 {source.sha256}, "
            f"recorded {recorded}); kdcam will not run it. Restore the file or re-import with --model-def"
        )
    return path, source, def_name


def check_model_args(value: Any, option: str = "--model-args") -> dict[str, Any]:
    """An object of plain JSON values (bounded), with identifier keys: keyword arguments."""
    if not isinstance(value, dict):
        raise KdcamError(f"{option} must be a JSON object of keyword arguments, got {type(value).__name__}")
    count = 0

    def check(item: Any, depth: int) -> None:
        nonlocal count
        count += 1
        if depth > _MAX_ARGS_DEPTH or count > _MAX_ARGS_VALUES:
            raise KdcamError(f"{option} is too large (at most {_MAX_ARGS_VALUES} values, nested {_MAX_ARGS_DEPTH} deep)")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise KdcamError(f"{option}: keys must be text, got {key!r}")
                check(inner, depth + 1)
        elif isinstance(item, list):
            for inner in item:
                check(inner, depth + 1)
        elif isinstance(item, float) and not math.isfinite(item):
            raise KdcamError(f"{option}: numbers must be finite, got {item!r}")
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise KdcamError(f"{option}: values must be JSON text, numbers, booleans, null, lists or objects")

    for key in value:
        if not isinstance(key, str) or not key.isidentifier():
            raise KdcamError(f"{option}: {key!r} is not a valid argument name")
    check(value, 0)
    return dict(value)


def parse_model_args(text: str) -> dict[str, Any]:
    """``--model-args '{"num_classes": 100}'`` parsed and checked."""
    if len(text) > MAX_ARGS_CHARS:
        raise KdcamError(f"--model-args is {len(text)} characters; at most {MAX_ARGS_CHARS}")
    try:
        value = json.loads(text, parse_constant=lambda c: float("nan"))
    except ValueError as exc:
        raise KdcamError(f"--model-args is not valid JSON ({exc}); e.g. '{{\"num_classes\": 100}}'") from None
    return check_model_args(value)


def untrusted_message(name: str, path: Path, digest: str) -> str:
    return (f"checkpoint {name!r} needs its model code {path} (sha256 {digest}) to run, and that code is not "
            f"trusted on this machine. Read it, then trust it with `kdcam checkpoints trust {name}`")


def copy_into_store(directory: Path, source: ModelSource) -> str:
    """Write ``source`` as ``model-defs/<sha256>.py`` (once) and return that store-relative path."""
    relative = f"{DEFS_DIR}/{source.sha256}.py"
    target = directory / relative
    if not (target.is_file() and _read_source(target).sha256 == source.sha256):
        atomic.write_bytes(target, source.data)
    return relative
