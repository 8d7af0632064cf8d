"""The two experiments of ``kdcam experiment``, built from the suite's pieces.

- colour-invariance: does a colour-invariant teacher make its CRD student colour-invariant?
  The teacher is fine-tuned on colour-jittered images; a CRD student is distilled from it
  and from the plain teacher; all four are scored on the clean and a jittered test set.
- teacher-capacity: does a bigger teacher make a better student? Each teacher is trained,
  then distilled into the same student with the same method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from engine.data.loader import DeviceLoader
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import architectures
from engine.specs import TrainSpec
from engine.train.colour import colour_jitter
from engine.train.device import autocast
from engine.train.suite import (Session, check_students, load_teacher, open_session, student_name, train_student,
                                train_teacher)
from engine.train.trainer import evaluate

EXPERIMENTS = ("color-invariance", "teacher-capacity")


@dataclass(frozen=True)
class ExperimentSpec:
    runner: ClassVar[str] = "engine.train.experiments:run_experiment_job"
    kind: ClassVar[str] = "experiment"
    workspace: str
    experiment: str
    dataset: str = "shapes"
    teachers: tuple[str, ...] = ("vgg16",)  # color-invariance uses the first; teacher-capacity all
    student: str = "vgg11"
    method: str = ""  # default: crd for color-invariance, kd for teacher-capacity
    recipe: str = "demo"
    epochs: int | None = None
    width: float | None = None
    teacher_width: float | None = None
    seed: int = 0
    device: str = "auto"
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"experiment {self.experiment}"

    def train_spec(self, teacher: str, method: str) -> TrainSpec:
        return TrainSpec(workspace=self.workspace, dataset=self.dataset, teacher=teacher, student=self.student,
                         methods=(method,), recipe=self.recipe, epochs=self.epochs, width=self.width,
                         teacher_width=self.teacher_width,
                         seed=self.seed, device=self.device, method_options=self.method_options)


def run_experiment_job(spec: ExperimentSpec, ctx: JobContext) -> dict[str, Any]:
    if spec.experiment == "color-invariance":
        return colour_invariance(spec, ctx)
    if spec.experiment == "teacher-capacity":
        return teacher_capacity(spec, ctx)
    raise KdcamError(f"unknown experiment {spec.experiment!r}; choose from: {', '.join(EXPERIMENTS)}")


def _teacher(session: Session, arch_or_ckpt: str, ctx: JobContext, method: str) -> tuple[torch.nn.Module, str, float]:
    """Reuse a stored teacher or train one; checks the student's method against it first."""
    if session.store.exists(arch_or_ckpt):
        teacher = load_teacher(session, arch_or_ckpt)
        check_students(session, teacher, (method,))
        return teacher, arch_or_ckpt, float(session.store.meta(arch_or_ckpt).accuracy or 0.0)
    if arch_or_ckpt not in architectures():
        raise KdcamError(f"teacher {arch_or_ckpt!r} is neither a checkpoint nor an architecture")
    teacher, result = train_teacher(session, arch_or_ckpt, ctx)
    return teacher, result.name, result.best_accuracy


def colour_invariance(spec: ExperimentSpec, ctx: JobContext) -> dict[str, Any]:
    method = spec.method or "crd"
    session = open_session(spec.train_spec(spec.teachers[0], method), ctx)
    data = session.train_set
    jitter = lambda images: colour_jitter(images, data.mean, data.std)  # noqa: E731 - fresh per batch

    teacher, teacher_ckpt, _ = _teacher(session, spec.teachers[0], ctx, method)
    plain_student = train_student(session, method, teacher, teacher_ckpt, ctx)

    arch, width = session.store.meta(teacher_ckpt).arch, session.store.meta(teacher_ckpt).width
    tuned = session.build(arch, width)
    tuned.load_state_dict(teacher.state_dict())
    finetune = dataclasses.replace(session.recipe, epochs=max(1, session.recipe.epochs // 2), lr=session.recipe.lr / 5)
    tuned_name = f"{teacher_ckpt}-cj"
    session.fit(tuned_name, "teacher", "ce+colour-jitter", arch, session.distiller("si", tuned, None, {}), ctx,
                recipe=finetune, augment=jitter, width=width)
    tuned_teacher = load_teacher(session, tuned_name)
    jitter_student = train_student(session, method, tuned_teacher, tuned_name, ctx,
                                   name=student_name(session, method, "-cj"))

    rows = []
    for role, name in (("teacher", teacher_ckpt), ("student", plain_student.name),
                       ("teacher (colour-jitter fine-tuned)", tuned_name), ("student of it", jitter_student.name)):
        clean, jittered = _clean_and_jittered(session, name, ctx)
        rows.append({"model": name, "role": role, "clean": clean, "jittered": jittered, "drop": clean - jittered})
    return {"experiment": spec.experiment, "method": method, "rows": rows}


def _clean_and_jittered(session: Session, name: str, ctx: JobContext) -> tuple[float, float]:
    """Accuracy on the test set as is, and on a fixed colour-jittered copy (same for every model)."""
    model = load_teacher(session, name)
    data, device = session.test_set, session.device
    loader = DeviceLoader(data, 256, device, train=False, channels_last=device.type == "cuda")
    mixed = autocast(device)
    clean = evaluate(model, loader, mixed, ctx, phase=f"{name} clean")
    generator = torch.Generator().manual_seed(session.spec.seed + 12345)
    jitter = lambda images: colour_jitter(images, data.mean, data.std, generator=generator)  # noqa: E731
    jittered = evaluate(model, loader, mixed, ctx, phase=f"{name} jittered", transform=jitter)
    return clean, jittered


def teacher_capacity(spec: ExperimentSpec, ctx: JobContext) -> dict[str, Any]:
    method = spec.method or "kd"
    rows = []
    for arch in spec.teachers:
        session = open_session(spec.train_spec(arch, method), ctx)
        teacher, teacher_ckpt, teacher_acc = _teacher(session, arch, ctx, method)
        tag = f"-from-{teacher_ckpt.split('-')[0]}"
        student = train_student(session, method, teacher, teacher_ckpt, ctx, name=student_name(session, method, tag))
        rows.append({"teacher": teacher_ckpt, "teacher_accuracy": teacher_acc, "student": student.name,
                     "student_accuracy": student.best_accuracy, "gap": teacher_acc - student.best_accuracy})
    return {"experiment": spec.experiment, "method": method, "rows": rows}
