"""A synthetic analysis directory written exactly as docs/RESULTS_SCHEMA.md (v1) describes.

Used by the report tests (small) and by ``bench/export.py`` (10,000 images, 7 models) where
running the real pipeline at that size would take the whole benchmark budget. Maps are
blobs whose students drift from the teacher by a per-student amount, so the metrics,
bands and examples vary the way a real analysis does; every number in results.json is
computed from the arrays written beside it. The tests at the bottom check that the
project's own reader accepts what this writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import bands
from engine.api.workspace import Workspace

METRICS = ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance")


def _stat(values: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """A schema "stat". The interval is the normal approximation (the analysis bootstraps; the
    report only shows the numbers, and a bootstrap of 10,000-image columns would dominate the bench)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(values.mean())
    half = 1.96 * float(values.std()) / np.sqrt(len(values)) * (1 + 0.1 * rng.random())
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": int(len(values))}


def _blobs(rng: np.random.Generator, centres: np.ndarray, size: int, spread: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    maps = np.exp(-d2 / (2 * spread**2)).astype(np.float32)
    maps += rng.random(maps.shape, dtype=np.float32) * 0.15
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / (high - low + 1e-7)


def _average_ranks(flat: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank) of maps quantised to 256 levels, from one
    histogram per row: sorting 10,000 x 1,024 values twice per student would dominate the bench."""
    levels = np.round(flat * 255).astype(np.int64)
    n = len(levels)
    counts = np.bincount((levels + 256 * np.arange(n)[:, None]).ravel(), minlength=256 * n).reshape(n, 256)
    below = np.cumsum(counts, axis=1) - counts
    table = below + (counts + 1) / 2.0
    return np.take_along_axis(table, levels, axis=1)


@np.errstate(invalid="ignore", divide="ignore")  # constant maps: NaN, then marked degenerate
def _pair_metrics(t: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    n = len(t)
    tf, sf = t.reshape(n, -1).astype(np.float64), s.reshape(n, -1).astype(np.float64)

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    tb, sb = tf > 0.5, sf > 0.5
    union = (tb | sb).sum(1)
    p = tf / tf.sum(1, keepdims=True)
    q = sf / sf.sum(1, keepdims=True)
    width = t.shape[2]
    tp, sp = tf.argmax(1), sf.argmax(1)
    return {
        "pearson": corr(tf, sf),
        "l2_similarity": 1 - np.sqrt(((tf - sf) ** 2).mean(1)),
        "iou": np.where(union > 0, (tb & sb).sum(1) / np.maximum(union, 1), 1.0),
        "kl": (p * np.log((p + 1e-8) / (q + 1e-8))).sum(1),
        "spearman": corr(_average_ranks(tf), _average_ranks(sf)),
        "peak_distance": np.hypot(tp // width - sp // width, tp % width - sp % width),
    }


def write_synthetic_analysis(workspace: Workspace, analysis_id: str = "synthetic", n: int = 60,
                             students: tuple[str, ...] = ("kd-student", "at-student", "si-student"),
                             num_classes: int = 5, size: int = 32, seed: int = 0,
                             with_diagnosis_maps: bool = True, channels: int = 3,
                             blank_student: bool = False) -> Path:
    """Write ``analyses/<analysis_id>/`` (schema v1) and return its path. ``channels=1`` makes a
    grey dataset without masks (MNIST-like); ``blank_student`` makes the last student's maps all
    degenerate (constant), as an untrained model's can be."""
    rng = np.random.default_rng(seed)
    root = workspace.analyses / analysis_id
    (root / "maps").mkdir(parents=True)
    class_names = [f"shape{k}" for k in range(num_classes)]
    models = ["teacher", *students]
    methods = ["kd", "at", "si", "dkd", "ls", "hints", "crd"]
    labels = rng.integers(0, num_classes, n)
    centres = rng.uniform(6, size - 6, (n, 2))
    images = rng.integers(0, 120, (n, size, size, channels), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    masks = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2 < 25
    images[masks] = np.array([220, 180, 40][:channels], dtype=np.uint8)
    np.save(root / "images.npy", images)
    if channels == 3:
        np.save(root / "masks.npy", masks)

    teacher_map = _blobs(rng, centres, size, 4.0)
    float_maps = {"teacher": teacher_map}
    for s, student in enumerate(students):
        drift = 1.0 + 3.0 * s
        float_maps[student] = _blobs(rng, centres + rng.normal(0, drift, (n, 2)), size, 4.0 + s)
    if blank_student:
        float_maps[students[-1]] = np.zeros_like(teacher_map)
    for model, maps in float_maps.items():
        np.save(root / "maps" / f"{model}.npy", np.round(maps * 255).astype(np.uint8))

    accuracy_of = {model: 0.9 - 0.08 * m for m, model in enumerate(models)}
    preds = np.stack([np.where(rng.random(n) < accuracy_of[m], labels,
                               (labels + 1 + rng.integers(0, num_classes - 1, n)) % num_classes)
                      for m in models])
    confidences = rng.uniform(0.3, 1.0, (len(models), n)).astype(np.float32)
    true_probs = np.where(preds == labels, confidences, rng.uniform(0, 0.3, preds.shape)).astype(np.float32)
    metric_arrays = {key: np.zeros((len(students), n), np.float32) for key in (*METRICS, "output_kl")}
    for s, student in enumerate(students):
        for key, values in _pair_metrics(teacher_map, float_maps[student]).items():
            metric_arrays[key][s] = values
        metric_arrays["output_kl"][s] = rng.uniform(0, 1, n)
    degenerate = np.zeros((len(models), n), bool)
    degenerate[-1, : n if blank_student else 2] = True  # degenerate pairs, as the real analysis marks them
    for key in METRICS:
        metric_arrays[key][-1, degenerate[-1]] = np.nan
    peaks = teacher_map.reshape(n, -1).argmax(1)
    pointing = np.tile(masks.reshape(n, -1)[np.arange(n), peaks], (len(models), 1)).astype(np.float32)
    np.savez(root / "per_image.npz", indices=np.arange(n) * 3, labels=labels, models=np.array(models),
             preds=preds, confidences=confidences, true_probs=true_probs, targets=np.tile(labels, (len(models), 1)),
             degenerate=degenerate, pointing_game=pointing if channels == 3 else np.full_like(pointing, np.nan),
             energy_in_mask=np.full((len(models), n), 0.5 if channels == 3 else np.nan, np.float32),
             students=np.array(students), correct=preds == labels,
             agreement=(preds[1:] == preds[0]).astype(np.float32), **metric_arrays)

    model_entries, pairs, diagnosis = [], [], {}
    for m, model in enumerate(models):
        correct = preds[m] == labels
        model_entries.append({
            "name": model, "role": "teacher" if m == 0 else "student", "arch": "vgg8", "width": 0.25, "tap": "stage5",
            "params": 250000 - m, "method": None if m == 0 else methods[(m - 1) % len(methods)],
            "checkpoint_accuracy": None, "accuracy": _stat(correct.astype(float), rng),
            "mean_confidence": float(confidences[m].mean()), "degenerate": int(degenerate[m].sum()),
            "mask": {"pointing_game": _stat(np.full(n, 0.7), rng), "energy_in_mask": _stat(np.full(n, 0.5), rng)}
            if channels == 3 else None,
        })
        diagnosis[model] = _diagnosis(root, model, labels, preds[m], confidences[m], true_probs[m], class_names,
                                      float_maps[model], with_diagnosis_maps)
    for s, student in enumerate(students):
        metrics = {key: _stat(metric_arrays[key][s], rng) for key in METRICS}
        for key in bands.BANDED:
            metrics[key]["band"] = bands.band(key, metrics[key]["mean"])
        means = {key: metrics[key]["mean"] for key in bands.BANDED}
        splits = {}
        for key, mask in (("both_correct", (preds[0] == labels) & (preds[s + 1] == labels)),
                          ("teacher_only", (preds[0] == labels) & (preds[s + 1] != labels)),
                          ("student_only", (preds[0] != labels) & (preds[s + 1] == labels)),
                          ("both_wrong", (preds[0] != labels) & (preds[s + 1] != labels))):
            splits[key] = {"n": int(mask.sum()), "metrics": {k: _stat(metric_arrays[k][s][mask], rng) for k in METRICS}}
        pairs.append({
            "teacher": "teacher", "student": student, "method": model_entries[s + 1]["method"],
            "agreement": _stat((preds[0] == preds[s + 1]).astype(float), rng),
            "output_kl": _stat(metric_arrays["output_kl"][s], rng),
            "degenerate": {"teacher": 0, "student": int(degenerate[s + 1].sum()),
                           "either": int(degenerate[s + 1].sum())},
            "n_valid": int(n - degenerate[s + 1].sum()), "metrics": metrics,
            "band": bands.overall_band(means), "band_score": bands.overall_score(means),
            "band_scores": {key: bands.band_score(key, means[key]) for key in bands.BANDED}, "splits": splits,
        })
    results = {
        "schema": "kdcam.analysis", "version": 1, "id": analysis_id, "created": "2026-11-22T03:15:00Z",
        "elapsed_s": 1.0,
        "spec": {"workspace": str(workspace.root), "teacher": "teacher", "students": list(students),
                 "dataset": "shapes", "split": "test", "n": n, "method": "gradcam", "target": "label",
                 "layer": None, "batch_size": 128, "seed": seed, "device": "cpu"},
        "device": "cpu",
        "dataset": {"spec": "shapes", "split": "test", "n": n, "split_size": n * 3, "image_size": size,
                    "channels": channels, "num_classes": num_classes, "class_names": class_names,
                    "has_masks": channels == 3,
                    "selection": "random"},
        "cam": {"method": "gradcam", "target": "label", "layers": {m: "stage5" for m in models}},
        "models": model_entries, "pairs": pairs, "diagnosis": diagnosis, "attention": {},
        "sanity": {"n": 0, "rows": [], "methods": {}},
        "faithfulness": {"n": 0, "steps": 16, "rows": [], "models": {}},
    }
    (root / "results.json").write_text(json.dumps(results, indent=2))
    return root


def _diagnosis(root: Path, model: str, labels: np.ndarray, preds: np.ndarray, confidences: np.ndarray,
               true_probs: np.ndarray, class_names: list[str], maps: np.ndarray, with_maps: bool) -> dict[str, Any]:
    k = len(class_names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, preds), 1)
    per_class, worst, rows = [], [], []
    for c in range(k):
        members = labels == c
        per_class.append({"class": c, "name": class_names[c], "n": int(members.sum()),
                          "accuracy": float((preds[members] == c).mean()) if members.any() else 0.0,
                          "pointing_game": 0.75})
        errors = np.flatnonzero(members & (preds != c))
        errors = errors[np.argsort(-confidences[errors], kind="stable")][:3]
        items = []
        for image in errors:
            items.append({"row": len(rows), "index": int(image) * 3, "image": int(image),
                          "predicted": int(preds[image]), "confidence": float(confidences[image]),
                          "true_prob": float(true_probs[image]), "energy_in_mask": 0.4})
            rows.append(int(image))
        if items:
            worst.append({"class": c, "items": items})
    if with_maps and rows:
        (root / "diagnosis").mkdir(exist_ok=True)
        np.save(root / "diagnosis" / f"{model}_true.npy", np.round(maps[rows] * 255).astype(np.uint8))
        np.save(root / "diagnosis" / f"{model}_pred.npy", np.round(maps[rows][:, ::-1] * 255).astype(np.uint8))
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")
    confused = [{"true": int(i // k), "predicted": int(i % k), "count": int(off.flat[i]),
                 "rate": float(off.flat[i] / max(confusion[i // k].sum(), 1)), "related": None}
                for i in order[:10] if off.flat[i] > 0]
    accuracy = float((preds == labels).mean())
    worst_class = min(per_class, key=lambda c: c["accuracy"])
    return {
        "accuracy": accuracy, "confusion": confusion.tolist(), "per_class": per_class, "confused_pairs": confused,
        "worst_errors": worst, "low_confidence_correct": [],
        "summary": [f"{model} is weakest on {worst_class['name']} ({worst_class['accuracy']:.0%}) <checked & escaped>"],
        "recommendations": ["Inspect the most confused pairs."],
    }


def test_the_projects_reader_accepts_the_synthetic_analysis(tmp_path: Path) -> None:
    from engine.api.analyses import AnalysisFiles, list_analyses, scan_analyses

    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=20)
    assert [info.id for info in list_analyses(ws)] == ["a1"]
    assert scan_analyses(ws)[1] == []
    files = AnalysisFiles.open(ws, "a1")
    assert files.per_image["preds"].shape == (4, 20)
    assert files.maps("kd-student").shape == (20, 32, 32)
    assert files.extra_maps("diagnosis_true", "teacher") is not None
    assert files.images.shape == (20, 32, 32, 3)
    assert files.masks() is not None
    assert [p.student for p in files.results.pairs] == ["kd-student", "at-student", "si-student"]


def test_the_projects_reader_accepts_a_grey_synthetic_analysis(tmp_path: Path) -> None:
    from engine.api.analyses import AnalysisFiles

    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "g1", n=12, channels=1, blank_student=True, with_diagnosis_maps=False)
    files = AnalysisFiles.open(ws, "g1")
    assert files.masks() is None
    assert files.results.models[0].mask is None
    assert files.extra_maps("diagnosis_true", "teacher") is None
