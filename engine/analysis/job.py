"""``run_analysis_job``: CAMs of a teacher and its students on the same images, compared.

Order of work: validate everything (``inputs``), then one streaming pass for maps and
per-image numbers (``collect``), then the bounded extras (diagnosis maps, randomisation
check, deletion/insertion on a subset), then one bootstrap pass for every interval. The
analysis directory is built under a temporary name and renamed into place at the end, so
a cancelled or failed analysis leaves nothing behind.

Under torchrun the streaming pass is sharded: each rank computes whole batches (the same
batches one process would form, so every map is bit-for-bit the same), rank 0 gathers the
shards in order, writes the files and does the rest alone. No image is padded or repeated.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from engine import distributed
from engine.analysis import faithfulness, sanity
from engine.analysis.aggregate import StatBatch, attention_entries, model_entries, pair_entries
from engine.analysis.collect import PerImage, RowWriter, cams_for, collect, to_uint8
from engine.analysis.diagnosis import ModelOutcomes, diagnose, error_images
from engine.analysis.inputs import AnalysisInputs, load_inputs
from engine.analysis.superclasses import superclasses_for
from engine.api import atomic
from engine.api.analyses import RESULTS_FILE
from engine.api.names import check_id
from engine.api.results import SCHEMA, SCHEMA_VERSION, AnalysisJobResult, AnalysisResults
from engine.api.specs import AnalyzeSpec
from engine.api.validate import Fields
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.jobs import JobContext


def run_analysis_job(spec: AnalyzeSpec, ctx: JobContext) -> AnalysisJobResult:
    """Run the analysis ``spec`` describes; returns its id, directory and each student's band."""
    started = time.perf_counter()
    ws = Workspace.open(spec.workspace)
    analysis_id = _agreed_id(spec, ws)
    ctx.log(f"loading {', '.join((spec.teacher, *spec.students))} and {spec.dataset} ({spec.split})")
    inputs = load_inputs(spec, ws)
    ctx.log(f"analysing {len(inputs.rows)} images on {inputs.device} with {spec.method} -> analyses/{analysis_id}")
    shards = _collect_shards(inputs, spec.batch_size, ctx) if distributed.current().distributed else None
    if shards is None and distributed.current().distributed:  # a rank other than 0: its part is done
        return AnalysisJobResult(analysis_id, str(ws.analyses / analysis_id), {})
    with atomic.atomic_directory(ws.analyses / analysis_id) as tmp:
        per_image = _write_shards(shards, tmp) if shards else collect(inputs, tmp, spec.batch_size, ctx)
        stats = StatBatch(len(inputs.rows))
        diagnosis = _diagnosis(spec, inputs, per_image, tmp, ctx)
        check_rows = _check_rows(spec, len(inputs.rows))
        sanity_section = _sanity(spec, inputs, per_image, check_rows, stats, tmp, ctx)
        faithfulness_section = _faithfulness(spec, inputs, per_image, check_rows, stats, tmp, ctx)
        ctx.progress("statistics", 0, 1, "bootstrap intervals")
        results = stats.resolve({
            "schema": SCHEMA, "version": SCHEMA_VERSION, "id": analysis_id,
            "created": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "elapsed_s": 0.0,
            "spec": spec.to_dict(),
            "device": str(inputs.device),
            "dataset": _dataset_section(spec, inputs),
            "cam": {"method": spec.method, "target": spec.target, "layers": {am.name: am.tap for am in inputs.models}},
            "models": model_entries(inputs, per_image, stats),
            "pairs": pair_entries(inputs, per_image, stats),
            "baseline": inputs.students[inputs.baseline].name if inputs.baseline is not None else None,
            "diagnosis": diagnosis,
            "attention": attention_entries(per_image, stats),
            "sanity": sanity_section,
            "faithfulness": faithfulness_section,
        }, spec.resamples, spec.seed)
        ctx.check_cancelled()
        ctx.progress("statistics", 1, 1, "bootstrap intervals")
        np.savez(tmp / "per_image.npz", allow_pickle=False, **per_image.arrays())
        results["elapsed_s"] = round(time.perf_counter() - started, 3)
        AnalysisResults.from_fields(Fields(results, f"analysis {analysis_id} (as written)"))  # writer == reader
        atomic.write_json(tmp / RESULTS_FILE, results)
    ctx.log(f"analysis {analysis_id} written in {results['elapsed_s']:.1f} s")
    return AnalysisJobResult(analysis_id, str(ws.analyses / analysis_id),
                             {pair["student"]: pair["band"] for pair in results["pairs"]})


def _agreed_id(spec: AnalyzeSpec, ws: Workspace) -> str:
    """Rank 0's choice of id on every rank (or its refusal, raised on every rank)."""
    try:
        choice = ("id", _new_id(spec, ws)) if distributed.current().main else None
    except KdcamError as exc:
        choice = ("error", str(exc))
    kind, value = distributed.broadcast(choice)
    if kind == "error":
        raise KdcamError(value)
    return value


Shard = tuple[PerImage, dict[str, np.ndarray]]


def _collect_shards(inputs: AnalysisInputs, batch_size: int, ctx: JobContext) -> list[Shard] | None:
    """This rank's whole batches through ``collect``; every shard, in rank order, on rank 0 (None elsewhere)."""
    here, n = distributed.current(), len(inputs.rows)
    base, extra = divmod(-(-n // batch_size), here.world_size)
    first = here.rank * base + min(here.rank, extra)
    last = first + base + (here.rank < extra)
    part = dataclasses.replace(inputs, rows=inputs.rows[first * batch_size : min(n, last * batch_size)])
    with tempfile.TemporaryDirectory(prefix="kdcam-shard-") as scratch:
        per_image = collect(part, Path(scratch), batch_size, ctx)
        files = {str(path.relative_to(scratch)): np.load(path) for path in sorted(Path(scratch).rglob("*.npy"))}
    return distributed.gather_objects((per_image, files))


def _write_shards(shards: list[Shard], tmp: Path) -> PerImage:
    """The shards' files joined in order (the bytes one process writes) and their per-image numbers."""
    for relative in shards[0][1]:
        joined = np.concatenate([files[relative] for _, files in shards])
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        with RowWriter(tmp / relative, joined.dtype.type, joined.shape) as out:
            out.append(joined)
    parts = [per_image for per_image, _ in shards]
    first = parts[0]

    def rows(get, axis: int = 1) -> np.ndarray:
        return np.concatenate([get(p) for p in parts], axis=axis)

    per_model: dict[str, Any] = {name: rows(lambda p, name=name: getattr(p, name)) for name in (
        "preds", "correct", "confidences", "true_probs", "targets", "degenerate", "pointing_game", "energy_in_mask")}
    for name, axis in (("energy_on_distractors", 1), ("energy_on_cue", 1), ("cue_labels", 0)):  # where present
        if getattr(first, name) is not None:
            per_model[name] = rows(lambda p, name=name: getattr(p, name), axis)
    return dataclasses.replace(
        first,
        indices=rows(lambda p: p.indices, 0), labels=rows(lambda p: p.labels, 0), **per_model,
        pair={key: rows(lambda p, key=key: p.pair[key]) for key in first.pair},
        attention={model: {key: rows(lambda p, model=model, key=key: p.attention[model][key], 0) for key in values}
                   for model, values in first.attention.items()},
    )


def _new_id(spec: AnalyzeSpec, ws: Workspace) -> str:
    """The spec's name (which must be free), else date-time and teacher, made unique."""
    if spec.name:
        check_id("analysis name", spec.name)
        if (ws.analyses / spec.name).exists():
            raise KdcamError(f"an analysis named {spec.name!r} already exists in {ws.analyses}")
        return spec.name
    base = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{spec.teacher}"
    candidate, suffix = base, 2
    while (ws.analyses / candidate).exists():
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate


def _dataset_section(spec: AnalyzeSpec, inputs: AnalysisInputs) -> dict[str, Any]:
    imageset = inputs.imageset
    return {
        "spec": spec.dataset, "split": spec.split, "n": len(inputs.rows), "split_size": len(imageset),
        "image_size": imageset.image_size, "channels": imageset.channels,
        "num_classes": imageset.num_classes, "class_names": list(imageset.class_names),
        "has_masks": imageset.masks is not None, "selection": inputs.selection,
    }


def _check_rows(spec: AnalyzeSpec, n: int) -> np.ndarray:
    """The seeded subset of analysed images the costly checks run on."""
    count = min(spec.check_images, n)
    return np.sort(np.random.default_rng(spec.seed + 1).choice(n, count, replace=False))


def _images(tmp: Path, rows: np.ndarray) -> np.ndarray:
    return np.load(tmp / "images.npy", mmap_mode="r")[rows]


def _diagnosis(spec: AnalyzeSpec, inputs: AnalysisInputs, per_image: PerImage, tmp: Path,
               ctx: JobContext) -> dict[str, Any]:
    """Per-model diagnosis, with true- and predicted-class maps of each listed error."""
    (tmp / "diagnosis").mkdir()
    # a model may have more outputs than the dataset has named classes; its extra classes keep a number
    named = list(inputs.imageset.class_names)
    class_names = named + [f"class {k}" for k in range(len(named), inputs.teacher.meta.num_classes)]
    sections = {}
    for i, am in enumerate(inputs.models):
        ctx.check_cancelled()
        outcomes = ModelOutcomes(per_image.labels, per_image.preds[i], per_image.confidences[i],
                                 per_image.true_probs[i], per_image.energy_in_mask[i], per_image.pointing_game[i])
        section = diagnose(outcomes, class_names, spec.worst_per_class, superclasses_for(class_names))
        images, true_classes, predicted = error_images(section)
        size = inputs.imageset.image_size
        pixels = _images(tmp, images) if len(images) else np.zeros((0, size, size, inputs.imageset.channels), np.uint8)
        tap = am.tap if spec.method != "attention" else None
        for kind, classes in (("true", true_classes), ("pred", predicted)):
            maps, _ = cams_for(am, pixels, classes, spec.method, inputs.device, spec.batch_size, tap)
            out = open_memmap(tmp / "diagnosis" / f"{am.name}_{kind}.npy", "w+", np.uint8, (len(classes), size, size))
            out[:] = to_uint8(maps)
            out.flush()
        sections[am.name] = section
        ctx.progress("diagnosis", i + 1, len(inputs.models), am.name)
    return sections


def _sanity(spec: AnalyzeSpec, inputs: AnalysisInputs, per_image: PerImage, rows: np.ndarray, stats: StatBatch,
            tmp: Path, ctx: JobContext) -> dict[str, Any]:
    """Randomisation check per method and model on ``rows``; the analysis method's random maps are stored."""
    methods = spec.sanity_methods or (spec.method,)
    pixels = _images(tmp, rows)
    section: dict[str, Any] = {"n": len(rows), "rows": rows.tolist(), "methods": {}}
    if len(rows) == 0:
        return section
    (tmp / "sanity").mkdir()
    total, done = len(methods) * len(inputs.models), 0
    for method in methods:
        entries = {}
        for i, am in enumerate(inputs.models):
            ctx.check_cancelled()
            tap = am.tap if spec.method != "attention" and method != "attention" else None
            values, randomised = sanity.sanity_values(am, pixels, per_image.targets[i, rows], method, tap,
                                                      spec.seed, inputs.device, spec.batch_size)
            spearman = values["spearman"]
            mean = float(np.nanmean(spearman)) if np.isfinite(spearman).any() else None
            entries[am.name] = {**{k: stats.add_at(rows, values[k]) for k in sanity.SANITY_METRICS},
                                "passed": sanity.passed(mean)}
            if method == spec.method:
                np.save(tmp / "sanity" / f"{am.name}.npy", to_uint8(randomised))
            done += 1
            ctx.progress("sanity check", done, total, f"{method} {am.name}")
        section["methods"][method] = entries
    return section


def _faithfulness(spec: AnalyzeSpec, inputs: AnalysisInputs, per_image: PerImage, rows: np.ndarray,
                  stats: StatBatch, tmp: Path, ctx: JobContext) -> dict[str, Any]:
    """Deletion and insertion AUC of every model's own maps on ``rows``."""
    section: dict[str, Any] = {"n": len(rows), "steps": spec.deletion_steps, "rows": rows.tolist(), "models": {}}
    if len(rows) == 0:
        return section
    pixels = _images(tmp, rows)
    for i, am in enumerate(inputs.models):
        ctx.check_cancelled()
        maps = np.load(tmp / "maps" / f"{am.name}.npy", mmap_mode="r")[rows]
        deletion, insertion = faithfulness.deletion_insertion(
            am, pixels, maps, per_image.targets[i, rows], spec.deletion_steps, inputs.device)
        valid = ~per_image.degenerate[i, rows]
        section["models"][am.name] = {
            "deletion_auc": stats.add_at(rows, np.where(valid, deletion, np.nan)),
            "insertion_auc": stats.add_at(rows, np.where(valid, insertion, np.nan)),
        }
        ctx.progress("deletion/insertion", i + 1, len(inputs.models), am.name)
    return section
