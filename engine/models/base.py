"""The one interface every kdcam model offers: logits, plus named feature taps.

A *tap* is the output of a named submodule. Hint and attention losses read taps, and
CAMs are computed at a tap. Because a tap is exactly one module's output, reference
libraries that hook modules (pytorch-grad-cam) see the same tensor we do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from engine.api.results import TapInfo


class TappedModel(nn.Module):
    """Base class: subclasses list their body as ``(tap name or None, module)`` pairs."""

    #: the tap CAMs use by default: the last convolutional stage before global pooling
    default_cam_tap: str = ""
    #: the tap FitNet hints use by default (stage-2 output)
    default_hint_tap: str = ""
    num_classes: int
    #: the model is ``body`` + ``head``, so CAMs may run it piecewise on the fast path
    sequential: bool = True
    #: builds a freshly initialised twin; set for user models (their code rebuilds them), else None
    rebuild: Callable[[], TappedModel] | None = None

    def body(self, x: Tensor) -> list[tuple[str | None, nn.Module]]:
        """The modules applied in order to the input; named entries are taps."""
        raise NotImplementedError

    def head(self, x: Tensor) -> Tensor:
        """Global pooling and classifier applied to the last body output."""
        raise NotImplementedError

    def forward_taps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        taps: dict[str, Tensor] = {}
        for name, module in self.body(x):
            x = module(x)
            if name is not None:
                taps[name] = x
        return self.head(x), taps

    def forward_with_tap_leaf(self, x: Tensor, name: str) -> tuple[Tensor, Tensor]:
        """(logits, the tap's activations as a graph leaf) for models that are not ``sequential``:
        the CAM gradient is then taken to the tap without a graph before it."""
        raise NotImplementedError(f"{type(self).__name__} is sequential: CAMs run it piecewise")

    def forward(self, x: Tensor) -> Tensor:
        for _, module in self.body(x):
            x = module(x)
        return self.head(x)

    @property
    def tap_names(self) -> tuple[str, ...]:
        probe = torch.empty(1, 3, 32, 32, device="meta")
        return tuple(name for name, _ in self.body(probe) if name is not None)

    def has_tap(self, name: str) -> bool:
        """Whether ``name`` can be read from ``forward_taps`` (wrapped models accept any module path)."""
        return name in self.tap_names

    def tap_module(self, name: str) -> nn.Module:
        """The submodule whose output is tap ``name`` (for hooking by reference libraries)."""
        probe = torch.empty(1, 3, 32, 32, device="meta")
        for tap, module in self.body(probe):
            if tap == name:
                return module
        raise KeyError(f"unknown tap {name!r}; this model has {', '.join(self.tap_names)}")

    def tap_info(self, input_size: int = 32, in_channels: int = 3) -> list[TapInfo]:
        """Channels and spatial size of every tap for an input of the given size.

        Runs on the meta device with meta copies of the weights: no memory, no compute,
        and the model itself is left untouched.
        """
        from torch.func import functional_call

        meta_state = {f"inner.{k}": torch.empty_like(v, device="meta") for k, v in self.state_dict().items()}
        probe = torch.empty(1, in_channels, input_size, input_size, device="meta")
        with torch.no_grad():
            _, taps = functional_call(_TapsView(self), meta_state, (probe,), strict=True)
        return [TapInfo(n, t.shape[1], t.shape[2], t.shape[3]) for n, t in taps.items()]


class HookedModel(TappedModel):
    """A model run whole, whose taps are named submodules' outputs recorded by forward hooks.

    For wrapped models (user code, torchvision's ViT) that are not ``body`` + ``head``. Subclasses
    call ``set_taps``; ``tap_view`` turns a hooked module's output into the tap (the identity here,
    a token-to-grid layout for a ViT) and ``tap_unview`` turns a tap-shaped leaf back into what the
    rest of the model expects from that module.
    """

    #: not body + head: CAMs run the whole model, the gradient taken at the tap through a hook
    sequential = False

    def set_taps(self, modules: Mapping[str, nn.Module], stages: tuple[str, ...]) -> None:
        """Every tap ``forward_taps`` records (``modules``) and the ones listed as ``tap_names``."""
        self._tap_modules = dict(modules)
        self._stages = stages

    def tap_view(self, output: Tensor) -> Tensor:
        return output

    def tap_unview(self, leaf: Tensor, output: Tensor) -> Tensor:
        """What the model sees after the tap: a copy of the leaf, so in-place operations after the
        tap (``ReLU(inplace=True)``) do not modify the leaf itself."""
        return leaf.clone()

    @property
    def tap_names(self) -> tuple[str, ...]:
        return self._stages

    def has_tap(self, name: str) -> bool:
        return name in self._tap_modules

    def tap_module(self, name: str) -> nn.Module:
        if name not in self._tap_modules:
            raise KeyError(f"unknown tap {name!r}; this model has {', '.join(self._stages)}")
        return self._tap_modules[name]

    def forward_taps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        taps: dict[str, Tensor] = {}

        def recorder(name: str) -> Callable[[nn.Module, object, Tensor], None]:
            def hook(module: nn.Module, args: object, output: Tensor) -> None:
                taps[name] = self.tap_view(output)
            return hook

        handles = [m.register_forward_hook(recorder(name)) for name, m in self._tap_modules.items()]
        try:
            logits = self(x)
        finally:
            for handle in handles:
                handle.remove()
        return logits, taps

    def forward_with_tap_leaf(self, x: Tensor, name: str) -> tuple[Tensor, Tensor]:
        """Logits, and tap ``name`` as a leaf that requires grad, for d score / d tap.

        Autograd is off until the tap's module returns and on after it, so nothing before
        the tap records a graph (as the zoo's fast path); the rest of the model sees
        ``tap_unview`` of the leaf.
        """
        captured: list[Tensor] = []

        def hook(module: nn.Module, args: object, output: Tensor) -> Tensor:
            torch.set_grad_enabled(True)
            leaf = self.tap_view(output).detach().requires_grad_(True)
            captured.append(leaf)
            return self.tap_unview(leaf, output)

        handle = self.tap_module(name).register_forward_hook(hook)
        previous = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        try:
            logits = self(x)
        finally:
            torch.set_grad_enabled(previous)
            handle.remove()
        return logits, captured[0]


class _TapsView(nn.Module):
    """Exposes ``forward_taps`` as ``forward`` so ``functional_call`` can run it."""

    def __init__(self, inner: TappedModel):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.inner.forward_taps(x)


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier (never below 4, so tiny demos stay trainable)."""
    return max(4, int(round(channels * width)))


def init_weights(model: nn.Module) -> None:
    """Kaiming init for convs, unit BN, small normal for classifiers (RepDistiller's choice).

    Models built on the meta device (shapes only, e.g. to recognise a file's architecture)
    have no values to initialise; skipping them saves most of their build time.
    """
    if any(p.is_meta for p in model.parameters()):
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
