"""User model classes given as ``--model-def path/to/file.py:ClassName``.

Decision: the user's file is code the user explicitly pointed at (like a plugin), so it
is imported and run; the *checkpoint* still never runs code (its tensors are loaded
with ``weights_only`` / safetensors). The checkpoint metadata records the absolute path
so ``CheckpointStore.load`` can rebuild the class later.

A class that already subclasses ``TappedModel`` is used as is. Any other ``nn.Module``
is wrapped by ``UserModel``: its *taps* are its top-level submodules whose output is a
feature map (N x C x H x W) and which run once per forward pass, in execution order; the
last one is the default CAM layer. Each tap is exactly one submodule's output, so the
same contract as the built-in zoo holds (``tap_module`` can be hooked by reference
libraries). The wrapper stores the user's tensors under ``net.``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from engine.errors import KdcamError
from engine.models import TappedModel


class UserModel(TappedModel):
    """A plain ``nn.Module`` exposed through the ``TappedModel`` interface via forward hooks."""

    def __init__(self, net: nn.Module, in_channels: int = 3, input_size: int = 32):
        super().__init__()
        self.net = net
        self._taps, self.num_classes = _probe(net, in_channels, input_size)
        if not self._taps:
            raise KdcamError(
                f"{type(net).__name__} has no top-level submodule that outputs a feature map "
                "(N x C x H x W); kdcam needs one for CAMs. Group the convolutional part into a "
                "submodule (e.g. self.features = nn.Sequential(...))."
            )
        self.default_cam_tap = self._taps[-1]
        self.default_hint_tap = self._taps[len(self._taps) // 2]

    @property
    def tap_names(self) -> tuple[str, ...]:
        return tuple(self._taps)

    def tap_module(self, name: str) -> nn.Module:
        if name not in self._taps:
            raise KeyError(f"unknown tap {name!r}; this model has {', '.join(self._taps)}")
        return getattr(self.net, name)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def forward_taps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        taps: dict[str, Tensor] = {}
        handles = [
            getattr(self.net, name).register_forward_hook(_recorder(taps, name)) for name in self._taps
        ]
        try:
            logits = self.net(x)
        finally:
            for handle in handles:
                handle.remove()
        return logits, {name: taps[name] for name in self._taps}


def _recorder(taps: dict[str, Tensor], name: str):
    def hook(module: nn.Module, args: object, output: Tensor) -> None:
        taps[name] = output

    return hook


def _probe(net: nn.Module, in_channels: int, input_size: int) -> tuple[list[str], int]:
    """Top-level children producing 4-D outputs exactly once (in the order they run), and the class count."""
    calls: dict[str, int] = {}
    order: list[str] = []
    shapes: dict[str, int] = {}

    def watch(name: str):
        def hook(module: nn.Module, args: object, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in order:
                order.append(name)
            shapes[name] = output.dim() if isinstance(output, Tensor) else 0

        return hook

    handles = [child.register_forward_hook(watch(name)) for name, child in net.named_children()]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            logits = net(torch.zeros(2, in_channels, input_size, input_size))
    except Exception as exc:
        raise KdcamError(
            f"{type(net).__name__} failed on a {in_channels}x{input_size}x{input_size} input: {exc}"
        ) from None
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise KdcamError(f"{type(net).__name__} must return logits of shape N x classes")
    return [name for name in order if calls[name] == 1 and shapes[name] == 4], int(logits.shape[1])


def resolve_model_def(model_def: str) -> tuple[Path, str]:
    """Split ``path/to/file.py:ClassName`` and check the file exists."""
    path_text, sep, class_name = model_def.rpartition(":")
    if not sep or not path_text or not class_name.isidentifier():
        raise KdcamError(f"--model-def must look like path/to/file.py:ClassName, got {model_def!r}")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file() or path.suffix != ".py":
        raise KdcamError(f"model definition file {path} does not exist or is not a .py file")
    return path, class_name


def load_user_class(model_def: str) -> type[nn.Module]:
    path, class_name = resolve_model_def(model_def)
    module_name = f"kdcam_user_model_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise KdcamError(f"model definition file {path} failed to import: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise KdcamError(f"{path} defines no nn.Module class named {class_name!r}")
    return cls


def accepts_num_classes(cls: type[nn.Module]) -> bool:
    return "num_classes" in inspect.signature(cls.__init__).parameters


def build_user_model(model_def: str, num_classes: int | None, in_channels: int = 3, input_size: int = 32) -> TappedModel:
    """Instantiate the user's class (passing ``num_classes`` when it takes one) as a TappedModel.

    The class count of a wrapped model is read from its output, so it is always the truth.
    """
    cls = load_user_class(model_def)
    try:
        net = cls(num_classes=num_classes) if accepts_num_classes(cls) and num_classes else cls()
    except Exception as exc:
        raise KdcamError(f"could not construct {cls.__name__} from {model_def}: {type(exc).__name__}: {exc}") from None
    if isinstance(net, TappedModel):
        return net
    return UserModel(net, in_channels, input_size)
