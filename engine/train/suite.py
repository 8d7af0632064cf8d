"""``run_train_job``: a teacher (trained with CE, or reused from the store) and one student per method.

Everything that can be wrong with the request (unknown method or recipe, a teacher with
other classes, a missing hint tap, a bad number) is checked before the first batch, so a
mistake costs seconds, not an epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine import distributed
from engine.api.catalogue import method_label
from engine.api.checkpoints import CheckpointMeta
from engine.api.results import SeedGroupResult, StudentOutcome, TeacherOutcome, TrainResult
from engine.api.runs import read_run
from engine.api.specs import TrainSpec
from engine.api.workspace import Workspace, read_json
from engine.checkpoints.building import build_from_meta
from engine.checkpoints.store import CheckpointStore
from engine.data import ImageSet, load_split
from engine.data.registry import check_shapes_version
from engine.device import resolve_device
from engine.distill import Distiller, TrainingSet, build_distiller, check_method
from engine.distill.base import resolve_options
from engine.errors import JobCancelled, KdcamError
from engine.jobs import JobContext
from engine.models import TappedModel, architectures, build_model
from engine.models.adapters import renormalised
from engine.train.device import prepare_model
from engine.train.recipes import Recipe, resolve_recipe
from engine.train.rundir import RunDir
from engine.train.trainer import FitPlan, FitResult, fit
from engine.train.validation import carve_validation


@dataclass
class Session:
    """The parts of a suite shared by every model it trains."""

    spec: TrainSpec
    ws: Workspace
    store: CheckpointStore
    recipe: Recipe
    width: float
    teacher_width: float
    device: torch.device
    train_set: ImageSet  # without the validation images
    test_set: ImageSet
    val_set: ImageSet | None = None
    validation: dict[str, Any] | None = None  # how val_set was drawn (engine.train.validation)

    @property
    def training_set(self) -> TrainingSet:
        return TrainingSet(len(self.train_set), torch.from_numpy(self.train_set.labels).to(self.device),
                           self.train_set.image_size, self.train_set.channels)

    def slug(self) -> str:
        """Dataset, recipe and seed as a name part: ``shapes-demo-s0``."""
        base, _, options = self.spec.dataset.partition("?")
        dataset = re.sub(r"[^A-Za-z0-9]+", "-", Path(base).name if ":" in base else base).strip("-")[:32]
        if options:  # other options, other data: keep the names apart without spelling them out
            dataset += "-" + hashlib.sha1(options.encode()).hexdigest()[:6]
        return f"{dataset}-{self.recipe.name}-s{self.spec.seed}"

    def build(self, arch: str, width: float | None = None) -> TappedModel:
        """A fresh model of ``arch``: an architecture name, or a stored checkpoint whose model
        (e.g. a ``--model-def`` one) is rebuilt newly initialised (its weights are not used)."""
        torch.manual_seed(self.spec.seed)  # the same seed gives every student the same initial weights
        if arch not in architectures() and self.store.exists(arch):
            return build_from_meta(self.store.meta(arch), self.store.directory)
        return build_model(arch, self.train_set.num_classes, width or self.width, self.train_set.channels)

    def template(self, arch: str) -> CheckpointMeta | None:
        """The checkpoint a student's architecture comes from, when ``arch`` names one."""
        return self.store.meta(arch) if arch not in architectures() and self.store.exists(arch) else None

    def distiller(self, method: str, student: TappedModel, teacher: TappedModel | None,
                  options: dict[str, Any] | None = None) -> Distiller:
        if options is None:
            options = {**self.recipe.method_defaults.get(method, {}), **self.spec.method_options.get(method, {})}
        return build_distiller(method, student, teacher, options, self.training_set).to(self.device)

    def variant_options(self, method: str) -> dict[str, Any]:
        """The options set for ``method`` in this request that make its run differ from the recipe's:
        they name the variant (``kd+std``) in checkpoint names, metadata and analyses.

        An option counts when leaving it out would change what runs: ``standardize=true`` does,
        ``kd_weight=0.9`` next to it does too (the switch would bring 9), the default value alone does not.
        """
        cls = check_method(method)
        base = resolve_options(method, cls.defaults, self.recipe.method_defaults.get(method, {}))
        chosen = dict(self.spec.method_options.get(method, {}))
        runs = cls.effective_options(chosen, base)
        return {name: runs[name] for name in sorted(chosen)
                if cls.effective_options({k: v for k, v in chosen.items() if k != name}, base) != runs}

    def fit(self, name: str, role: str, method: str, arch: str, distiller: Distiller, ctx: JobContext,
            teacher_name: str | None = None, recipe: Recipe | None = None, augment=None,
            resume_run: str | None = None, width: float | None = None) -> FitResult:
        width = width or self.width
        here = distributed.current()
        options = self.variant_options(method) if role == "student" else {}
        if resume_run:
            run = RunDir.open(self.ws.runs, resume_run)
            name = str(run.config.get("name") or name)
            if here.main:
                self.store.reserve([name, f"{name}-last"], run.run_id)  # refused if another run took them since
        else:
            run_id = None
            if here.main:  # rank 0 (or the one process) alone touches the store; the others learn the outcome
                recipe_dict = dataclasses.asdict(recipe or self.recipe)
                with self.store.writing():  # choose, record and reserve the names as one step: no other run gets them
                    name = self.store.free_name(name, ("", "-last"))
                    config = {"spec": self.spec.to_dict(), "name": name, "role": role, "method": method,
                              "arch": arch, "width": width, "teacher": teacher_name, "recipe": recipe_dict,
                              "dataset": self.spec.dataset, "seed": self.spec.seed, "device": str(self.device),
                              "world_size": here.world_size, "validation": self.validation,
                              "method_options": options}
                    run_id = RunDir.create(self.ws.runs, name, config).run_id
                    self.store.reserve([name, f"{name}-last"], run_id)
            name, run_id = distributed.broadcast((name, run_id))
            distributed.barrier()  # the run directory exists before any rank opens it
            run = RunDir(self.ws.runs / run_id)
        plan = FitPlan(name=name, role=role, method=method, arch=arch, width=width, distiller=distiller,
                       recipe=recipe or self.recipe, train_set=self.train_set, test_set=self.test_set,
                       device=self.device, seed=self.spec.seed, teacher_name=teacher_name, compile=self.spec.compile,
                       augment=augment, template=self.template(arch), sync_bn=self.spec.sync_bn,
                       val_set=self.val_set, validation=self.validation, method_options=options)
        try:
            result = fit(plan, run, self.store, ctx, resume=resume_run is not None)
        except BaseException as exc:
            _record_stop(run, exc)
            if here.main and not run.state_path.exists():  # nothing to resume: starting again gets the name
                self.store.release([name, f"{name}-last"], run.run_id)
            raise
        if here.main:
            self.store.release([name, f"{name}-last"], run.run_id)  # the checkpoints now carry the run id
        return result


def _record_stop(run: RunDir, exc: BaseException) -> None:
    """Say in status.json why the run stopped (a non-finite loss has already said so)."""
    if (read_json(run.path / "status.json") or {}).get("state") == "failed":
        return
    if isinstance(exc, (JobCancelled, KeyboardInterrupt)):
        run.set_status("cancelled", f"cancelled; {run.resume_hint}")
    else:
        run.set_status("failed", str(exc) or type(exc).__name__)


def open_session(spec: TrainSpec, ctx: JobContext) -> Session:
    """Validate the request and load the data; raises ``KdcamError`` before any training."""
    for method in spec.methods:
        check_method(method)
    for method in spec.method_options:  # options for a method not trained this time are fine; typos are not
        check_method(method)
    recipe = resolve_recipe(spec.recipe, spec.epochs, spec.batch_size, spec.lr)
    width = recipe.width if spec.width is None else spec.width
    teacher_width = spec.teacher_width or (spec.width if spec.width is not None else recipe.teacher_width) or width
    for what, value in (("width", width), ("teacher width", teacher_width)):
        if not isinstance(value, (int, float)) or not 0 < value <= 8:
            raise KdcamError(f"{what} multiplier must be in (0, 8], got {value!r}")
    if not isinstance(spec.seed, int) or spec.seed < 0:
        raise KdcamError(f"seed must be a whole number ≥ 0, got {spec.seed!r}")
    device = resolve_device(spec.device)
    ws = Workspace.open(spec.workspace).ensure()
    if spec.student not in architectures() and not CheckpointStore(ws.checkpoints).exists(spec.student):
        raise KdcamError(f"unknown student {spec.student!r}: give an architecture ({', '.join(architectures())}) "
                         f"or a checkpoint in {ws.checkpoints} whose model to train afresh")
    ctx.log(f"loading {spec.dataset}")
    train_set = load_split(spec.dataset, "train", ws.data)
    test_set = load_split(spec.dataset, "test", ws.data)
    if train_set.num_classes < 2:
        raise KdcamError(f"dataset {spec.dataset!r} has {train_set.num_classes} class; training needs at least two")
    train_set, val_set, validation = carve_validation(train_set, spec.validation, spec.seed)
    return Session(spec, ws, CheckpointStore(ws.checkpoints, on_wait=ctx.log), recipe, float(width),
                   float(teacher_width), device, train_set, test_set, val_set, validation)


def load_teacher(session: Session, name: str) -> TappedModel:
    """A stored teacher, checked against the dataset's classes; frozen, on the training device."""
    model, meta = session.store.load(name, device="cpu")
    data = session.train_set
    check_shapes_version(session.spec.dataset, name, meta.mean, meta.std)
    if meta.num_classes != data.num_classes:
        raise KdcamError(f"teacher checkpoint {name!r} has {meta.num_classes} classes but {data.name!r} has "
                         f"{data.num_classes}; distil on the dataset the teacher was trained on")
    if meta.class_names and list(meta.class_names) != list(data.class_names):
        raise KdcamError(f"teacher checkpoint {name!r} names its classes differently from {data.name!r}")
    # batches come normalised with the dataset's statistics; the teacher gets its own checkpoint's
    model = renormalised(model, (data.mean, data.std), (meta.mean, meta.std))
    return prepare_model(model, session.device).eval()


def check_students(session: Session, teacher: TappedModel | None, methods: tuple[str, ...]) -> None:
    """Build every distiller once (options, taps, class counts) so a mistake fails now."""
    for method in methods:
        session.distiller(method, session.build(session.spec.student), teacher)


def teacher_name(session: Session, arch: str, tag: str = "") -> str:
    return f"{arch}{tag}-{session.slug()}"


def student_name(session: Session, method: str, tag: str = "") -> str:
    label = method_label(method, session.variant_options(method))
    return f"{session.spec.student}-{label}{tag}-{session.slug()}"


def train_teacher(session: Session, arch: str, ctx: JobContext, name: str | None = None,
                  resume_run: str | None = None) -> tuple[TappedModel, FitResult]:
    name = name or teacher_name(session, arch)
    model = session.build(arch, session.teacher_width)
    distiller = session.distiller("si", model, None, {})
    result = session.fit(name, "teacher", "ce", arch, distiller, ctx, resume_run=resume_run,
                         width=session.teacher_width, recipe=session.recipe.for_teacher())
    return load_teacher(session, result.name), result


def train_student(session: Session, method: str, teacher: TappedModel, teacher_ckpt: str, ctx: JobContext,
                  name: str | None = None, resume_run: str | None = None) -> FitResult:
    distiller = session.distiller(method, session.build(session.spec.student), teacher)
    return session.fit(name or student_name(session, method), "student", method, session.spec.student,
                       distiller, ctx, teacher_name=teacher_ckpt, resume_run=resume_run)


def run_seed_group(spec: TrainSpec, ctx: JobContext) -> SeedGroupResult:
    """``--seeds``: the whole suite (its own teacher, its own validation split) once per seed."""
    if spec.resume:
        raise KdcamError("--resume continues one run; give it without --seeds")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise KdcamError(f"--seeds lists a seed twice: {','.join(map(str, spec.seeds))}")
    runs: list[TrainResult] = []
    for seed in spec.seeds:
        ctx.log(f"seed {seed} ({len(runs) + 1} of {len(spec.seeds)})")
        runs.append(run_train_job(dataclasses.replace(spec, seed=seed, seeds=()), ctx))
    return SeedGroupResult(tuple(runs))


def run_train_job(spec: TrainSpec, ctx: JobContext) -> TrainResult:
    """Train or reuse the teacher, then one student per method; a summary for tables and JSON.

    With ``spec.resume`` (a run id) the interrupted run continues from its last finished
    epoch, under the spec recorded in its config; the suite then goes on with the methods
    that came after it.
    """
    resumed: dict[str, Any] = {}  # the interrupted run's config and id, when resuming
    if spec.resume:
        ws = Workspace.open(spec.workspace)
        RunDir.open(ws.runs, spec.resume)  # a clear error for an unknown or invalid run id
        recorded = read_run(ws, spec.resume).config  # validated: a hand-edited config is one clear error
        resumed = {**recorded.raw, "run_id": spec.resume}
        where = f"{ws.runs / spec.resume / 'config.json'}: spec"
        # runs recorded before validation splits trained on every image: they resume the same way
        spec = dataclasses.replace(TrainSpec.from_record({"validation": 0.0, **recorded.spec,
                                                          "workspace": spec.workspace}, where),
                                   resume=None, seeds=())
    session = open_session(spec, ctx)
    resume_teacher = bool(resumed) and resumed["role"] == "teacher"
    resume_student = bool(resumed) and resumed["role"] == "student"

    methods = spec.methods
    if resume_student:
        teacher_ckpt = resumed["teacher"]
        methods = methods[methods.index(resumed["method"]):]
    elif resume_teacher:
        teacher_ckpt = resumed["name"]
    elif session.store.exists(spec.teacher):
        teacher_ckpt = spec.teacher
    elif spec.teacher in architectures():
        teacher_ckpt = teacher_name(session, spec.teacher)
    else:
        raise KdcamError(f"teacher {spec.teacher!r} is neither a checkpoint in {session.store.directory} "
                         f"nor an architecture ({', '.join(architectures())})")

    total = len(methods) + 1
    ctx.progress("suite", 0, total, "teacher")
    train_new_teacher = resume_teacher or not (resume_student or session.store.exists(teacher_ckpt))
    if train_new_teacher:
        probe = session.build(spec.teacher, session.teacher_width)
        check_students(session, probe.to(session.device), methods)
        teacher, result = train_teacher(session, spec.teacher, ctx, teacher_ckpt,
                                        resume_run=resumed["run_id"] if resume_teacher else None)
        teacher_ckpt = result.name  # the name this run reserved (``-2`` when another run holds the plain one)
        teacher_outcome = TeacherOutcome(teacher_ckpt, result.best_accuracy, result.run_id, reused=False,
                                         last_accuracy=result.last_accuracy, val_accuracy=result.val_accuracy,
                                         best_epoch=result.best_epoch)
    else:
        teacher = load_teacher(session, teacher_ckpt)
        check_students(session, teacher, methods)
        meta = session.store.meta(teacher_ckpt)
        teacher_outcome = TeacherOutcome(teacher_ckpt, meta.accuracy, meta.run_id, reused=True,
                                         val_accuracy=meta.val_accuracy, best_epoch=meta.epochs)
    students: list[StudentOutcome] = []
    for done, method in enumerate(methods, start=1):
        ctx.progress("suite", done, total, method)
        resume_this = resume_student and done == 1
        result = train_student(session, method, teacher, teacher_ckpt, ctx,
                               name=resumed["name"] if resume_this else None,
                               resume_run=resumed["run_id"] if resume_this else None)
        students.append(StudentOutcome(method_label(method, session.variant_options(method)), result.name, result.best_accuracy, result.last_accuracy,
                                       result.run_id, result.val_accuracy, result.best_epoch))
    ctx.progress("suite", total, total, "done")
    return TrainResult(spec.dataset, session.recipe.name, spec.seed, session.recipe.epochs, teacher_outcome,
                       tuple(students))
