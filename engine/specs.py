"""Job specs: what a screen or a CLI command asks the engine to do. Torch-free.

Each spec names, in ``runner``, the function that executes it on the engine thread
(``function(spec, ctx: JobContext) -> result``). Specs are frozen and JSON-friendly so a
run can record the spec that produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class _Spec:
    runner: ClassVar[str]
    kind: ClassVar[str]

    @property
    def title(self) -> str:
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImportSpec(_Spec):
    """Import a foreign checkpoint file into the workspace's store."""

    runner: ClassVar[str] = "engine.checkpoints.importer:run_import_job"
    kind: ClassVar[str] = "import"
    workspace: str
    path: str
    name: str | None = None
    arch: str | None = None
    model_def: str | None = None  # "path/to/file.py:ClassName"
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
class TrainSpec(_Spec):
    """Train (or reuse) a teacher, then one student per method."""

    runner: ClassVar[str] = "engine.train.suite:run_train_job"
    kind: ClassVar[str] = "train"
    workspace: str
    dataset: str = "shapes"
    teacher: str = "vgg16"  # an architecture name, or an existing checkpoint name
    student: str = "vgg11"
    methods: tuple[str, ...] = ("si", "ls", "kd", "dkd", "hints", "crd", "at")
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

    @property
    def title(self) -> str:
        if self.resume:
            return f"resume {self.resume}"
        return f"train {self.teacher}->{self.student} [{','.join(self.methods)}] on {self.dataset}"


@dataclass(frozen=True)
class AnalyzeSpec(_Spec):
    """CAMs for a teacher and its students on the same images, and how alike they are."""

    runner: ClassVar[str] = "engine.analysis.job:run_analysis_job"
    kind: ClassVar[str] = "analyze"
    workspace: str
    teacher: str
    students: tuple[str, ...]
    dataset: str = "shapes"
    split: str = "test"
    n: int | None = None
    method: str = "gradcam"
    target: str = "label"  # label | teacher | own | class:K
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

    @property
    def title(self) -> str:
        if not self.students:
            return f"diagnose {self.teacher} ({self.method})"
        return f"analyze {self.teacher} vs {','.join(self.students)} ({self.method})"


@dataclass(frozen=True)
class ExportSpec(_Spec):
    """Turn an analysis into a report folder (HTML, PNG, CSV, JSON)."""

    runner: ClassVar[str] = "engine.reports.export:run_export_job"
    kind: ClassVar[str] = "export"
    workspace: str
    analysis: str
    out: str | None = None
    formats: tuple[str, ...] = ("html", "png", "csv", "json")
    examples: int = 8
    overwrite: bool = False

    @property
    def title(self) -> str:
        return f"export {self.analysis}"


@dataclass(frozen=True)
class DemoSpec(_Spec):
    """The embedded demo: on ``shapes``, a small teacher and its students, one analysis, one report."""

    runner: ClassVar[str] = "engine.demo:run_demo_job"
    kind: ClassVar[str] = "demo"
    workspace: str
    methods: tuple[str, ...] = ("si", "ls", "kd", "dkd", "hints", "crd", "at")
    seed: int = 0
    export: bool = True

    @property
    def title(self) -> str:
        return "demo on the embedded shapes dataset"
