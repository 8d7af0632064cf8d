"""From per-image numbers to the ``models`` and ``pairs`` sections of ``results.json``.

Every mean with a confidence interval is registered with a ``StatBatch`` first and filled in
by one bootstrap pass at the end (see ``bootstrap.py``): the whole analysis shares one set of
resamples of its images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analysis.bootstrap import bootstrap_stats
from engine.analysis.collect import PerImage
from engine.analysis.inputs import AnalysisInputs
from engine.analysis.metrics import PAIR_METRICS
from engine.api.bands import BANDED, band, band_score, overall_band, overall_score
from engine.api.results import PAIR_DIFFERENCES

SPLITS = ("both_correct", "teacher_only", "student_only", "both_wrong")


class StatRef(dict):
    """A placeholder in the results tree, replaced by the stat of row ``index``."""

    def __init__(self, index: int, **extra: Any):
        super().__init__(extra)
        self.index = index


class StatBatch:
    """Collects value vectors (all of the analysis' length N, NaN = not counted), resolves them at once."""

    def __init__(self, n: int):
        self.n = n
        self._rows: list[np.ndarray] = []

    def add(self, values: np.ndarray, **extra: Any) -> StatRef:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n,):
            raise ValueError(f"stat values must have shape ({self.n},), got {values.shape}")
        self._rows.append(values)
        return StatRef(len(self._rows) - 1, **extra)

    def add_at(self, rows: np.ndarray, values: np.ndarray, **extra: Any) -> StatRef:
        """Values measured on a subset of the analysed images (``rows``)."""
        full = np.full(self.n, np.nan)
        full[rows] = values
        return self.add(full, **extra)

    def resolve(self, tree: Any, resamples: int, seed: int) -> Any:
        """``tree`` with every ``StatRef`` replaced by ``{mean, ci_low, ci_high, n, **extra}``."""
        stats = bootstrap_stats(np.stack(self._rows), resamples, seed) if self._rows else []

        def fill(node: Any) -> Any:
            if isinstance(node, StatRef):
                return {**stats[node.index].to_dict(), **node}
            if isinstance(node, dict):
                return {key: fill(value) for key, value in node.items()}
            if isinstance(node, list):
                return [fill(value) for value in node]
            return node

        return fill(tree)


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _model_values(per_image: PerImage, i: int, has_masks: bool) -> dict[str, np.ndarray]:
    """Model ``i``'s per-image numbers that a baseline comparison covers (those the dataset allows)."""
    values = {"accuracy": per_image.correct[i].astype(np.float64)}
    if has_masks:
        values["pointing_game"] = per_image.pointing_game[i]
        values["energy_in_mask"] = per_image.energy_in_mask[i]
    for name in ("energy_on_distractors", "energy_on_cue"):
        array = getattr(per_image, name)
        if array is not None:
            values[name] = array[i]
    if per_image.cue_labels is not None:
        values["follows_cue"] = (per_image.preds[i] == per_image.cue_labels).astype(np.float64)
    return values


def paired_differences(values: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                       stats: StatBatch) -> dict[str, StatRef]:
    """Per-image ``value - reference`` of every shared key, as stats: the mean difference over the
    images where both are defined, and its 95% paired-bootstrap interval (the analysis' resamples)."""
    return {name: stats.add(np.asarray(values[name], np.float64) - np.asarray(reference[name], np.float64))
            for name in values if name in reference}


def model_entries(inputs: AnalysisInputs, per_image: PerImage, stats: StatBatch) -> list[dict[str, Any]]:
    has_masks = inputs.imageset.masks is not None
    baseline = None if inputs.baseline is None else inputs.baseline + 1  # index among models
    reference = _model_values(per_image, baseline, has_masks) if baseline is not None else None
    entries = []
    for i, am in enumerate(inputs.models):
        meta = am.meta
        mask: dict[str, Any] | None = None
        if has_masks:
            mask = {"pointing_game": stats.add(per_image.pointing_game[i]),
                    "energy_in_mask": stats.add(per_image.energy_in_mask[i])}
            for name in ("energy_on_distractors", "energy_on_cue"):
                array = getattr(per_image, name)
                if array is not None:
                    mask[name] = stats.add(array[i])
        entry = {
            "name": am.name, "role": am.role, "arch": meta.arch, "width": meta.width, "params": meta.params,
            "method": meta.method_label, "tap": am.tap, "checkpoint_accuracy": meta.accuracy,
            "accuracy": stats.add(per_image.correct[i]),
            "mean_confidence": float(per_image.confidences[i].mean()),
            "degenerate": int(per_image.degenerate[i].sum()),
            "mask": mask,
        }
        if per_image.cue_labels is not None:  # how often the prediction is the class the cue names
            entry["follows_cue"] = stats.add(per_image.preds[i] == per_image.cue_labels)
        if reference is not None and i != baseline:
            entry["vs_baseline"] = paired_differences(_model_values(per_image, i, has_masks), reference, stats)
        entries.append(entry)
    return entries


def pair_entries(inputs: AnalysisInputs, per_image: PerImage, stats: StatBatch) -> list[dict[str, Any]]:
    teacher_correct = per_image.correct[0]
    teacher_degenerate = per_image.degenerate[0]
    b = inputs.baseline
    reference = {name: per_image.pair[name][b] for name in PAIR_DIFFERENCES} if b is not None else None
    entries = []
    for s, am in enumerate(inputs.students):
        student_correct = per_image.correct[s + 1]
        student_degenerate = per_image.degenerate[s + 1]
        means = {name: _mean(per_image.pair[name][s]) for name in PAIR_METRICS}
        metric_stats = {
            name: stats.add(per_image.pair[name][s], band=band(name, means[name]))
            if name in BANDED else stats.add(per_image.pair[name][s])
            for name in PAIR_METRICS
        }
        groups = {
            "both_correct": teacher_correct & student_correct,
            "teacher_only": teacher_correct & ~student_correct,
            "student_only": ~teacher_correct & student_correct,
            "both_wrong": ~teacher_correct & ~student_correct,
        }
        splits = {
            split: {
                "n": int(member.sum()),
                "metrics": {name: stats.add(np.where(member, per_image.pair[name][s], np.nan))
                            for name in PAIR_METRICS},
            }
            for split, member in groups.items()
        }
        entry = {
            "teacher": inputs.teacher.name, "student": am.name, "method": am.meta.method_label,
            "agreement": stats.add(per_image.pair["agreement"][s]),
            "output_kl": stats.add(per_image.pair["output_kl"][s]),
            "degenerate": {"teacher": int(teacher_degenerate.sum()), "student": int(student_degenerate.sum()),
                           "either": int((teacher_degenerate | student_degenerate).sum())},
            "n_valid": int((~(teacher_degenerate | student_degenerate)).sum()),
            "metrics": metric_stats,
            "band": overall_band(means),
            "band_score": overall_score(means),
            "band_scores": {name: band_score(name, means[name]) for name in BANDED},
            "splits": splits,
        }
        if reference is not None and s != b:
            entry["vs_baseline"] = paired_differences({name: per_image.pair[name][s] for name in PAIR_DIFFERENCES},
                                                      reference, stats)
        entries.append(entry)
    return entries


def attention_entries(per_image: PerImage, stats: StatBatch) -> dict[str, Any]:
    return {
        name: {"n": int(np.isfinite(values["pearson"]).sum()),
               "pearson": stats.add(values["pearson"]), "peak_distance": stats.add(values["peak_distance"])}
        for name, values in per_image.attention.items()
    }
