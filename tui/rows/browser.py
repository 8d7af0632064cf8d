"""The image browser's model: one analysis opened through the validating readers, the image
list's filters and order, which analyses are siblings, and the cache of built cards.

No widgets here: the screen shows what these compute."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
from rich.text import Text

from engine.api.analyses import AnalysisFiles, AnalysisInfo
from engine.api.catalogue import MAP_METRICS, METRIC_SHORT, OUTCOME_SPLITS
from engine.api.display import shorten_all
from engine.api.results import AnalysisResults

OUTCOMES: tuple[str | None, ...] = (None, *OUTCOME_SPLITS)
SORTS = ("index", "least similar", "most similar", "least confident teacher")
#: per-image columns of the metrics table under the cards: (per_image key, title)
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (*((m, METRIC_SHORT[m]) for m in MAP_METRICS), ("output_kl", "out KL"))
#: what each CAM target explains, in words
TARGET_WORDS = {"label": "true class", "own": "predicted class", "teacher": "teacher's prediction"}


@dataclass
class LoadedAnalysis:
    """Everything the browser shows of one analysis; arrays are memory-mapped, and were checked
    (dtype, shape, length) when the analysis was opened, so showing a row cannot fail."""

    info: AnalysisInfo
    results: AnalysisResults
    per_image: dict[str, np.ndarray]
    images: np.ndarray
    maps: dict[str, np.ndarray]
    models: list[str]
    students: list[str]
    class_names: tuple[str, ...]
    # model -> {image row: row in diagnosis/<model>_{true,pred}.npy}
    diagnosis_rows: dict[str, dict[int, int]] = field(default_factory=dict)
    diagnosis_maps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> {"true"|"pred": maps}

    @property
    def target(self) -> str:
        return self.results.cam.target

    @property
    def method(self) -> str:
        return self.results.cam.method

    def class_name(self, k: int | None) -> str:
        if k is None:
            return "all"
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)


def load_analysis(workspace: Path, info: AnalysisInfo) -> LoadedAnalysis:
    """Open one analysis (worker thread). Every file the browser will show is validated here,
    so a truncated or forged file raises ``KdcamError`` now, not while a key is handled."""
    files = AnalysisFiles.open(workspace, info.id)
    models = files.model_names
    diagnosis_rows: dict[str, dict[int, int]] = {}
    diagnosis_maps: dict[str, dict[str, np.ndarray]] = {}
    for model in models:
        diagnosis = files.results.diagnosis.get(model)
        rows = {w.image: w.row for items in diagnosis.worst_errors.values() for w in items} if diagnosis else {}
        true_maps = files.extra_maps("diagnosis_true", model)
        pred_maps = files.extra_maps("diagnosis_pred", model)
        if rows and true_maps is not None and pred_maps is not None:
            diagnosis_rows[model] = {image: row for image, row in rows.items()
                                     if row < min(len(true_maps), len(pred_maps))}
            diagnosis_maps[model] = {"true": true_maps, "pred": pred_maps}
    return LoadedAnalysis(
        info=info, results=files.results, per_image=files.per_image, images=files.images,
        maps={m: files.maps(m) for m in models}, models=models, students=files.student_names,
        class_names=files.class_names, diagnosis_rows=diagnosis_rows, diagnosis_maps=diagnosis_maps,
    )


def outcome_of(data: LoadedAnalysis, student: int, row: int) -> str:
    """Who was right on image ``row``: the split names of the results schema."""
    labels, preds = data.per_image["labels"], data.per_image["preds"]
    teacher_right = preds[0, row] == labels[row]
    student_right = preds[1 + student, row] == labels[row]
    if teacher_right and student_right:
        return "both_correct"
    if teacher_right:
        return "teacher_only"
    return "student_only" if student_right else "both_wrong"


@dataclass(frozen=True)
class Filters:
    """Which images the list shows, and in what order; each key of the screen makes a new one."""

    student: int = 0  # index into the analysis's students (whose similarity sorts and marks the list)
    class_filter: int | None = None
    outcome: str | None = None
    degenerate_only: bool = False
    sort: str = SORTS[0]

    def for_analysis(self, data: LoadedAnalysis) -> Filters:
        """The same filters, with the student index kept inside the analysis's students."""
        return replace(self, student=min(self.student, max(0, len(data.students) - 1)))

    def next_class(self, num_classes: int) -> Filters:
        options: list[int | None] = [None, *range(num_classes)]
        current = self.class_filter if self.class_filter in options else None
        return replace(self, class_filter=options[(options.index(current) + 1) % len(options)])

    def next_outcome(self) -> Filters:
        return replace(self, outcome=OUTCOMES[(OUTCOMES.index(self.outcome) + 1) % len(OUTCOMES)])

    def toggled_degenerate(self) -> Filters:
        return replace(self, degenerate_only=not self.degenerate_only)

    def next_sort(self) -> Filters:
        return replace(self, sort=SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def next_student(self, step: int, count: int) -> Filters:
        return replace(self, student=(self.student + step) % count) if count else self

    def rows(self, data: LoadedAnalysis) -> list[int]:
        return visible_rows(data, self.student, self.class_filter, self.outcome, self.degenerate_only, self.sort)

    def describe(self, data: LoadedAnalysis, shown: int, width: int) -> Text:
        """Three lines of at most ``width`` characters where names allow: the student (shortened against
        the others), the order, the filters. Text, not markup: class names are free text from results.json."""
        student = shorten_all(data.students, width - len("student "))[data.students[self.student]] \
            if data.students else "—"
        return Text.assemble("student ", (student, "bold"), "\n",
                             f"sort {self.sort} · {shown}/{len(data.per_image['labels'])} shown\n",
                             f"class {data.class_name(self.class_filter)} · ",
                             f"who {(self.outcome or 'all').replace('_', ' ')}"
                             f"{' · degenerate' if self.degenerate_only else ''}")


def visible_rows(data: LoadedAnalysis, student: int, class_filter: int | None, outcome: str | None,
                 degenerate_only: bool, sort: str) -> list[int]:
    """Image rows passing the filters, in the chosen order (ties by row)."""
    labels = data.per_image["labels"]
    rows = np.arange(len(labels))
    if class_filter is not None:
        rows = rows[labels[rows] == class_filter]
    if degenerate_only:
        rows = rows[data.per_image["degenerate"][:, rows].any(axis=0)]
    if outcome is not None:
        rows = np.array([r for r in rows if outcome_of(data, student, int(r)) == outcome], dtype=np.int64)
    if sort in ("least similar", "most similar") and data.students:
        pearson = data.per_image["pearson"][student, rows].astype(np.float64)
        key = np.where(np.isnan(pearson), np.inf, pearson if sort == "least similar" else -pearson)
        rows = rows[np.argsort(key, kind="stable")]
    elif sort == "least confident teacher":
        rows = rows[np.argsort(data.per_image["confidences"][0, rows], kind="stable")]
    return [int(r) for r in rows]


def siblings(analyses: Sequence[AnalysisInfo], info: AnalysisInfo, same: str) -> list[AnalysisInfo]:
    """Analyses of the same models and images as ``info`` that share ``same`` (method or target)."""
    return [a for a in analyses
            if a.teacher == info.teacher and a.students == info.students and a.dataset == info.dataset
            and a.n == info.n and getattr(a, same) == getattr(info, same)]


def other_target(target: str) -> str:
    """The target ``t`` flips to: true class <-> predicted class."""
    return {"label": "own", "own": "label"}.get(target, "label")


def target_label(target: str, showing_other: bool) -> str:
    if showing_other:
        return ("predicted class" if target == "label" else "true class") + " (where computed)"
    return TARGET_WORDS.get(target, target)


#: a card's cells: its width, the gap to the next, the picture's rows (full size, compact), the caption's
CARD_WIDTH = 19
CARD_GAP = 1
PICTURE_ROWS = (10, 7)
CAPTION_ROWS = 3
#: the line that says which models a page shows, when they do not all fit
PAGE_ROWS = 1


@dataclass(frozen=True)
class PanelLayout:
    """The cards of one image in the room beside the list, every one whole: full size when all of
    them fit so, else compact; paged when not even compact cards all fit, the original on every page
    (a map is read against it)."""

    columns: int
    rows: int
    picture_rows: int
    models: int

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def paged(self) -> bool:
        return self.per_page < 1 + self.models

    @property
    def height(self) -> int:
        """Rows the cards take, with the page line."""
        return self.rows * (self.picture_rows + CAPTION_ROWS) + (PAGE_ROWS if self.paged else 0)

    @property
    def cards(self) -> int:
        """Card widgets a page needs."""
        return min(self.per_page, 1 + self.models)

    @property
    def pages(self) -> int:
        if not self.paged:
            return 1
        if self.per_page == 1:  # room for one card: the original is a page of its own
            return 1 + self.models
        return -(-self.models // (self.per_page - 1))

    def shown(self, page: int) -> list[int | None]:
        """The panels of ``page``: None for the original, else a model's index."""
        if not self.paged:
            return [None, *range(self.models)]
        if self.per_page == 1:
            return [None] if page == 0 else [page - 1]
        step = self.per_page - 1
        return [None, *range(page * step, min(self.models, (page + 1) * step))]


def panel_layout(width: int, height: int, models: int) -> PanelLayout:
    """The layout of ``models`` cards and the original in ``width`` x ``height`` cells."""
    # a gap after every card, the last too: an inline image must not touch the terminal's right edge,
    # where the cursor cannot go past it (Kitty and Sixel pictures are placed from the cursor)
    columns = max(1, width // (CARD_WIDTH + CARD_GAP))
    needed = -(-(1 + models) // columns)
    for picture in PICTURE_ROWS:
        if height // (picture + CAPTION_ROWS) >= needed:
            return PanelLayout(columns, needed, picture, models)
    compact = PICTURE_ROWS[-1] + CAPTION_ROWS
    return PanelLayout(columns, max(1, (height - PAGE_ROWS) // compact), PICTURE_ROWS[-1], models)


K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """The most recently used ``size`` values by key (built cards: moving back and forth re-uses them)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, build: Callable[[], V]) -> V:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
            return value
        value = build()
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
