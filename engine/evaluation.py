"""``kdcam eval``: how good a stored checkpoint is on a dataset split, with nothing else computed.

Images are normalised with the *checkpoint's* statistics through the trainer's own loader,
so a checkpoint evaluated on the split it was validated on reproduces the accuracy the
trainer recorded. Calibration is the expected calibration error over 15 equal-width
confidence bins (Guo et al. 2017), the usual setting.
"""

from __future__ import annotations

import torch

from engine.api.results import ClassScore, Evaluation
from engine.api.specs import EvalSpec
from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.data import ImageSet, load_split
from engine.data.loader import DeviceLoader
from engine.data.registry import check_shapes_version
from engine.device import resolve_device
from engine.errors import KdcamError
from engine.jobs import JobContext

ECE_BINS = 15


def run_eval_job(spec: EvalSpec, ctx: JobContext) -> tuple[Evaluation, ...]:
    """Every checkpoint of ``spec`` on one split; unknown names fail before any data is loaded."""
    workspace = Workspace.open(spec.workspace)
    store = CheckpointStore(workspace.checkpoints)
    for name in spec.checkpoints:
        store.meta(name)
    imageset = load_split(spec.dataset, spec.split, workspace.data)
    device = resolve_device(spec.device)
    results = []
    for done, name in enumerate(spec.checkpoints):
        ctx.progress("eval", done, len(spec.checkpoints), name)
        results.append(evaluate_checkpoint(store, name, imageset, device, spec.batch_size))
    ctx.progress("eval", len(spec.checkpoints), len(spec.checkpoints), "done")
    return tuple(results)


def evaluate_checkpoint(store: CheckpointStore, name: str, imageset: ImageSet, device: torch.device,
                        batch_size: int = 256) -> Evaluation:
    """Top-1/top-5, per-class accuracy and ECE of checkpoint ``name`` on ``imageset``."""
    if batch_size < 1:
        raise KdcamError(f"--batch must be at least 1, got {batch_size}")
    if len(imageset) == 0:
        raise KdcamError(f"dataset {imageset.name!r} split {imageset.split!r} has no images")
    meta = store.meta(name)
    check_shapes_version(imageset.name, name, meta.mean, meta.std)
    if imageset.channels != meta.in_channels or imageset.image_size != meta.input_size:
        raise KdcamError(f"checkpoint {name!r} takes {meta.in_channels}x{meta.input_size}x{meta.input_size} images "
                         f"but {imageset.name!r} has {imageset.channels}x{imageset.image_size}x{imageset.image_size}")
    top = int(imageset.labels.max())
    if top >= meta.num_classes:
        raise KdcamError(f"dataset {imageset.name!r} has labels up to {top} but checkpoint {name!r} has only "
                         f"{meta.num_classes} classes: was it trained on another dataset ({meta.dataset})?")
    model, meta = store.load(name, device=str(device))
    loader = DeviceLoader(imageset, batch_size, device, mean=meta.mean, std=meta.std)
    probabilities, labels = [], []
    with torch.inference_mode():
        for images, batch_labels, _ in loader:
            probabilities.append(torch.softmax(model(images).float(), dim=1))
            labels.append(batch_labels)
    probs, truth = torch.cat(probabilities), torch.cat(labels)
    confidence, predicted = probs.max(dim=1)
    correct = predicted == truth
    top5 = None
    if probs.shape[1] >= 5:
        top5 = float((probs.topk(5, dim=1).indices == truth[:, None]).any(dim=1).float().mean())
    names = meta.class_names if meta.class_names and len(meta.class_names) == meta.num_classes else None
    per_class = []
    for k in range(meta.num_classes):
        members = truth == k
        count = int(members.sum())
        per_class.append(ClassScore(names[k] if names else str(k), count,
                                       float(correct[members].float().mean()) if count else None))
    return Evaluation(
        checkpoint=name, dataset=imageset.name, split=imageset.split, n=len(truth),
        top1=float(correct.float().mean()), top5=top5, ece=expected_calibration_error(confidence, correct),
        stored_accuracy=meta.accuracy, per_class=tuple(per_class),
    )


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Σ_b (|b| / n) · |accuracy(b) − mean confidence(b)| over equal-width bins (lo, hi]."""
    edges = torch.linspace(0, 1, bins + 1, device=confidence.device)
    index = (torch.bucketize(confidence, edges[1:-1], right=False)).clamp(0, bins - 1)
    total = torch.zeros((), dtype=torch.float64, device=confidence.device)
    for b in range(bins):
        members = index == b
        if members.any():
            gap = correct[members].double().mean() - confidence[members].double().mean()
            total += members.double().mean() * gap.abs()
    return float(total)
