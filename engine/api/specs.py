"""Job specs: what a screen or a CLI command asks the engine to do. Torch-free.

Specs are frozen and JSON-friendly so a run can record the spec that produced it. Which
function runs a spec is decided by ``engine.runners.RUNNERS`` (one table keyed by spec
class), not by the spec, so the UI side never names engine modules.
"""

from __future__ import annotations

import types
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

from engine.api.catalogue import DEFAULT_CAM_METHOD, DEFAULT_METHODS, DEFAULT_TARGET, EXPORT_FORMATS
from engine.api.validate import Fields
from engine.errors import KdcamError


@dataclass(frozen=True)
class Spec:
    """Base of every spec: a kind (for logs and job lists) and a one-line title."""

    kind: ClassVar[str]

    @property
    def title(self) -> str:
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: object, where: str) -> Self:
        """Rebuild a spec recorded in a file (a run's config.json), checking every field's type:
        a hand-edited record is one clear error naming the file and the field, never a crash later."""
        f = Fields(data, where)
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in f.data:
                kwargs[item.name] = _typed(f, item.name, hints[item.name])
        unknown = sorted(set(f.data) - {item.name for item in fields(cls)})
        if unknown:
            raise f.error(unknown[0], f"one of the fields of {cls.__name__}", f.data[unknown[0]])
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field missing
            raise KdcamError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ImportSpec(Spec):
    """Import a foreign checkpoint file into the workspace's store."""

    kind: ClassVar[str] = "import"
    workspace: str
    path: str
    name: str | None = None
    arch: str | None = None
    model_def: str | None = None  # "path/to/file.py:NAME", a class or factory function
    model_args: dict[str, Any] | None = None  # its keyword arguments (plain JSON values)
    num_classes: int | None = None
    width: float | None = None
    dataset: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    role: str = "imported"

    @property
    def title(self) -> str:
        return f"import {self.path}"


@dataclass(frozen=True)
class TrainSpec(Spec):
    """Train (or reuse) a teacher, then one student per method."""

    kind: ClassVar[str] = "train"
    workspace: str
    dataset: str = "shapes"
    teacher: str = "vgg16"  # an architecture name, or an existing checkpoint name
    student: str = "vgg11"
    methods: tuple[str, ...] = DEFAULT_METHODS
    recipe: str = "quick"  # paper | quick | demo
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    width: float | None = None  # channel-width multiplier of the students; None: the recipe's
    teacher_width: float | None = None  # the teacher's; None: the recipe's (or ``width`` when given)
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    resume: str | None = None  # a run id under runs/: continue it, then the suite's remaining methods
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    sync_bn: bool = False  # SyncBatchNorm across torchrun ranks (CUDA only)
    #: share of the training images held out to choose the best epoch (0: the test split chooses)
    validation: float = 0.1
    #: train the whole suite once per seed (a teacher and students each); () = just ``seed``
    seeds: tuple[int, ...] = ()

    @property
    def title(self) -> str:
        if self.resume:
            return f"resume {self.resume}"
        seeds = f" seeds {','.join(map(str, self.seeds))}" if self.seeds else ""
        return f"train {self.teacher}->{self.student} [{','.join(self.methods)}] on {self.dataset}{seeds}"


@dataclass(frozen=True)
class AnalyzeSpec(Spec):
    """CAMs for a teacher and its students on the same images, and how alike they are."""

    kind: ClassVar[str] = "analyze"
    workspace: str
    teacher: str
    students: tuple[str, ...]
    dataset: str = "shapes"
    split: str = "test"
    n: int | None = None
    method: str = DEFAULT_CAM_METHOD
    target: str = DEFAULT_TARGET  # label | teacher | own | class:K
    layer: str | None = None
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    name: str | None = None  # the analysis id; default: date-time and teacher
    check_images: int = 64  # images for the costly checks: randomisation sanity, deletion/insertion
    sanity_methods: tuple[str, ...] = ()  # CAM methods the randomisation check runs; () = the analysis method
    deletion_steps: int = 10
    worst_per_class: int = 3  # misclassifications (and low-confidence hits) listed per class
    resamples: int = 2000  # bootstrap resamples
    #: the independent reference (a student, or another checkpoint such as a second teacher); None: the
    #: student trained with method ``si``, if any
    baseline: str | None = None

    @property
    def title(self) -> str:
        if not self.students:
            return f"diagnose {self.teacher} ({self.method})"
        return f"analyze {self.teacher} vs {','.join(self.students)} ({self.method})"


@dataclass(frozen=True)
class AggregateSpec(Spec):
    """Analyses of one study trained with several seeds, summarised per method over the seeds."""

    kind: ClassVar[str] = "aggregate"
    workspace: str
    analyses: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"aggregate {', '.join(self.analyses)}"


@dataclass(frozen=True)
class ExportSpec(Spec):
    """Turn an analysis into a report folder (HTML, PNG, CSV, JSON)."""

    kind: ClassVar[str] = "export"
    workspace: str
    analysis: str
    out: str | None = None
    formats: tuple[str, ...] = EXPORT_FORMATS
    examples: int = 8
    overwrite: bool = False
    #: the analyses of the report's "Over seeds" section, besides ``analysis``: None finds its seed
    #: group by name (``<study>-s<seed>``, engine.api.seedgroups); () leaves the section out
    over_seeds: tuple[str, ...] | None = None

    @property
    def title(self) -> str:
        return f"export {self.analysis}"


@dataclass(frozen=True)
class DemoSpec(Spec):
    """The embedded demo: on ``shapes``, a small teacher and its students, one analysis, one report."""

    kind: ClassVar[str] = "demo"
    workspace: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    seed: int = 0
    export: bool = True
    train_teacher: bool = False  # train the teacher here instead of using the one kdcam ships

    @property
    def title(self) -> str:
        return "demo on the embedded shapes dataset"


@dataclass(frozen=True)
class ExperimentSpec(Spec):
    """A packaged experiment (``color-invariance``, ``teacher-capacity``) built from train suites."""

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


@dataclass(frozen=True)
class RepairCheckpointsSpec(Spec):
    """Complete interrupted store changes and move orphaned files to checkpoints/.orphans/ (never deletes)."""

    kind: ClassVar[str] = "repair"
    workspace: str

    @property
    def title(self) -> str:
        return "repair the checkpoint store"


@dataclass(frozen=True)
class RenameCheckpointSpec(Spec):
    """Rename a checkpoint (weights and metadata together)."""

    kind: ClassVar[str] = "rename"
    workspace: str
    name: str
    new_name: str

    @property
    def title(self) -> str:
        return f"rename {self.name} -> {self.new_name}"


@dataclass(frozen=True)
class DeleteCheckpointSpec(Spec):
    """Delete a checkpoint (weights and metadata together)."""

    kind: ClassVar[str] = "delete"
    workspace: str
    name: str

    @property
    def title(self) -> str:
        return f"delete {self.name}"


@dataclass(frozen=True)
class DeleteAnalysisSpec(Spec):
    """Delete one analysis directory (``analyses/ID``), readable or not."""

    kind: ClassVar[str] = "delete-analysis"
    workspace: str
    analysis: str

    @property
    def title(self) -> str:
        return f"delete analysis {self.analysis}"


@dataclass(frozen=True)
class TapsSpec(Spec):
    """The feature taps (name, channels, size) of a checkpoint's model, for the inspect views."""

    kind: ClassVar[str] = "taps"
    workspace: str
    name: str

    @property
    def title(self) -> str:
        return f"taps of {self.name}"


@dataclass(frozen=True)
class PreviewSpec(Spec):
    """Class counts of one split of a dataset and a PNG contact sheet of it."""

    kind: ClassVar[str] = "preview"
    workspace: str
    dataset: str
    split: str = "train"
    out: str | None = None  # relative to the workspace; default exports/preview-<dataset>-<split>.png
    download: bool = False

    @property
    def title(self) -> str:
        return f"preview {self.dataset} ({self.split})"


@dataclass(frozen=True)
class EvalSpec(Spec):
    """Top-1/top-5, per-class accuracy and calibration of stored checkpoints on one dataset split."""

    kind: ClassVar[str] = "eval"
    workspace: str
    checkpoints: tuple[str, ...]
    dataset: str
    split: str = "test"
    batch_size: int = 256
    device: str = "auto"

    @property
    def title(self) -> str:
        return f"evaluate {', '.join(self.checkpoints)} on {self.dataset} ({self.split})"


def _typed(f: Fields, key: str, hint: Any) -> Any:
    """The field ``key`` read as the annotation ``hint`` says (str, int, float, bool, None, tuples, dicts)."""
    value = f.data[key]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(f, key, inner)
    if hint is str:
        return f.text(key)
    if hint is bool:
        return f.flag(key)
    if hint is int:
        return f.integer(key)
    if hint is float:
        return f.number(key)
    if origin is tuple:
        return tuple(f.list_of(key, args[0], max_len=10_000))
    if origin is dict:
        return dict(f.obj(key).data)
    raise f.error(key, f"a value of type {hint}", value)
