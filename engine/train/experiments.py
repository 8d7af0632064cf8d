"""The two experiments of ``kdcam experiment``, built from the suite's pieces.

- colour-invariance: does a colour-invariant teacher give a colour-invariant CRD student?
  The teacher is fine-tuned on colour-jittered images and a CRD student is distilled from it
  on those images; the plain teacher and its plain CRD student (the suite's, reused when the
  workspace has them) are the reference. All four are scored on the clean and on a jittered
  test set.
- teacher-capacity: does a bigger teacher make a better student? Each teacher is trained,
  then distilled into the same student with the same method.
"""

from __future__ import annotations

import dataclasses

from engine.api.catalogue import EXPERIMENTS
from engine.api.results import ExperimentResult
from engine.api.specs import ExperimentSpec
from engine.data.loader import DeviceLoader
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import TappedModel, architectures
from engine.train.colour import ColourJitter
from engine.train.device import autocast
from engine.train.recipes import Recipe
from engine.train.suite import (
    Session,
    check_students,
    load_teacher,
    open_session,
    student_name,
    teacher_name,
    train_student,
    train_teacher,
)
from engine.train.trainer import evaluate

TEST_JITTER_SEED = 12345  # the jittered test set's draws, apart from any training epoch's


def run_experiment_job(spec: ExperimentSpec, ctx: JobContext) -> ExperimentResult:
    if spec.experiment == "color-invariance":
        return colour_invariance(spec, ctx)
    if spec.experiment == "teacher-capacity":
        return teacher_capacity(spec, ctx)
    raise KdcamError(f"unknown experiment {spec.experiment!r}; choose from: {', '.join(EXPERIMENTS)}")


def _teacher(session: Session, arch_or_ckpt: str, ctx: JobContext, method: str) -> tuple[TappedModel, str, float]:
    """The teacher: a named checkpoint, the suite's teacher of this arch/dataset/recipe/seed when the
    workspace has it (``kdcam train`` or ``kdcam demo`` made it), else one trained now."""
    name = arch_or_ckpt
    if not session.store.exists(name) and arch_or_ckpt in architectures():
        name = teacher_name(session, arch_or_ckpt)
    if session.store.exists(name):
        ctx.log(f"reusing teacher {name}")
        teacher = load_teacher(session, name)
        check_students(session, teacher, (method,))
        return teacher, name, float(session.store.meta(name).accuracy or 0.0)
    if arch_or_ckpt not in architectures():
        raise KdcamError(f"teacher {arch_or_ckpt!r} is neither a checkpoint in {session.store.directory} "
                         f"nor an architecture ({', '.join(architectures())})")
    check_students(session, session.build(arch_or_ckpt, session.teacher_width).to(session.device), (method,))
    teacher, result = train_teacher(session, arch_or_ckpt, ctx)
    return teacher, result.name, result.best_accuracy


def _student(session: Session, method: str, teacher: TappedModel, teacher_ckpt: str, ctx: JobContext,
             name: str) -> tuple[str, float]:
    """The student of ``teacher_ckpt`` by ``method``: reused when the workspace has one distilled from
    that very teacher (the suite's name, or ``name``), else distilled now under ``name``."""
    for candidate in dict.fromkeys((student_name(session, method), name)):
        if session.store.exists(candidate) and session.store.meta(candidate).teacher == teacher_ckpt:
            ctx.log(f"reusing student {candidate}")
            return candidate, float(session.store.meta(candidate).accuracy or 0.0)
    result = train_student(session, method, teacher, teacher_ckpt, ctx, name=name)
    return result.name, result.best_accuracy


def finetune_recipe(recipe: Recipe) -> Recipe:
    """Fine-tuning a trained teacher: half the epochs (at least 3) from a fifth of the learning rate."""
    return dataclasses.replace(recipe, epochs=max(3, recipe.epochs // 2), lr=recipe.lr / 5)


def colour_invariance(spec: ExperimentSpec, ctx: JobContext) -> ExperimentResult:
    method = spec.method or "crd"
    session = open_session(spec.train_spec(spec.teachers[0], method), ctx)
    data = session.train_set
    if data.channels != 3:
        raise KdcamError(f"color-invariance needs RGB images; {data.name!r} has {data.channels} channel(s)")

    teacher, teacher_ckpt, _ = _teacher(session, spec.teachers[0], ctx, method)
    plain_student, _ = _student(session, method, teacher, teacher_ckpt, ctx, student_name(session, method))

    meta = session.store.meta(teacher_ckpt)
    tuned = session.build(meta.arch, meta.width)
    tuned.load_state_dict(teacher.state_dict())
    tuned_name = f"{teacher_ckpt}-cj"
    jitter = ColourJitter(len(data), data.mean, data.std, session.spec.seed, session.device)
    tuned_name = session.fit(tuned_name, "teacher", "ce+colour-jitter", meta.arch, session.distiller("si", tuned, None, {}),
                             ctx, recipe=finetune_recipe(session.recipe), augment=jitter, width=meta.width).name
    # the student learns from the invariant teacher on the images it became invariant on: distilled
    # on clean images only, a student has nothing that asks it to match the teacher under jitter
    distiller = session.distiller(method, session.build(spec.student), load_teacher(session, tuned_name))
    jitter_student = session.fit(student_name(session, method, "-cj"), "student", method, spec.student, distiller,
                                 ctx, teacher_name=tuned_name, augment=jitter)

    rows: list[dict[str, str | float]] = []
    for role, name in (("teacher", teacher_ckpt), ("student", plain_student),
                       ("teacher, colour-jitter fine-tuned", tuned_name),
                       ("student of it, distilled on jittered images", jitter_student.name)):
        clean, jittered = _clean_and_jittered(session, name, ctx)
        rows.append({"model": name, "role": role, "clean": clean, "jittered": jittered, "drop": clean - jittered})
    return ExperimentResult(spec.experiment, method, tuple(rows), dataclasses.asdict(jitter.spread))


def _clean_and_jittered(session: Session, name: str, ctx: JobContext) -> tuple[float, float]:
    """Accuracy on the test set as is, and jittered: the same jittered images for every model
    (drawn from the seed, not from the training seed's epochs)."""
    model = load_teacher(session, name)
    data, device = session.test_set, session.device
    loader = DeviceLoader(data, 256, device, train=False, channels_last=device.type == "cuda")
    mixed = autocast(device)
    clean = evaluate(model, loader, mixed, ctx, phase=f"{name} clean")
    jitter = ColourJitter(len(data), data.mean, data.std, TEST_JITTER_SEED + session.spec.seed, device)
    jittered = evaluate(model, loader, mixed, ctx, phase=f"{name} jittered",
                        transform=lambda images, indices: jitter(images, indices, 0))
    return clean, jittered


def teacher_capacity(spec: ExperimentSpec, ctx: JobContext) -> ExperimentResult:
    method = spec.method or "kd"
    rows: list[dict[str, str | float]] = []
    for arch in spec.teachers:
        session = open_session(spec.train_spec(arch, method), ctx)
        teacher, teacher_ckpt, teacher_acc = _teacher(session, arch, ctx, method)
        tag = f"-from-{session.store.meta(teacher_ckpt).arch}"
        student, student_acc = _student(session, method, teacher, teacher_ckpt, ctx,
                                        student_name(session, method, tag))
        rows.append({"teacher": teacher_ckpt, "teacher_accuracy": teacher_acc, "student": student,
                     "student_accuracy": student_acc, "gap": teacher_acc - student_acc})
    return ExperimentResult(spec.experiment, method, tuple(rows))
