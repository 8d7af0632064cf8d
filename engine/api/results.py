"""Typed results: what every job returns and what ``results.json`` holds, read and written one way.

Each class has ``from_fields`` (validating, from a ``Fields`` view of untrusted JSON) and
``to_dict`` (what kdcam writes). Front-ends read attributes, never string keys, so adding
a field is one edit here that the type checker follows everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from engine.api.bands import BANDS
from engine.api.catalogue import BANDED_METRICS, CAM_METHODS, MAP_METRICS, OUTCOME_SPLITS, ROLES, TARGETS, parse_target
from engine.api.validate import Fields
from engine.errors import KdcamError

SCHEMA = "kdcam.analysis"
SCHEMA_VERSION = 1
#: upper bounds on what a results.json may claim (an analysis of more images is not ours)
MAX_IMAGES = 10_000_000
MAX_CLASSES = 1_000_000


# -- job results ------------------------------------------------------------------------
@dataclass(frozen=True)
class TapInfo:
    """One feature tap of a model: its name, channels and spatial size."""

    name: str
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class ModelTaps:
    """A checkpoint's feature taps at its input size, and which are the CAM and hint defaults."""

    taps: tuple[TapInfo, ...]
    default_cam_tap: str
    default_hint_tap: str

    def to_dict(self) -> dict[str, Any]:
        return {"taps": [asdict(t) for t in self.taps], "default_cam_tap": self.default_cam_tap,
                "default_hint_tap": self.default_hint_tap}


@dataclass(frozen=True)
class TeacherOutcome:
    name: str
    accuracy: float | None  # test accuracy of the epoch chosen on validation (the stored checkpoint's)
    run_id: str | None
    reused: bool
    last_accuracy: float | None = None  # test accuracy of the last epoch (None when reused)
    val_accuracy: float | None = None  # validation accuracy of the chosen epoch
    best_epoch: int | None = None

    @classmethod
    def from_fields(cls, f: Fields) -> TeacherOutcome:
        return cls(f.text("name"), f.opt_number("accuracy"), f.opt_text("run_id"), f.flag("reused", False),
                   f.opt_number("last_accuracy"), f.opt_number("val_accuracy"), f.opt_integer("best_epoch", minimum=0))


@dataclass(frozen=True)
class StudentOutcome:
    method: str
    name: str
    accuracy: float | None  # test accuracy of the epoch chosen on validation
    last_accuracy: float | None  # test accuracy of the last epoch
    run_id: str | None
    val_accuracy: float | None = None
    best_epoch: int | None = None

    @classmethod
    def from_fields(cls, f: Fields) -> StudentOutcome:
        return cls(f.text("method"), f.text("name"), f.opt_number("accuracy"), f.opt_number("last_accuracy"),
                   f.opt_text("run_id"), f.opt_number("val_accuracy"), f.opt_integer("best_epoch", minimum=0))


@dataclass(frozen=True)
class TrainResult:
    """A train suite's outcome: the teacher (trained or reused) and one student per method."""

    dataset: str
    recipe: str
    seed: int
    epochs: int
    teacher: TeacherOutcome
    students: tuple[StudentOutcome, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["students"] = [asdict(s) for s in self.students]
        return data

    @classmethod
    def from_fields(cls, f: Fields) -> TrainResult:
        return cls(f.text("dataset"), f.text("recipe"), f.integer("seed"), f.integer("epochs"),
                   TeacherOutcome.from_fields(f.obj("teacher")),
                   tuple(StudentOutcome.from_fields(s) for s in f.objects("students")))


@dataclass(frozen=True)
class SeedGroupResult:
    """``kdcam train --seeds``: one train suite per seed, in the order asked."""

    runs: tuple[TrainResult, ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.seed for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "runs": [run.to_dict() for run in self.runs]}


@dataclass(frozen=True)
class AnalysisJobResult:
    """Where an analysis was written and each student's overall band."""

    id: str
    path: str
    bands: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    """Where the report is and which files it holds (relative paths)."""

    path: str
    files: tuple[str, ...]
    analysis: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "files": list(self.files), "analysis": self.analysis}


@dataclass(frozen=True)
class DemoResult:
    workspace: str
    train: TrainResult
    analyses: tuple[AnalysisJobResult, ...]
    report: ExportResult | None

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "train": self.train.to_dict(),
                "analyses": [a.to_dict() for a in self.analyses],
                "report": self.report.to_dict() if self.report else None}


@dataclass(frozen=True)
class ExperimentResult:
    """A packaged experiment's table: one row per model (column -> name or accuracy), and the
    colour-jitter ranges where the experiment used them."""

    experiment: str
    method: str
    rows: tuple[dict[str, str | float], ...]
    jitter: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"experiment": self.experiment, "method": self.method,
                                "rows": [dict(r) for r in self.rows]}
        if self.jitter is not None:
            data["jitter"] = dict(self.jitter)
        return data


@dataclass(frozen=True)
class DatasetSummary:
    """What ``kdcam data preview`` found in one split of a dataset."""

    dataset: str
    split: str
    images: int
    image_shape: tuple[int, ...]
    classes: int
    has_masks: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_counts: dict[str, int]
    contact_sheet: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_shape"], data["mean"], data["std"] = list(self.image_shape), list(self.mean), list(self.std)
        return data


@dataclass(frozen=True)
class ClassScore:
    name: str
    n: int
    accuracy: float | None  # None for a class with no images in the split


@dataclass(frozen=True)
class Evaluation:
    """One checkpoint evaluated on one split (``kdcam eval``)."""

    checkpoint: str
    dataset: str
    split: str
    n: int
    top1: float
    top5: float | None  # None when the model has fewer than 5 classes
    ece: float
    stored_accuracy: float | None  # what the checkpoint's metadata says (trainer or import)
    per_class: tuple[ClassScore, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_class"] = [asdict(c) for c in self.per_class]
        return data


# -- over seeds (``kdcam aggregate``) --------------------------------------------------------
#: numbers where less is better (every other aggregated number: more is better)
LOWER_IS_BETTER_ACROSS = frozenset({"kl", "output_kl", "peak_distance", "energy_on_distractors", "energy_on_cue",
                                    "follows_cue"})


@dataclass(frozen=True)
class SeedStat:
    """One number over seeds: the mean of the per-seed values and its 95% Student-t interval
    (None where fewer than two seeds have a value); ``values`` holds each seed's, None where missing."""

    mean: float | None
    ci_low: float | None
    ci_high: float | None
    values: tuple[float | None, ...]

    @property
    def n(self) -> int:
        return sum(v is not None for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n,
                "values": list(self.values)}


@dataclass(frozen=True)
class SeedDifference:
    """A method minus the baseline over seeds: ``stat`` summarises the per-seed paired differences
    (each the mean over images of that seed's analysis); ``better`` counts the seeds on the better
    side of zero, ``significant`` those whose own 95% paired interval excludes zero on that side."""

    stat: SeedStat
    better: int
    significant: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.stat.to_dict(), "better": self.better, "significant": self.significant}


@dataclass(frozen=True)
class MethodAggregate:
    """One row of a seed study: the teacher, the baseline or a KD method, over every analysis."""

    method: str  # "teacher" for the teacher row, else the student's method (or name)
    role: str  # teacher | baseline | student
    models: tuple[str | None, ...]  # the checkpoint in each analysis, None where absent
    metrics: dict[str, SeedStat]  # accuracy, similarity to the teacher, ground-truth localisation
    vs_baseline: dict[str, SeedDifference]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "role": self.role, "models": list(self.models),
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "vs_baseline": {k: v.to_dict() for k, v in self.vs_baseline.items()}}


@dataclass(frozen=True)
class SeedAggregate:
    """Several analyses of the same study (one per training seed) summarised per method."""

    analyses: tuple[str, ...]
    baseline: str | None  # the baseline's method (e.g. ``si``)
    cam: str  # "gradcam, target label"
    dataset: str
    rows: tuple[MethodAggregate, ...]

    def row(self, method: str) -> MethodAggregate:
        return next(r for r in self.rows if r.method == method)

    def to_dict(self) -> dict[str, Any]:
        return {"analyses": list(self.analyses), "baseline": self.baseline, "cam": self.cam,
                "dataset": self.dataset, "rows": [r.to_dict() for r in self.rows]}


# -- results.json -----------------------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """A mean over ``n`` values with its 95% bootstrap interval; all None when n == 0."""

    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    band: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As results.json holds it; the band only once one is assigned (the bootstrap assigns none)."""
        data: dict[str, Any] = {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}
        return data if self.band is None else {**data, "band": self.band}

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2

    @classmethod
    def from_fields(cls, f: Fields) -> Stat:
        band = f.opt_text("band")
        if band is not None and band not in BANDS:
            raise f.error("band", f"one of {', '.join(BANDS)}", band)
        return cls(_opt_float(f, "mean"), _opt_float(f, "ci_low"), _opt_float(f, "ci_high"),
                   f.integer("n", minimum=0, maximum=MAX_IMAGES), band)


def _opt_float(f: Fields, key: str) -> float | None:
    """A number or null; NaN (no value, e.g. no valid image) reads as None; infinities are refused."""
    raw = f.data.get(key)
    if isinstance(raw, float) and math.isnan(raw):
        return None
    return f.opt_number(key)


@dataclass(frozen=True)
class DatasetInfo:
    spec: str
    split: str
    n: int
    split_size: int
    image_size: int
    channels: int
    num_classes: int
    class_names: tuple[str, ...]
    has_masks: bool
    selection: str

    @classmethod
    def from_fields(cls, f: Fields) -> DatasetInfo:
        num_classes = f.integer("num_classes", minimum=1, maximum=MAX_CLASSES)
        names = tuple(f.list_of("class_names", str, max_len=MAX_CLASSES))
        if len(names) != num_classes:
            raise f.error("class_names", f"{num_classes} names (num_classes)", f"{len(names)} names")
        return cls(f.text("spec"), f.text("split"), f.integer("n", minimum=0, maximum=MAX_IMAGES),
                   f.integer("split_size", minimum=0, maximum=MAX_IMAGES), f.integer("image_size", minimum=1,
                                                                                       maximum=100_000),
                   f.integer("channels", minimum=1, maximum=64), num_classes, names, f.flag("has_masks"),
                   f.text("selection", ""))


@dataclass(frozen=True)
class CamInfo:
    method: str
    target: str
    layers: dict[str, str]

    @classmethod
    def from_fields(cls, f: Fields) -> CamInfo:
        layers = f.obj("layers")
        target = f.text("target")
        try:
            parse_target(target)
        except KdcamError:
            raise f.error("target", f"one of {', '.join(TARGETS)}", target) from None
        return cls(f.text("method", choices=CAM_METHODS), target, {name: layers.name(name) for name in layers.key_names()})


@dataclass(frozen=True)
class MaskScores:
    """Ground-truth localisation of a model's own maps. The distractor and cue shares exist where the
    dataset marks those regions (shapes v2 and later); files written before them read as None."""

    pointing_game: Stat
    energy_in_mask: Stat
    energy_on_distractors: Stat | None = None
    energy_on_cue: Stat | None = None

    @classmethod
    def from_fields(cls, f: Fields) -> MaskScores:
        return cls(Stat.from_fields(f.obj("pointing_game")), Stat.from_fields(f.obj("energy_in_mask")),
                   _opt_stat(f, "energy_on_distractors"), _opt_stat(f, "energy_on_cue"))


def _opt_stat(f: Fields, key: str) -> Stat | None:
    sub = f.opt_obj(key)
    return Stat.from_fields(sub) if sub is not None else None


#: what a ``vs_baseline`` section may hold (paired differences model - baseline)
MODEL_DIFFERENCES = ("accuracy", "pointing_game", "energy_in_mask", "energy_on_distractors", "energy_on_cue",
                     "follows_cue")
PAIR_DIFFERENCES = (*MAP_METRICS, "agreement", "output_kl")


def _differences(f: Fields, allowed: tuple[str, ...]) -> dict[str, Stat] | None:
    """A ``vs_baseline`` object (None when absent, as in files written before baselines)."""
    sub = f.opt_obj("vs_baseline")
    if sub is None:
        return None
    unknown = sorted(set(sub.data) - set(allowed))
    if unknown:
        raise sub.error(unknown[0], f"one of {', '.join(allowed)}", unknown[0])
    return {name: Stat.from_fields(sub.obj(name)) for name in allowed if sub.has(name)}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    arch: str
    width: float
    params: int | None
    tap: str
    method: str | None
    checkpoint_accuracy: float | None
    accuracy: Stat
    mean_confidence: float | None
    degenerate: int
    mask: MaskScores | None
    #: paired differences (this model - the baseline) of accuracy and ground-truth localisation;
    #: None for the baseline itself, without a baseline, and in files written before baselines
    vs_baseline: dict[str, Stat] | None = None
    #: share of predictions equal to the class the spurious cue names (datasets with a cue)
    follows_cue: Stat | None = None

    @classmethod
    def from_fields(cls, f: Fields) -> ModelEntry:
        mask = f.opt_obj("mask")
        return cls(
            f.name("name"), f.text("role", choices=("teacher", "student", "baseline", *ROLES)), f.text("arch", ""),
            f.number("width", 1.0), f.opt_integer("params", minimum=0), f.name("tap", ""), f.opt_name("method"),
            _opt_float(f, "checkpoint_accuracy"), Stat.from_fields(f.obj("accuracy")),
            _opt_float(f, "mean_confidence"), f.integer("degenerate", 0, minimum=0),
            MaskScores.from_fields(mask) if mask else None, _differences(f, MODEL_DIFFERENCES),
            _opt_stat(f, "follows_cue"),
        )


@dataclass(frozen=True)
class SplitEntry:
    n: int
    metrics: dict[str, Stat]


@dataclass(frozen=True)
class PairEntry:
    teacher: str
    student: str
    method: str | None
    agreement: Stat
    output_kl: Stat
    degenerate: dict[str, int]
    n_valid: int
    metrics: dict[str, Stat]  # every MAP_METRICS entry; the banded ones carry their band
    band: str
    band_score: int
    band_scores: dict[str, int]
    splits: dict[str, SplitEntry]
    #: paired differences (this student's similarity to the teacher - the baseline's); None for the
    #: baseline itself, without a baseline, and in files written before baselines
    vs_baseline: dict[str, Stat] | None = None

    @classmethod
    def from_fields(cls, f: Fields) -> PairEntry:
        metrics_f = f.obj("metrics")
        metrics = {name: Stat.from_fields(metrics_f.obj(name)) for name in MAP_METRICS if metrics_f.has(name)}
        for name in BANDED_METRICS:
            if name not in metrics:
                raise metrics_f.error(name, "a metric statistic")
        degenerate_f = f.obj("degenerate")
        splits_f = f.obj("splits")
        splits = {}
        for name in OUTCOME_SPLITS:
            if splits_f.has(name):
                split = splits_f.obj(name)
                split_metrics = split.obj("metrics")
                splits[name] = SplitEntry(split.integer("n", minimum=0, maximum=MAX_IMAGES),
                                          {m: Stat.from_fields(split_metrics.obj(m)) for m in split_metrics.data})
        scores_f = f.obj("band_scores")
        return cls(
            f.name("teacher"), f.name("student"), f.opt_name("method"), Stat.from_fields(f.obj("agreement")),
            Stat.from_fields(f.obj("output_kl")),
            {key: degenerate_f.integer(key, minimum=0) for key in degenerate_f.data},
            f.integer("n_valid", minimum=0, maximum=MAX_IMAGES), metrics, f.text("band", choices=BANDS),
            f.integer("band_score", minimum=0, maximum=3),
            {m: scores_f.integer(m, minimum=0, maximum=3) for m in scores_f.data}, splits,
            _differences(f, PAIR_DIFFERENCES),
        )


@dataclass(frozen=True)
class ClassAccuracy:
    cls: int
    name: str
    n: int
    accuracy: float | None
    pointing_game: float | None


@dataclass(frozen=True)
class ConfusedPair:
    true: int
    predicted: int
    count: int
    rate: float
    related: str | None


@dataclass(frozen=True)
class WorstError:
    row: int
    index: int | None  # the image's index in the dataset split; files written so far omit it
    image: int
    predicted: int
    confidence: float
    true_prob: float
    energy_in_mask: float | None


@dataclass(frozen=True)
class LowConfidenceHit:
    image: int
    index: int | None
    confidence: float


@dataclass(frozen=True)
class Diagnosis:
    """Per-model error analysis: confusion, per-class accuracy, worst errors, written findings."""

    accuracy: float | None
    confusion: tuple[tuple[int, ...], ...]
    per_class: tuple[ClassAccuracy, ...]
    confused_pairs: tuple[ConfusedPair, ...]
    worst_errors: dict[int, tuple[WorstError, ...]]  # class -> errors
    low_confidence_correct: dict[int, tuple[LowConfidenceHit, ...]]
    summary: tuple[str, ...]
    recommendations: tuple[str, ...]

    @classmethod
    def from_fields(cls, f: Fields, n_images: int, num_classes: int) -> Diagnosis:
        """``num_classes`` is the dataset's; a model may have more classes (its confusion is then larger)."""
        row_max = max(n_images - 1, 0)
        rows = f.array("confusion", max_len=MAX_CLASSES)
        size = len(rows)
        if size < num_classes:
            raise f.error("confusion", f"at least {num_classes} rows (the dataset's classes)", f"{size} rows")
        confusion = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != size or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row):
                raise f.error(f"confusion[{i}]", f"{size} non-negative integers", row)
            confusion.append(tuple(row))
        num_classes = size
        per_class = tuple(
            ClassAccuracy(c.integer("class", minimum=0, maximum=num_classes - 1), c.text("name", ""),
                          c.integer("n", minimum=0), _opt_float(c, "accuracy"), _opt_float(c, "pointing_game"))
            for c in f.objects("per_class", []))
        pairs = tuple(
            ConfusedPair(p.integer("true", minimum=0, maximum=num_classes - 1),
                         p.integer("predicted", minimum=0, maximum=num_classes - 1), p.integer("count", minimum=0),
                         p.number("rate", minimum=0.0), p.opt_text("related"))
            for p in f.objects("confused_pairs", []))
        worst: dict[int, tuple[WorstError, ...]] = {}
        for group in f.objects("worst_errors", []):
            worst[group.integer("class", minimum=0, maximum=num_classes - 1)] = tuple(
                WorstError(i.integer("row", minimum=0), i.opt_integer("index", minimum=0),
                           i.integer("image", minimum=0, maximum=row_max),
                           i.integer("predicted", minimum=0, maximum=num_classes - 1), i.number("confidence"),
                           i.number("true_prob"), _opt_float(i, "energy_in_mask"))
                for i in group.objects("items"))
        low: dict[int, tuple[LowConfidenceHit, ...]] = {}
        for group in f.objects("low_confidence_correct", []):
            low[group.integer("class", minimum=0, maximum=num_classes - 1)] = tuple(
                LowConfidenceHit(i.integer("image", minimum=0, maximum=row_max), i.opt_integer("index", minimum=0),
                                 i.number("confidence"))
                for i in group.objects("items"))
        return cls(_opt_float(f, "accuracy"), tuple(confusion), per_class, pairs, worst, low,
                   tuple(f.list_of("summary", str, [])), tuple(f.list_of("recommendations", str, [])))


@dataclass(frozen=True)
class SanityEntry:
    spearman: Stat
    pearson: Stat
    iou: Stat
    passed: bool | None


@dataclass(frozen=True)
class Sanity:
    """The parameter-randomisation check: per CAM method and model."""

    n: int
    rows: tuple[int, ...]
    methods: dict[str, dict[str, SanityEntry]]


@dataclass(frozen=True)
class Faithfulness:
    n: int
    steps: int
    rows: tuple[int, ...]
    models: dict[str, dict[str, Stat]]  # model -> deletion_auc / insertion_auc


@dataclass(frozen=True)
class AnalysisResults:
    """``results.json`` of one analysis (docs/RESULTS_SCHEMA.md), validated."""

    id: str
    created: str
    elapsed_s: float
    spec: dict[str, Any]
    device: str
    dataset: DatasetInfo
    cam: CamInfo
    models: tuple[ModelEntry, ...]
    pairs: tuple[PairEntry, ...]
    diagnosis: dict[str, Diagnosis]
    attention: dict[str, dict[str, Stat | int]]
    sanity: Sanity | None
    faithfulness: Faithfulness | None
    version: int = SCHEMA_VERSION
    #: the independent reference model (a student or an extra model with role baseline); None in
    #: files written before baselines and in analyses without one
    baseline: str | None = None

    @property
    def teacher(self) -> ModelEntry:
        return next(m for m in self.models if m.role == "teacher")

    @property
    def baseline_pair(self) -> PairEntry | None:
        """The baseline's own similarity to the teacher: what an unrelated model reaches."""
        return next((p for p in self.pairs if p.student == self.baseline), None)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def model(self, name: str) -> ModelEntry:
        return next(m for m in self.models if m.name == name)

    def pair(self, student: str) -> PairEntry:
        return next(p for p in self.pairs if p.student == student)

    @classmethod
    def from_fields(cls, f: Fields) -> AnalysisResults:
        schema = f.text("schema")
        if schema != SCHEMA:
            raise f.error("schema", repr(SCHEMA) + " (a kdcam analysis)", schema)
        version = f.integer("version", minimum=0)
        if version > SCHEMA_VERSION:
            raise f.error("version", f"at most {SCHEMA_VERSION} (upgrade kdcam to read newer analyses)", version)
        dataset = DatasetInfo.from_fields(f.obj("dataset"))
        models = tuple(ModelEntry.from_fields(m) for m in f.objects("models"))
        if sum(m.role == "teacher" for m in models) != 1:
            raise f.error("models", "exactly one model with role teacher", f"{len(models)} models")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise f.error("models", "distinct model names", ", ".join(names))
        pairs = tuple(PairEntry.from_fields(p) for p in f.objects("pairs"))
        for pair in pairs:
            if pair.student not in names:
                raise f.error("pairs", "students listed in models", pair.student)
        baseline = f.opt_text("baseline")
        if baseline is not None and baseline not in [p.student for p in pairs]:
            raise f.error("baseline", "a model compared with the teacher (listed in pairs)", baseline)
        diagnosis = {name: Diagnosis.from_fields(d, dataset.n, dataset.num_classes)
                     for name, d in f.mapping("diagnosis", {}).items()}
        attention: dict[str, dict[str, Stat | int]] = {}
        for name, a in f.mapping("attention", {}).items():
            attention[name] = {"n": a.integer("n", minimum=0), "pearson": Stat.from_fields(a.obj("pearson")),
                               "peak_distance": Stat.from_fields(a.obj("peak_distance"))}
        return cls(
            f.text("id"), f.text("created", ""), f.number("elapsed_s", 0.0), dict(f.obj("spec").data)
            if f.has("spec") else {}, f.text("device", ""), dataset, CamInfo.from_fields(f.obj("cam")), models, pairs,
            diagnosis, attention, _sanity(f.opt_obj("sanity"), dataset.n), _faithfulness(f.opt_obj("faithfulness"),
                                                                                         dataset.n), version, baseline,
        )


def _rows(f: Fields, n_images: int) -> tuple[int, ...]:
    """Image rows of a check subset: each must index images.npy."""
    return tuple(_row(f, i, value, n_images) for i, value in enumerate(f.array("rows", [])))


def _row(f: Fields, i: int, value: object, n_images: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < max(n_images, 1):
        raise f.error(f"rows[{i}]", f"an image row in [0, {n_images})", value)
    return value


def _sanity(f: Fields | None, n_images: int) -> Sanity | None:
    if f is None or not f.data:
        return None
    methods: dict[str, dict[str, SanityEntry]] = {}
    for method, entries in f.mapping("methods", {}).items():
        methods[method] = {
            model: SanityEntry(Stat.from_fields(e.obj("spearman")), Stat.from_fields(e.obj("pearson")),
                               Stat.from_fields(e.obj("iou")), e.opt_flag("passed"))
            for model, e in entries.children().items()
        }
    return Sanity(f.integer("n", 0, minimum=0), _rows(f, n_images), methods)


def _faithfulness(f: Fields | None, n_images: int) -> Faithfulness | None:
    if f is None or not f.data:
        return None
    models = {model: {key: Stat.from_fields(m.obj(key)) for key in ("deletion_auc", "insertion_auc") if m.has(key)}
              for model, m in f.mapping("models", {}).items()}
    return Faithfulness(f.integer("n", 0, minimum=0), f.integer("steps", 0, minimum=0), _rows(f, n_images), models)
