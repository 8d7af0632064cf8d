"""The interface every distillation method shares, and the option handling they all use.

A ``Distiller`` wraps a student (trained) and a teacher (frozen, always in eval mode,
run under inference mode). ``forward(images, labels, indices, epoch)`` returns the
student's logits and a dict of *weighted* loss terms; the trainer sums the terms and
logs each one, so events.jsonl shows what every part of the objective contributes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from engine.api.catalogue import OPTION_BOUNDS
from engine.errors import KdcamError
from engine.models import TappedModel


@dataclass(frozen=True)
class TrainingSet:
    """What a method may need to know about the training split before training starts.

    CRD keeps one memory slot per training image and draws negatives from other classes.
    """

    size: int
    labels: Tensor  # int64, one per training image, indexed by the loader's ``indices``
    input_size: int = 32
    in_channels: int = 3


class TeacherOutputs(NamedTuple):
    """What the frozen teacher produced for a batch: its logits and, for tap methods, its feature taps."""

    logits: Tensor
    taps: dict[str, Tensor]


class Distiller(nn.Module):
    """Base class: subclasses set ``key``/``defaults`` and implement ``losses``."""

    key: ClassVar[str]
    title: ClassVar[str]
    #: every overridable weight / temperature / size, with its default (DESIGN §4)
    defaults: ClassVar[dict[str, Any]] = {}
    #: False for methods that never read the teacher (si, ls): no teacher is needed at all
    uses_teacher: ClassVar[bool] = True
    #: True when the method reads feature taps, so the student runs ``forward_taps``
    uses_taps: ClassVar[bool] = False
    #: switch option -> the options it brings along unless set explicitly (see ``with_companions``)
    companions: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def effective_options(cls, overrides: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The options a run of this method uses: ``defaults`` (the class's unless given, e.g. a
        recipe's) updated with ``overrides``, each switch that is on bringing its companions."""
        options = resolve_options(cls.key, cls.defaults if defaults is None else defaults, overrides)
        for switch, values in cls.companions.items():
            options = with_companions(options, overrides, switch, values)
        return options

    def __init__(
        self,
        student: TappedModel,
        teacher: TappedModel | None,
        options: dict[str, Any] | None = None,
        training_set: TrainingSet | None = None,
    ):
        super().__init__()
        self.options = self.effective_options(options or {})
        if self.uses_teacher and teacher is None:
            raise KdcamError(f"method {self.key!r} needs a teacher")
        if teacher is not None and self.uses_teacher and teacher.num_classes != student.num_classes:
            raise KdcamError(
                f"teacher has {teacher.num_classes} classes but the student has {student.num_classes}; "
                "distillation needs the same classes in the same order"
            )
        self.student = student
        self.teacher = teacher if self.uses_teacher else None
        if self.teacher is not None:
            self.teacher.requires_grad_(False)
            self.teacher.eval()

    @property
    def required_teacher(self) -> TappedModel:
        """The teacher of a method that uses one (the constructor already refused a missing one)."""
        if self.teacher is None:
            raise KdcamError(f"method {self.key!r} needs a teacher")
        return self.teacher

    def train(self, mode: bool = True) -> Distiller:
        """Switch the student and extras; the teacher stays in eval mode (frozen BN statistics)."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Student parameters plus the method's extras (regressors, embeddings); never the teacher's."""
        for name, param in self.named_parameters():
            if not name.startswith("teacher."):
                yield param

    def extras_state_dict(self) -> dict[str, Tensor]:
        """State of everything the method adds (regressors, embeddings, memory bank)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("student.", "teacher."))}

    def load_extras_state_dict(self, state: dict[str, Tensor]) -> None:
        full = {k: v for k, v in self.state_dict().items() if k.startswith(("student.", "teacher."))}
        self.load_state_dict({**full, **state})

    def teacher_outputs(self, images: Tensor) -> TeacherOutputs:
        """Teacher logits and taps under inference mode, cloned into ordinary tensors.

        Inference tensors cannot be saved for backward; the clone (a few small tensors per
        batch) makes them usable as loss targets while the teacher itself records nothing.
        """
        assert self.teacher is not None
        with torch.inference_mode():
            if self.uses_taps:
                logits, taps = self.teacher.forward_taps(images)
            else:
                logits, taps = self.teacher(images), {}
        return TeacherOutputs(logits.clone(), {k: v.clone() for k, v in taps.items()})

    def forward(self, images: Tensor, labels: Tensor, indices: Tensor, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Student logits and the weighted loss terms for one batch; ``epoch`` counts from 1."""
        if self.uses_taps:
            logits, taps = self.student.forward_taps(images)
        else:
            logits, taps = self.student(images), {}
        teacher = self.teacher_outputs(images) if self.teacher is not None else None
        return logits, self.losses(logits, taps, teacher, labels, indices, epoch)

    def losses(
        self,
        logits: Tensor,
        taps: dict[str, Tensor],
        teacher: TeacherOutputs | None,
        labels: Tensor,
        indices: Tensor,
        epoch: int,
    ) -> dict[str, Tensor]:
        """The method's weighted loss terms, named as the live table and events.jsonl show them."""
        raise NotImplementedError


def resolve_options(key: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with ``overrides``; unknown names and non-finite or negative numbers are refused."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise KdcamError(f"method {key!r} has no option {', '.join(map(repr, unknown))}; its options are: {known}")
    options = dict(defaults)
    for name, value in overrides.items():
        default = defaults[name]
        if isinstance(default, bool):
            value = _flag(key, name, value)
        elif isinstance(default, (int, float)):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise KdcamError(f"option {key}.{name} must be a number, got {value!r}") from None
            if not math.isfinite(number) or number < 0:
                raise KdcamError(f"option {key}.{name} must be a finite non-negative number, got {value!r}")
            if isinstance(default, int) and not number.is_integer():
                raise KdcamError(f"option {key}.{name} must be a whole number, got {value!r}")
            low, high, low_allowed = OPTION_BOUNDS.get(name, (0.0, math.inf, True))
            if number > high or number < low or (number == low and not low_allowed):
                side = f"at least {low:g}" if low_allowed else f"more than {low:g}"
                raise KdcamError(f"option {key}.{name} must be {side} and at most {high:g}, got {value!r}")
            value = int(number) if isinstance(default, int) else number
        elif isinstance(default, str) and not isinstance(value, str):
            raise KdcamError(f"option {key}.{name} must be text, got {value!r}")
        options[name] = value
    return options


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _flag(key: str, name: str, value: Any) -> bool:
    """A switch from JSON (true/false), the CLI (text or 1/0, which it parses as numbers) or the TUI."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise KdcamError(f"option {key}.{name} is a switch: give true or false, got {value!r}")


def with_companions(options: dict[str, Any], overrides: dict[str, Any], switch: str,
                    companions: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``companions`` applied when ``switch`` is on, except where the user set them.

    Logit standardisation is published with its own weight and temperature (the paper's code sets
    them together with the switch); a user who turns it on gets those, and may still override each.
    """
    if not options.get(switch):
        return options
    return {**options, **{k: v for k, v in companions.items() if k not in overrides}}


def cross_entropy(logits: Tensor, labels: Tensor, smoothing: float = 0.0) -> Tensor:
    """CE computed in float32 whatever the autocast dtype of the logits."""
    return nn.functional.cross_entropy(logits.float(), labels, label_smoothing=smoothing)


def pooled_features(taps: dict[str, Tensor], tap: str) -> Tensor:
    """Global-average-pooled tap: the penultimate representation for the default CAM tap."""
    return taps[tap].float().mean(dim=(2, 3))


def check_tap(model: TappedModel, tap: str, role: str, method: str) -> None:
    if not model.has_tap(tap):
        raise KdcamError(
            f"method {method!r}: the {role} has no tap {tap!r}; its taps are: {', '.join(model.tap_names)}"
        )


def tap_shape(model: TappedModel, tap: str, training_set: TrainingSet | None) -> tuple[int, int, int]:
    """(channels, height, width) of ``tap`` for the training images' size, from one blank image."""
    size = training_set.input_size if training_set else 32
    channels = training_set.in_channels if training_set else 3
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, taps = model.forward_taps(torch.zeros(1, channels, size, size, device=device))
    model.train(was_training)
    return tuple(taps[tap].shape[1:])  # type: ignore[return-value]
