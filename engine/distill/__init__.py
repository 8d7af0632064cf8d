"""Knowledge-distillation methods behind one interface (DESIGN §4).

``METHODS[key]`` is the class; ``build_distiller`` validates the options and the models
before any training starts, so a wrong name or tap fails in a second, not after an epoch.
"""

from __future__ import annotations

from typing import Any

from engine.distill.attention import AttentionTransfer
from engine.distill.base import Distiller, TrainingSet
from engine.distill.cat import ClassActivationTransfer
from engine.distill.crd import ContrastiveRD
from engine.distill.dkd import DecoupledKD
from engine.distill.hints import FitNetHints
from engine.distill.kd import LogitKD
from engine.distill.labels import IndependentStudent, LabelSmoothing
from engine.distill.xa import ExplanationAlignment
from engine.errors import KdcamError
from engine.models import TappedModel

METHODS: dict[str, type[Distiller]] = {
    cls.key: cls
    for cls in (IndependentStudent, LabelSmoothing, LogitKD, DecoupledKD, FitNetHints, ContrastiveRD, AttentionTransfer,
                ClassActivationTransfer, ExplanationAlignment)
}


def check_method(key: str) -> type[Distiller]:
    try:
        return METHODS[key]
    except KeyError:
        raise KdcamError(f"unknown method {key!r}; choose from: {', '.join(METHODS)}") from None


def build_distiller(
    method: str,
    student: TappedModel,
    teacher: TappedModel | None,
    options: dict[str, Any] | None = None,
    training_set: TrainingSet | None = None,
) -> Distiller:
    return check_method(method)(student, teacher, options, training_set)


__all__ = ["METHODS", "Distiller", "TrainingSet", "build_distiller", "check_method"]
