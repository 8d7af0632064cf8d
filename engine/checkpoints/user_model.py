"""User models given as ``--model-def path/to/file.py:NAME`` (a class or a factory function).

Model-definition code is the one code kdcam runs on a user's behalf, so it is governed by
trust (``engine.api.trust``): at import the file is copied into the store under its sha256
(``model-defs/<sha256>.py``) and that content is trusted, because the user named it on the
command line. The checkpoint metadata records the copy's store-relative path, its sha256
and the constructor arguments. Every later build re-reads the copy, checks it is inside the
store, that its bytes still have the recorded hash and that the hash is trusted, and only
then executes *those bytes* (never a second read of the file). Anything else is refused
with a message saying how to trust it (``kdcam checkpoints trust NAME``).

Any ``nn.Module`` becomes a ``TappedModel`` through ``UserModel``: a tap is the output of
a named submodule, recorded by a forward hook. Tracing one blank input finds every
submodule that runs once and outputs a feature map (N x C x H x W); any of them can be a
CAM layer (``--layer features.28``); the default is the last one before global pooling.
The top-level ones are the model's *stages* (``tap_names``), used by attention transfer and
for the default hint tap.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from engine.api import trust
from engine.api.model_code import (
    ModelSource,
    UntrustedModelCode,
    check_model_args,
    stored_source,
    untrusted_message,
)
from engine.api.results import TapInfo
from engine.errors import KdcamError
from engine.models import TappedModel
from engine.models.base import HookedModel

if TYPE_CHECKING:
    from engine.api.checkpoints import CheckpointMeta

_POOLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.MaxPool2d)

#: module objects already executed, by content sha256 (the same content need not run twice)
_LOADED: dict[str, types.ModuleType] = {}


# ---- reading and checking ------------------------------------------------------------------------

# ---- running the code ----------------------------------------------------------------------------

def load_definition(source: ModelSource, def_name: str) -> Callable[..., Any]:
    """Execute ``source`` (once per content) and return its class or factory ``def_name``."""
    module = _LOADED.get(source.sha256)
    if module is None:
        module_name = f"kdcam_user_model_{source.sha256[:16]}"
        module = types.ModuleType(module_name)
        module.__file__ = source.origin
        sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
        try:
            exec(compile(source.data, source.origin, "exec"), module.__dict__)  # noqa: S102 - trusted content only
        except Exception as exc:  # noqa: BLE001 - any failure of the user's code is reported as theirs
            sys.modules.pop(module_name, None)
            raise KdcamError(f"model definition file {source.origin} failed to import: "
                             f"{type(exc).__name__}: {exc}") from None
        _LOADED[source.sha256] = module
    found = getattr(module, def_name, None)
    is_class = inspect.isclass(found) and issubclass(found, nn.Module)
    if not is_class and not inspect.isfunction(found):
        raise KdcamError(f"{source.origin} defines no nn.Module class or factory function named {def_name!r}")
    return found  # type: ignore[return-value]


def instantiate(factory: Callable[..., Any], args: Mapping[str, Any], num_classes: int | None, origin: str,
                in_channels: int = 3, input_size: int = 32) -> TappedModel:
    """``factory(**args)`` (plus ``num_classes`` when it takes one and args do not say) as a TappedModel."""
    kwargs = dict(args)
    if num_classes and "num_classes" not in kwargs and _accepts(factory, "num_classes"):
        kwargs["num_classes"] = num_classes
    label = getattr(factory, "__name__", "model")
    try:
        net = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's constructor may raise anything
        raise KdcamError(f"could not build {label} from {origin} with arguments {kwargs}: "
                         f"{type(exc).__name__}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise KdcamError(f"{label} in {origin} returned a {type(net).__name__}, not an nn.Module")
    model = net if isinstance(net, TappedModel) else UserModel(net, in_channels, input_size)
    # sanity checks need a freshly initialised twin, built by the same code and arguments
    model.rebuild = lambda: instantiate(factory, args, num_classes, origin, in_channels, input_size)
    return model


def _accepts(factory: Callable[..., Any], parameter: str) -> bool:
    try:
        return parameter in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def build_from_stored(directory: Path, meta: CheckpointMeta) -> TappedModel:
    """A freshly initialised model from a checkpoint's stored, verified and trusted model code."""
    path, source, def_name = stored_source(directory, meta)
    if not trust.is_trusted(source.sha256):
        raise UntrustedModelCode(untrusted_message(meta.name, path, source.sha256))
    args = check_model_args(meta.model_args or {}, f"checkpoint {meta.name!r}: model_args")
    factory = load_definition(source, def_name)
    return instantiate(factory, args, meta.num_classes, str(path), meta.in_channels, meta.input_size)


# ---- the wrapper -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Traced:
    name: str
    module: nn.Module
    shape: tuple[int, ...]


class UserModel(HookedModel):
    """A plain ``nn.Module`` exposed through the ``TappedModel`` interface via forward hooks."""

    def __init__(self, net: nn.Module, in_channels: int = 3, input_size: int = 32):
        super().__init__()
        self.net = net
        traced, self.num_classes = _trace(net, in_channels, input_size)
        if not traced:
            raise KdcamError(
                f"{type(net).__name__} has no submodule that outputs a feature map (N x C x H x W) once per "
                "forward pass; kdcam needs one for CAMs and feature distillation"
            )
        stages = [t.name for t in traced if "." not in t.name and not isinstance(t.module, _POOLING)]
        self.set_taps({t.name: t.module for t in traced}, tuple(stages) or (_default_cam(traced),))
        self.default_cam_tap = _default_cam(traced)
        self.default_hint_tap = self.tap_names[len(self.tap_names) // 2]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def tap_info(self, input_size: int = 32, in_channels: int = 3) -> list[TapInfo]:
        """Shapes from one blank image (user code may not run on the meta device)."""
        traced, _ = _trace(self.net, in_channels, input_size)
        return [TapInfo(t.name, *t.shape[1:]) for t in traced if t.name in self.tap_names]


def _default_cam(traced: list[_Traced]) -> str:
    """The last feature map before global pooling: not a pooling layer, more than one position if any has."""
    usable = [t for t in traced if not isinstance(t.module, _POOLING)] or traced
    spatial = [t for t in usable if t.shape[2] * t.shape[3] > 1] or usable
    return spatial[-1].name


def _trace(net: nn.Module, in_channels: int, input_size: int) -> tuple[list[_Traced], int]:
    """Submodules that output a 4-D tensor exactly once (in the order they finish), and the class count."""
    calls: dict[str, int] = {}
    seen: dict[str, _Traced] = {}

    def watch(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(mod: nn.Module, args: object, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, Tensor) and output.dim() == 4:
                seen.pop(name, None)  # keep finishing order
                seen[name] = _Traced(name, module, tuple(output.shape))

        return hook

    handles = [m.register_forward_hook(watch(n, m)) for n, m in net.named_modules() if n]
    flags = [(m, m.training) for m in net.modules()]
    try:
        net.eval()
        with torch.no_grad():
            logits = net(torch.zeros(1, in_channels, input_size, input_size, device=_device(net)))
    except Exception as exc:  # noqa: BLE001 - the user's forward may raise anything
        raise KdcamError(
            f"{type(net).__name__} failed on a {in_channels}x{input_size}x{input_size} input: {exc}"
        ) from None
    finally:
        for module, training in flags:
            module.training = training
        for handle in handles:
            handle.remove()
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise KdcamError(f"{type(net).__name__} must return logits of shape N x classes")
    return [t for t in seen.values() if calls[t.name] == 1], int(logits.shape[1])


def _device(net: nn.Module) -> torch.device:
    first = next(net.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
