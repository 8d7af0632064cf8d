"""Checkpoint metadata (``NAME.json`` beside ``NAME.safetensors``): the type and its validating reader. Torch-free.

The TUI lists the store on its UI thread, so everything needed to show a checkpoint
(architecture, classes, normalisation, provenance, accuracy) lives in this JSON file and
is read without touching the weights.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.api.catalogue import ROLES, method_label
from engine.api.names import check_id
from engine.api.validate import Fields
from engine.errors import KdcamError

WEIGHTS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"
#: bounds on what metadata may claim: models are built from these numbers before any weight is read
MAX_CLASSES = 100_000
MAX_CHANNELS = 64
MAX_INPUT_SIZE = 4096
MAX_WIDTH = 16.0

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,119}")


@dataclass
class CheckpointMeta:
    """Everything kdcam knows about one checkpoint besides its tensors."""

    name: str
    arch: str  # a registry architecture, or "custom" for a --model-def class
    num_classes: int
    width: float = 1.0
    in_channels: int = 3
    input_size: int = 32
    #: images' shorter side is resized to this before the centre crop of ``input_size`` (None: crop the
    #: centre square, then resize it to ``input_size``), as ``imagefolder:PATH?resize=256&size=224``
    resize: int | None = None
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    dataset: str | None = None
    class_names: list[str] | None = None
    role: str = "imported"  # teacher | student | imported
    method: str | None = None  # the KD method key that trained a student
    teacher: str | None = None  # the teacher checkpoint's name, for students
    accuracy: float | None = None  # test top-1 in [0, 1]
    recipe: str | None = None
    epochs: int | None = None
    run_id: str | None = None
    params: int | None = None
    created: str = field(default_factory=lambda: now_iso())
    source_path: str | None = None  # the imported file, as given
    source_sha256: str | None = None
    model_def: str | None = None  # "model-defs/<sha256>.py:NAME" (store-relative) for user models
    model_def_sha256: str | None = None  # that file's content, checked (and trusted) before it runs
    model_args: dict[str, Any] | None = None  # keyword arguments of the user's class or factory
    val_accuracy: float | None = None  # accuracy on the validation split at the saved epoch
    #: how the validation split that chose the epoch was drawn: fraction, seed, size, of (training
    #: images before the split), selects_on (validation | test)
    validation: dict[str, Any] | None = None
    #: a student's method options that differ from its recipe's (``{"standardize": true}``)
    method_options: dict[str, Any] | None = None

    @property
    def method_label(self) -> str | None:
        """The method with its variant (``kd+std``), as checkpoint names and analyses show it."""
        return None if self.method is None else method_label(self.method, self.method_options)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: object, where: str = "checkpoint metadata") -> CheckpointMeta:
        """Validate JSON from disk; unknown keys (written by a newer kdcam) are ignored."""
        return cls.from_fields(Fields(data, where))

    @classmethod
    def from_fields(cls, f: Fields) -> CheckpointMeta:
        in_channels = f.integer("in_channels", 3, minimum=1, maximum=MAX_CHANNELS)
        num_classes = f.integer("num_classes", minimum=1, maximum=MAX_CLASSES)
        class_names = f.list_of("class_names", str, max_len=MAX_CLASSES) if f.data.get("class_names") is not None \
            else None
        if class_names is not None and len(class_names) != num_classes:
            raise f.error("class_names", f"{num_classes} names (num_classes)", f"{len(class_names)} names")
        return cls(
            name=f.text("name"),
            arch=f.text("arch"),
            num_classes=num_classes,
            width=f.number("width", 1.0, minimum=1 / 1024, maximum=MAX_WIDTH),
            in_channels=in_channels,
            input_size=f.integer("input_size", 32, minimum=1, maximum=MAX_INPUT_SIZE),
            resize=f.opt_integer("resize", minimum=1, maximum=MAX_INPUT_SIZE),
            mean=_channel_stats(f, "mean", in_channels, (0.5,) * in_channels, positive=False),
            std=_channel_stats(f, "std", in_channels, (0.25,) * in_channels, positive=True),
            dataset=f.opt_text("dataset"),
            class_names=class_names,
            role=f.text("role", "imported", choices=ROLES),
            method=f.opt_text("method"),
            teacher=f.opt_text("teacher"),
            accuracy=f.opt_number("accuracy", minimum=0.0, maximum=1.0),
            recipe=f.opt_text("recipe"),
            epochs=f.opt_integer("epochs", minimum=0),
            run_id=f.opt_text("run_id"),
            params=f.opt_integer("params", minimum=0),
            created=f.text("created", ""),
            source_path=f.opt_text("source_path"),
            source_sha256=f.opt_text("source_sha256"),
            model_def=f.opt_text("model_def"),
            model_def_sha256=f.opt_text("model_def_sha256"),
            model_args=_model_args(f),
            val_accuracy=f.opt_number("val_accuracy", minimum=0.0, maximum=1.0),
            validation=_validation(f),
            method_options=_method_options(f),
        )


def _validation(f: Fields) -> dict[str, Any] | None:
    """The validation record written by the trainer (absent in older and imported checkpoints)."""
    v = f.opt_obj("validation")
    if v is None:
        return None
    return {"fraction": v.number("fraction", minimum=0.0, maximum=1.0), "seed": v.integer("seed", minimum=0),
            "size": v.integer("size", minimum=0), "of": v.integer("of", minimum=0),
            "selects_on": v.text("selects_on", choices=("validation", "test"))}


#: at most this many method options, each name and text value at most this long
MAX_METHOD_OPTIONS, MAX_OPTION_TEXT = 32, 64


def _method_options(f: Fields) -> dict[str, Any] | None:
    """Option name -> switch, number or short text (they become part of labels, so all are bounded)."""
    o = f.opt_obj("method_options")
    if o is None:
        return None
    if len(o.data) > MAX_METHOD_OPTIONS:
        raise f.error("method_options", f"at most {MAX_METHOD_OPTIONS} options", f"{len(o.data)} options")
    options: dict[str, Any] = {}
    for name, value in o.data.items():
        if not (0 < len(name) <= MAX_OPTION_TEXT and name.isidentifier()):
            raise o.error(name, "an option name (letters, digits and _)")
        if isinstance(value, bool):
            options[name] = value
        elif isinstance(value, int | float):
            options[name] = o.number(name)
        elif isinstance(value, str) and len(value) <= MAX_OPTION_TEXT:
            options[name] = value
        else:
            raise o.error(name, f"true/false, a number or text of at most {MAX_OPTION_TEXT} characters", value)
    return options


def _model_args(f: Fields) -> dict[str, Any] | None:
    """An object of keyword arguments (its values are checked again before the model is built)."""
    value = f.data.get("model_args")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise f.error("model_args", "an object of keyword arguments", value)
    return dict(value)


def _channel_stats(f: Fields, key: str, channels: int, default: tuple[float, ...],
                   positive: bool) -> tuple[float, ...]:
    """Per-channel mean or std: one finite number per input channel (std strictly positive)."""
    if f.data.get(key) is None:
        return default if len(default) == channels else (default[0],) * channels
    values = tuple(f.list_of(key, float))
    if len(values) != channels:
        raise f.error(key, f"{channels} numbers (one per input channel)", f"{len(values)} numbers")
    if positive and any(v <= 0 for v in values):
        raise f.error(key, "positive numbers (a normalisation divides by them)", list(values))
    return values


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def check_name(name: str) -> str:
    """A checkpoint name is also a file name: the shared rule of ``engine.api.names``."""
    return check_id("checkpoint name", name)


def weights_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{check_name(name)}{WEIGHTS_SUFFIX}"


def meta_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{check_name(name)}{META_SUFFIX}"


def read_meta(directory: str | Path, name: str) -> CheckpointMeta:
    """The metadata of checkpoint ``name``; a clear error when it is missing or unreadable."""
    path = meta_path(directory, name)
    if not path.exists() or not weights_path(directory, name).exists():
        known = ", ".join(m.name for m in list_checkpoints(directory)) or "none"
        raise KdcamError(f"no checkpoint named {name!r} in {directory} (known: {known})")
    meta = CheckpointMeta.from_fields(Fields.of_file(path))
    meta.name = name  # the file name is the truth
    return meta


@dataclass(frozen=True)
class UnreadableCheckpoint:
    """A checkpoint the store holds but kdcam cannot use, and why (shown, never hidden)."""

    name: str
    path: Path
    reason: str


def scan_checkpoints(directory: str | Path) -> tuple[list[CheckpointMeta], list[UnreadableCheckpoint]]:
    """Every checkpoint with both files, sorted by name: the readable ones and the ones whose metadata fails.

    A JSON whose weights file is missing is skipped (another process may be writing it).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [], []
    found, broken = [], []
    for path in sorted(directory.glob(f"*{META_SUFFIX}")):
        name = path.name[: -len(META_SUFFIX)]
        if not _NAME_PATTERN.fullmatch(name) or not (directory / f"{name}{WEIGHTS_SUFFIX}").exists():
            continue
        try:
            meta = CheckpointMeta.from_fields(Fields.of_file(path))
        except KdcamError as exc:
            broken.append(UnreadableCheckpoint(name, path, str(exc)))
            continue
        meta.name = name  # the file name is the truth
        found.append(meta)
    return found, broken


def list_checkpoints(directory: str | Path) -> list[CheckpointMeta]:
    """The readable checkpoints of the store, sorted by name (``scan_checkpoints`` also names the broken ones)."""
    return scan_checkpoints(directory)[0]
