"""Which figures a report holds and what goes into each: example selection plus figure plans.

``plan_figures`` returns one ``FigureTask`` per PNG, each drawing lazily, so the export job can
report progress and honour cancellation between figures. Example images are chosen from the
per-image metrics: the most and least similar images (mean Pearson over students) and a random
sample seeded by the analysis seed, so re-exporting an analysis gives the same report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from engine.api.catalogue import BANDED_METRICS
from engine.api.display import shorten_all
from engine.reports import figures
from engine.reports.source import AnalysisSource

WORST_PER_CLASS = 2  # worst errors shown per class on a model's diagnosis sheet
WORST_CLASSES = 20  # classes per sheet (the lowest accuracies): CIFAR-100 would otherwise be 100 rows
TOP_CONFUSED = 10
GRID_NAME_WIDTH = 22  # model names in CAM grid captions, shortened from the middle
CONFUSED_ROWS, CONFUSED_EXAMPLES = 5, 3  # the examples sheet: top pairs, images per pair


@dataclass(frozen=True)
class FigureTask:
    """A PNG of the report: its file name (under the export folder), what it shows, how to draw it."""

    filename: str
    title: str
    group: str  # grids | metrics | confusion | diagnosis | pairs | training
    draw: Callable[[], bytes]


@dataclass(frozen=True)
class ExampleSets:
    """Rows of images.npy chosen for the CAM grids."""

    most_similar: list[int]
    least_similar: list[int]
    random_sample: list[int]


def image_similarity(source: AnalysisSource) -> np.ndarray:
    """Mean teacher-vs-student Pearson per image (NaN where no student has a valid map)."""
    pearson = np.asarray(source.per_image["pearson"], dtype=np.float64)
    valid = ~np.isnan(pearson)
    counts = valid.sum(axis=0)
    sums = np.where(valid, pearson, 0.0).sum(axis=0)
    similarity: np.ndarray = np.divide(sums, counts, out=np.full(pearson.shape[1], np.nan), where=counts > 0)
    return similarity


def choose_examples(source: AnalysisSource, k: int) -> ExampleSets:
    similarity = image_similarity(source)
    scored = np.flatnonzero(~np.isnan(similarity))
    order = scored[np.argsort(similarity[scored], kind="stable")]
    seed = source.spec.get("seed", 0)
    rng = np.random.default_rng(seed if isinstance(seed, int) and not isinstance(seed, bool) else 0)
    sample = np.sort(rng.choice(source.n, size=min(k, source.n), replace=False)) if source.n else np.array([], int)
    return ExampleSets(
        most_similar=order[::-1][:k].tolist(),
        least_similar=order[:k].tolist(),
        random_sample=sample.tolist(),
    )


def _grid_rows(source: AnalysisSource, rows: list[int]) -> list[figures.GridRow]:
    data = source.per_image
    images = source.images
    short = shorten_all(list(source.model_names), GRID_NAME_WIDTH)  # captions set the column widths
    grid = []
    for i in rows:
        label = int(data["labels"][i])
        panels = []
        for m, model in enumerate(source.model_names):
            pred = int(data["preds"][m, i])
            panels.append(figures.Panel(cam=np.asarray(source.maps(model)[i]), model=short[model],
                                        predicted=source.class_name(pred),
                                        confidence=float(data["confidences"][m, i]), correct=pred == label))
        caption = f"#{int(data['indices'][i])} {source.class_name(label)}"
        grid.append(figures.GridRow(image=np.asarray(images[i]), caption=caption, panels=panels))
    return grid


def _metric_bars(source: AnalysisSource, metric: str) -> list[figures.IntervalBar]:
    bars = []
    short = shorten_all([p.student for p in source.pairs], 32)
    for pair in source.pairs:
        stat = pair.metrics[metric]
        if stat.mean is None or stat.ci_low is None or stat.ci_high is None:
            continue
        bars.append(figures.IntervalBar(label=short[pair.student], mean=stat.mean, low=stat.ci_low, high=stat.ci_high,
                                        band=stat.band))
    return bars


def _worst_items(source: AnalysisSource, model: str) -> list[figures.WorstItem]:
    """The model's worst errors (highest-confidence misclassifications), worst classes first."""
    diagnosis = source.results.diagnosis[model]
    # classes with errors have images, hence an accuracy; the defaults only guard a hand-edited file
    accuracy = {entry.cls: entry.accuracy for entry in diagnosis.per_class if entry.accuracy is not None}
    true_maps = source.diagnosis_maps(model, "true")
    pred_maps = source.diagnosis_maps(model, "pred")
    images = source.images
    groups = sorted(diagnosis.worst_errors.items(), key=lambda g: (accuracy.get(g[0], 1.0), g[0]))
    items = []
    groups = groups[:WORST_CLASSES]
    for cls, errors in groups:
        for entry in errors[:WORST_PER_CLASS]:
            row = entry.row
            caption = (f"{source.class_name(cls)}\n→ {source.class_name(entry.predicted)} "
                       f"{entry.confidence:.0%}\nclass accuracy {accuracy.get(cls, float('nan')):.0%}")
            items.append(figures.WorstItem(
                image=np.asarray(images[entry.image]), caption=caption,
                true_label=source.class_name(cls), predicted_label=source.class_name(entry.predicted),
                true_cam=None if true_maps is None else np.asarray(true_maps[row]),
                predicted_cam=None if pred_maps is None else np.asarray(pred_maps[row]),
                correct=False,
            ))
    return items


def _confused(source: AnalysisSource, model: str) -> list[tuple[str, str, int]]:
    pairs = source.results.diagnosis[model].confused_pairs[:TOP_CONFUSED]
    return [(source.class_name(p.true), source.class_name(p.predicted), p.count) for p in pairs]


def _confused_examples(source: AnalysisSource, model: str) -> list[tuple[str, list[figures.ConfusedExample]]]:
    """For the model's most frequent confusions, its most confident examples of each, with its maps."""
    data = source.per_image
    m = source.model_row(model)
    maps, images = source.maps(model), source.images
    sheet = []
    for pair in source.results.diagnosis[model].confused_pairs[:CONFUSED_ROWS]:
        rows = np.flatnonzero((data["labels"] == pair.true) & (data["preds"][m] == pair.predicted))
        rows = rows[np.argsort(-data["confidences"][m][rows], kind="stable")][:CONFUSED_EXAMPLES]
        if len(rows) == 0:
            continue
        label = f"{source.class_name(pair.true)} → {source.class_name(pair.predicted)} ×{pair.count}"
        sheet.append((label, [figures.ConfusedExample(np.asarray(images[i]), np.asarray(maps[i]),
                                                      float(data["confidences"][m, i])) for i in rows]))
    return sheet


def _draw_grid(source: AnalysisSource, rows: list[int], title: str) -> bytes:
    return figures.cam_grid(_grid_rows(source, rows), title)


def _draw_confusion(source: AnalysisSource, model: str) -> bytes:
    d = source.results.diagnosis[model]
    return figures.confusion_matrix(np.asarray(d.confusion), source.class_names,
                                    f"{model}: confusion matrix (accuracy {d.accuracy:.1%})")


def _draw_worst(source: AnalysisSource, model: str) -> bytes:
    k = len(source.results.diagnosis[model].worst_errors)
    return figures.worst_predictions_sheet(
        f"{model}: most confident errors per class (worst classes first"
        + (f", {WORST_CLASSES} of {k} classes)" if k > WORST_CLASSES else ")"), _worst_items(source, model))


def _draw_confused_chart(source: AnalysisSource, model: str) -> bytes:
    return figures.confused_pairs_chart(_confused(source, model), f"{model}: most confused pairs")


def _draw_confused_sheet(source: AnalysisSource, model: str) -> bytes:
    return figures.confused_pairs_sheet(
        f"{model}: most confused pairs (true → predicted ×count), most confident examples and {model}'s maps",
        _confused_examples(source, model))


def plan_figures(source: AnalysisSource, examples: int) -> list[FigureTask]:
    """Every PNG of the report, in the order they are drawn and shown."""
    tasks: list[FigureTask] = []
    chosen = choose_examples(source, examples)
    for key, title in (("most_similar", "Most similar maps"), ("least_similar", "Least similar maps"),
                       ("random_sample", "Random sample")):
        rows = getattr(chosen, key)
        if rows:
            full_title = f"{title} — original | teacher | students (✓ right, ✗ wrong)"
            tasks.append(FigureTask(f"grid_{key}.png", title, "grids", partial(_draw_grid, source, rows, full_title)))
    for metric in BANDED_METRICS:
        bars = _metric_bars(source, metric)
        if bars:
            tasks.append(FigureTask(f"metric_{metric}.png", metric, "metrics",
                                    partial(figures.metric_chart, metric, bars)))
    for model in source.model_names:
        diagnosis = source.results.diagnosis[model]
        tasks.append(FigureTask(f"confusion_{model}.png", f"Confusion matrix — {model}", "confusion",
                                partial(_draw_confusion, source, model)))
        if any(diagnosis.worst_errors.values()):
            tasks.append(FigureTask(f"worst_{model}.png", f"Worst predictions per class — {model}", "diagnosis",
                                    partial(_draw_worst, source, model)))
        if diagnosis.confused_pairs:
            tasks.append(FigureTask(f"confused_pairs_{model}.png", f"Most confused pairs — {model}", "pairs",
                                    partial(_draw_confused_chart, source, model)))
            tasks.append(FigureTask(f"confused_examples_{model}.png", f"Most confused pairs, examples — {model}",
                                    "pairs", partial(_draw_confused_sheet, source, model)))
    curves = source.run_curves()
    if curves:
        tasks.append(FigureTask("training_curves.png", "Training curves", "training",
                                partial(figures.training_curves, curves, "Training runs of these checkpoints",
                                        shorten_all(list(curves), 32))))
    return tasks
