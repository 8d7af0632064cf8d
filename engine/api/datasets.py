"""Dataset spec strings (``NAME[:PATH][?key=value&...]``): parsed and checked without loading anything.

Part of the contract so the CLI and the TUI's forms can refuse a bad spec (unknown dataset,
missing path, malformed options) before a job starts; ``engine.data.registry`` loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from engine.errors import KdcamError

SPLITS = ("train", "test")

DESCRIPTIONS: dict[str, str] = {
    "shapes": "embedded procedural shapes x textures with object, distractor and cue masks (options: classes, train, "
    "test, seed, v=1|2|3, shortcut=P)",
    "cifar10": "CIFAR-10, python version under ROOT/cifar-10-batches-py (--download to fetch)",
    "cifar100": "CIFAR-100, python version under ROOT/cifar-100-python (--download to fetch)",
    "mnist": "MNIST IDX files under ROOT/MNIST/raw (--download to fetch)",
    "npz": "npz:PATH[?holdout=0.2] - arrays images (uint8 NHWC), labels, optional masks and class_names; "
    "one file is used whole for every split (analyse/evaluate) unless ?holdout=F keeps a fraction F as the test "
    "split (to train on it); or a dir with test.npz (and train.npz to train)",
    "imagefolder": "imagefolder:PATH[?size=32] - one subfolder per class (optionally under train/ and test/); "
    "?resize=256&size=224 for ImageNet models (shorter side resized, centre crop)",
}


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # shapes | cifar10 | cifar100 | mnist | npz | imagefolder
    path: str | None = None  # for npz and imagefolder
    options: dict[str, str] = field(default_factory=dict)

    def int_option(self, key: str, default: int, minimum: int = 0) -> int:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise KdcamError(f"dataset {self.kind}: option {key}={raw!r} is not an integer") from None
        if value < minimum:
            raise KdcamError(f"dataset {self.kind}: option {key}={value} must be >= {minimum}")
        return value

    def check_options(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            known = ", ".join(allowed) if allowed else "none"
            raise KdcamError(f"dataset {self.kind}: unknown option(s) {', '.join(unknown)} (known: {known})")


def parse_spec(spec: str) -> DatasetSpec:
    """Split ``NAME[:PATH][?options]`` and check that NAME is a dataset we know."""
    body, _, query = spec.strip().partition("?")
    kind, colon, path = body.partition(":")
    kind = kind.strip().lower()
    if kind not in DESCRIPTIONS:
        raise KdcamError(f"unknown dataset {spec!r}; known: {', '.join(DESCRIPTIONS)}")
    needs_path = kind in ("npz", "imagefolder")
    if needs_path and not path:
        raise KdcamError(f"dataset {kind} needs a path: {kind}:PATH")
    if colon and not needs_path:
        raise KdcamError(f"dataset {kind} takes no path (got {spec!r})")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise KdcamError(f"dataset {spec!r}: options must look like ?key=value&key=value") from None
    return DatasetSpec(kind, path or None, options)
