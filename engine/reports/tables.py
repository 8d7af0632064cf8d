"""The report's tables as rows (header + values), written to CSV and shown in report.html.

Numbers are written as the shortest text that reads back as exactly the value in results.json /
per_image.npz, so a spreadsheet, a script and the tests all see the analysis's numbers, not a
rounding of them. A value computed in float32 is written as the shortest text of that float32
(``0.701``, not its float64 widening ``0.7009999752044678``): read back as float32 it is exactly
the value. Missing values (null / NaN) are empty cells.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from engine.api.catalogue import BANDED_METRICS, MAP_METRICS
from engine.api.results import Stat
from engine.reports.source import AnalysisSource

Row = list[Any]
#: per_image.csv's per-pair columns: every map metric, then the per-image output KL
PER_IMAGE_METRICS = (*MAP_METRICS, "output_kl")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def exact(value: Any) -> str:
    """A cell: integers as integers, floats round-trip exactly, null/NaN as empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return ""
        if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            return repr(number)
        single = np.float32(number)
        return str(single) if float(single) == number else repr(number)
    return str(value)


def float32_cells(values: np.ndarray) -> list[str]:
    """A float32 column as cells in one vectorised step (NumPy's shortest round-trip text), NaN empty."""
    cells: list[str] = np.asarray(values, dtype=np.float32).astype(str).tolist()
    return ["" if cell == "nan" else cell for cell in cells]


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([exact(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def _stat_cells(stat: Stat | None) -> Row:
    if stat is None:
        return [None, None, None]
    return [stat.mean, stat.ci_low, stat.ci_high]


def leaderboard(source: AnalysisSource) -> tuple[list[str], list[Row]]:
    """One row per student: overall band, accuracy, agreement, output KL, each metric with its interval."""
    header = ["student", "method", "band", "band_score", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
              "agreement", "agreement_ci_low", "agreement_ci_high",
              "output_kl", "output_kl_ci_low", "output_kl_ci_high", "n_valid", "degenerate_either"]
    for metric in MAP_METRICS:
        header += [metric, f"{metric}_ci_low", f"{metric}_ci_high"]
        if metric in BANDED_METRICS:
            header.append(f"{metric}_band")
    rows = []
    for pair in source.pairs:
        student = source.model_entry(pair.student)
        row: Row = [pair.student, pair.method, pair.band, pair.band_score]
        row += _stat_cells(student.accuracy)
        row += _stat_cells(pair.agreement)
        row += _stat_cells(pair.output_kl)
        row += [pair.n_valid, pair.degenerate.get("either")]
        for metric in MAP_METRICS:
            entry = pair.metrics.get(metric)
            row += _stat_cells(entry)
            if metric in BANDED_METRICS:
                row.append(entry.band if entry else None)
        rows.append(row)
    return header, rows


def per_image(source: AnalysisSource) -> tuple[list[str], list[Row]]:
    """One row per analysed image: which image, its label, what every model said, every pair metric."""
    data = source.per_image
    names = source.class_names
    header = ["row", "index", "label", "label_name"]
    for model in source.model_names:
        header += [f"{model}_pred", f"{model}_pred_name", f"{model}_confidence", f"{model}_correct"]
    for student in source.student_names:
        header += [f"{student}_{metric}" for metric in PER_IMAGE_METRICS]
    # Columns become Python lists first: indexing numpy scalars cell by cell is ten times slower.
    columns = [np.arange(source.n).tolist(), data["indices"].tolist(), data["labels"].tolist(),
               [names[k] for k in data["labels"]]]
    for m in range(len(source.model_names)):
        preds = data["preds"][m]
        columns += [preds.tolist(), [names[k] for k in preds], _floats(data["confidences"][m]),
                    (preds == data["labels"]).astype(int).tolist()]
    columns += [_floats(data[metric][s]) for s in range(len(source.student_names))
                for metric in PER_IMAGE_METRICS]
    rows = [list(row) for row in zip(*columns, strict=True)]
    return header, rows


def _floats(values: np.ndarray) -> list[Any]:
    """float32 columns as their shortest text; wider floats stay numbers (``exact`` writes them)."""
    return float32_cells(values) if values.dtype == np.float32 else values.tolist()


def per_class_accuracy(source: AnalysisSource) -> tuple[list[str], list[Row]]:
    """Long format: one row per model and class (accuracy, and pointing game where masks exist)."""
    header = ["model", "role", "class", "class_name", "n", "accuracy", "pointing_game"]
    rows = []
    for model in source.model_names:
        role = source.model_entry(model).role
        for entry in source.results.diagnosis[model].per_class:
            rows.append([model, role, entry.cls, entry.name, entry.n, entry.accuracy, entry.pointing_game])
    return header, rows


def confused_pairs(source: AnalysisSource) -> tuple[list[str], list[Row]]:
    """Every model's most frequent (true → predicted) confusions, most frequent first."""
    header = ["model", "rank", "true", "true_name", "predicted", "predicted_name", "count", "rate", "related"]
    rows = []
    for model in source.model_names:
        for rank, pair in enumerate(source.results.diagnosis[model].confused_pairs, start=1):
            rows.append([model, rank, pair.true, source.class_name(pair.true), pair.predicted,
                         source.class_name(pair.predicted), pair.count, pair.rate, pair.related])
    return header, rows


CSV_TABLES = {
    "leaderboard.csv": leaderboard,
    "per_image.csv": per_image,
    "per_class_accuracy.csv": per_class_accuracy,
    "confused_pairs.csv": confused_pairs,
}
