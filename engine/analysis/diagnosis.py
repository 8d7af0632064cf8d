"""Per-class diagnosis of one model: where it fails, how sure it was, and what to do about it.

Pure numpy on the per-image numbers of an analysis (labels, predictions, confidences, mask
metrics). The written summary is rule-based: each rule looks at one pattern (confusions
between related classes, maps off the object on errors, over-confident errors, weak
classes) and, when it fires, states the evidence and a recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CONFUSED_PAIRS = 10  # most-confused pairs listed
OVERCONFIDENT = 0.9  # an error this sure is worth a look (label noise or shortcut)
LOW_CONFIDENCE = 0.5  # a correct prediction below this is borderline
OFF_OBJECT_GAP = 0.1  # energy-in-mask drop on errors that counts as "looking elsewhere"


@dataclass
class ModelOutcomes:
    """What the diagnosis needs of one model, per analysed image."""

    labels: np.ndarray
    preds: np.ndarray
    confidences: np.ndarray
    true_probs: np.ndarray
    energy_in_mask: np.ndarray  # NaN without masks
    pointing_game: np.ndarray


def related(a: str, b: str, superclasses: dict[str, str] | None = None) -> str | None:
    """What two class names have in common: a shared superclass, or a shared part of a
    compound name (``circle/solid`` and ``octagon/solid`` share ``solid``); else None."""
    if superclasses and a in superclasses and superclasses.get(a) == superclasses.get(b):
        return superclasses[a]
    shared = [part for part in a.split("/") if part in b.split("/")] if "/" in a and "/" in b else []
    return shared[0] if shared else None


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def _ranked_per_class(labels: np.ndarray, eligible: np.ndarray, key: np.ndarray, k: int) -> dict[int, np.ndarray]:
    """Per class, the first ``k`` eligible images in increasing ``key`` order (one sort, no image loop)."""
    candidates = np.flatnonzero(eligible)
    order = candidates[np.lexsort((key[candidates], labels[candidates]))]
    classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    return {int(c): order[start:start + min(k, count)] for c, start, count in zip(classes, starts, counts, strict=True)}


def diagnose(outcomes: ModelOutcomes, class_names: list[str], worst_per_class: int,
             superclasses: dict[str, str] | None = None) -> dict[str, Any]:
    """The diagnosis section of one model (see docs/RESULTS_SCHEMA.md); ``worst_errors`` rows
    number the images whose true- and predicted-class maps the caller stores."""
    o = outcomes
    num_classes = len(class_names)
    correct = o.preds == o.labels
    confusion = confusion_matrix(o.labels, o.preds, num_classes)
    per_class_n = confusion.sum(axis=1)
    per_class_accuracy = np.divide(np.diag(confusion), per_class_n, out=np.full(num_classes, np.nan),
                                   where=per_class_n > 0)
    per_class = []
    for c in range(num_classes):
        members = o.labels == c
        pointing = o.pointing_game[members]
        per_class.append({
            "class": c, "name": class_names[c], "n": int(per_class_n[c]),
            "accuracy": _float(per_class_accuracy[c]),
            "pointing_game": _float(np.nanmean(pointing)) if np.isfinite(pointing).any() else None,
        })

    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    flat_order = np.argsort(-off_diagonal, axis=None, kind="stable")[:CONFUSED_PAIRS]
    confused_pairs = []
    for flat in flat_order:
        t, p = divmod(int(flat), num_classes)
        if off_diagonal[t, p] == 0:
            break
        confused_pairs.append({"true": t, "predicted": p, "count": int(off_diagonal[t, p]),
                               "rate": float(off_diagonal[t, p] / per_class_n[t]),
                               "related": related(class_names[t], class_names[p], superclasses)})

    worst = _ranked_per_class(o.labels, ~correct, -o.confidences, worst_per_class)
    unsure = _ranked_per_class(o.labels, correct, o.confidences, worst_per_class)
    worst_errors, row = [], 0
    for c, images in worst.items():
        items = []
        for image in images:
            items.append({"row": row, "image": int(image), "predicted": int(o.preds[image]),
                          "confidence": float(o.confidences[image]), "true_prob": float(o.true_probs[image]),
                          "energy_in_mask": _float(o.energy_in_mask[image])})
            row += 1
        worst_errors.append({"class": c, "items": items})
    low_confidence = [{"class": c, "items": [{"image": int(i), "confidence": float(o.confidences[i])}
                                             for i in images if o.confidences[i] < LOW_CONFIDENCE]}
                      for c, images in unsure.items()]
    low_confidence = [entry for entry in low_confidence if entry["items"]]

    relatedness = np.array([[related(a, b, superclasses) is not None for b in class_names] for a in class_names])
    summary, recommendations = _written_summary(o, class_names, correct, per_class_accuracy, confused_pairs,
                                                relatedness)
    return {
        "accuracy": float(correct.mean()),
        "confusion": confusion.tolist(),
        "per_class": per_class,
        "confused_pairs": confused_pairs,
        "worst_errors": worst_errors,
        "low_confidence_correct": low_confidence,
        "summary": summary,
        "recommendations": recommendations,
    }


def error_images(diagnosis: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, true classes, predicted classes) of the listed errors, in ``row`` order."""
    items = [(item["image"], entry["class"], item["predicted"])
             for entry in diagnosis["worst_errors"] for item in entry["items"]]
    if not items:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    images, true, pred = (np.array(column, dtype=np.int64) for column in zip(*items, strict=True))
    return images, true, pred


def _float(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _written_summary(o: ModelOutcomes, class_names: list[str], correct: np.ndarray, per_class_accuracy: np.ndarray,
                     confused_pairs: list[dict[str, Any]], relatedness: np.ndarray) -> tuple[list[str], list[str]]:
    summary: list[str] = []
    recommendations: list[str] = []
    errors = ~correct
    n_errors = int(errors.sum())
    summary.append(f"Accuracy {_pct(correct.mean())} on {_count(len(correct), 'image')} "
                   f"({_count(n_errors, 'error')}).")
    if n_errors == 0:
        return summary, recommendations

    weak = [c for c in np.argsort(per_class_accuracy) if np.isfinite(per_class_accuracy[c])][:3]
    overall = float(correct.mean())
    weak = [c for c in weak if per_class_accuracy[c] < overall - 0.1]
    if weak:
        summary.append("Weakest classes: " + ", ".join(
            f"{class_names[c]} ({_pct(per_class_accuracy[c])})" for c in weak) + ".")

    if confused_pairs:
        top = confused_pairs[0]
        summary.append(f"Most frequent confusion: {class_names[top['true']]} taken for "
                       f"{class_names[top['predicted']]} ({top['count']} times, {_pct(top['rate'])} of that class).")
        related_share = float(relatedness[o.labels[errors], o.preds[errors]].mean())
        if related_share >= 0.5:
            summary.append(f"{_pct(related_share)} of errors are between related classes "
                           "(a shared superclass, shape or texture): the model has the coarse grouping "
                           "but not the fine distinction.")
            recommendations.append(f"Target the fine distinctions, {class_names[top['true']]} against "
                                   f"{class_names[top['predicted']]} first: train longer or use a stronger student, "
                                   "distil from a teacher that separates these pairs (soft labels carry their "
                                   "similarity), and add or augment examples of the confused pairs.")
        mutual = {(p["true"], p["predicted"]) for p in confused_pairs}
        both_ways = [p for p in confused_pairs if (p["predicted"], p["true"]) in mutual and p["true"] < p["predicted"]]
        if both_ways:
            p = both_ways[0]
            summary.append(f"{class_names[p['true']]} and {class_names[p['predicted']]} are confused in both "
                           "directions: the model may not have a feature that tells them apart.")

    error_energy = o.energy_in_mask[errors]
    hit_energy = o.energy_in_mask[correct]
    if np.isfinite(error_energy).any() and np.isfinite(hit_energy).any():
        on_errors, on_hits = float(np.nanmean(error_energy)), float(np.nanmean(hit_energy))
        if on_hits - on_errors >= OFF_OBJECT_GAP:
            summary.append(f"On errors the map puts {_pct(on_errors)} of its energy on the object, against "
                           f"{_pct(on_hits)} on correct predictions: errors come with attention off the object.")
            off = np.bincount(o.labels[errors & (o.energy_in_mask < on_hits - OFF_OBJECT_GAP)],
                              minlength=len(class_names))
            where = f" (most often on {class_names[int(off.argmax())]} images)" if off.any() else ""
            recommendations.append(f"Reduce reliance on the background{where}: augmentations that change the "
                                   "background (random crops, cutout/random erasing, background swaps) and a check "
                                   "of the data for background cues correlated with labels.")
        pointing = o.pointing_game[correct]
        if np.isfinite(pointing).any() and float(np.nanmean(pointing)) < 0.5:
            summary.append(f"Even on correct predictions the map's peak lies on the object only "
                           f"{_pct(float(np.nanmean(pointing)))} of the time.")
            recommendations.append("Check the CAM layer (an earlier, higher-resolution tap localises better) and "
                                   "whether the model relies on context rather than the object.")

    overconfident = int((errors & (o.confidences >= OVERCONFIDENT)).sum())
    if overconfident:
        summary.append(f"{_count(overconfident, 'error')} ({_pct(overconfident / n_errors)} of errors) made with "
                       f"confidence ≥ {_pct(OVERCONFIDENT)}.")
        sure = errors & (o.confidences >= OVERCONFIDENT)
        worst = int(np.flatnonzero(sure)[np.argmax(o.confidences[sure])])
        recommendations.append(f"Inspect the {_count(overconfident, 'high-confidence error')} for label noise (the "
                               f"surest: a {class_names[int(o.labels[worst])]} taken for "
                               f"{class_names[int(o.preds[worst])]} at {_pct(float(o.confidences[worst]))}); "
                               "if labels are right, label smoothing or distillation with a temperature tempers "
                               "over-confidence.")
    borderline = int((correct & (o.confidences < LOW_CONFIDENCE)).sum())
    if borderline:
        summary.append(f"{_count(borderline, 'correct prediction')} borderline (confidence < {_pct(LOW_CONFIDENCE)}).")
    return summary, recommendations
