"""Everything an analysis needs, loaded and checked before any map is computed.

Bad input (a student with another class count, images the models cannot take, an unknown
layer, an empty split, more images than the split holds) fails here with a message naming
the checkpoint or dataset, so a long analysis never dies half-way for a reason known upfront.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.api.catalogue import canonical_target
from engine.api.checkpoints import CheckpointMeta
from engine.api.specs import AnalyzeSpec
from engine.api.workspace import Workspace
from engine.cam import METHODS, resolve_tap
from engine.checkpoints.store import CheckpointStore
from engine.data import ImageSet, load_split
from engine.data.registry import check_shapes_version
from engine.device import resolve_device
from engine.errors import KdcamError
from engine.models import TappedModel


@dataclass
class AnalysedModel:
    """One checkpoint ready to run: the model, its metadata, its CAM layer and normalisation."""

    name: str
    role: str  # teacher | student | baseline (an independent model named by --baseline, not a student)
    model: TappedModel
    meta: CheckpointMeta
    tap: str
    mean: torch.Tensor  # C x 1 x 1 on the device
    inv_std: torch.Tensor

    def normalise(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 B x H x W x C -> this model's normalised float B x C x H x W."""
        return (images_u8.permute(0, 3, 1, 2).float() / 255.0 - self.mean) * self.inv_std


@dataclass
class AnalysisInputs:
    models: list[AnalysedModel]  # teacher first, then the students in the order asked
    imageset: ImageSet
    rows: np.ndarray  # indices into the split of the analysed images, ascending
    device: torch.device
    method: str
    target: str
    selection: str  # "first" (the whole split) or "random" (a seeded subset)
    #: index into ``students`` of the independent reference every student is compared with (None: none)
    baseline: int | None = None

    @property
    def teacher(self) -> AnalysedModel:
        return self.models[0]

    @property
    def students(self) -> list[AnalysedModel]:
        return self.models[1:]


def load_inputs(spec: AnalyzeSpec, ws: Workspace) -> AnalysisInputs:
    """Load and validate checkpoints and images for ``spec``; raise KdcamError on bad input."""
    _check_spec(spec)
    device = resolve_device(spec.device)
    store = CheckpointStore(ws.checkpoints)
    metas = [store.meta(spec.teacher)] + [store.meta(name) for name in spec.students]
    roles = ["teacher"] + ["student"] * len(spec.students)
    if spec.baseline is not None and spec.baseline not in spec.students:
        metas.append(store.meta(spec.baseline))  # e.g. a second teacher: compared with the teacher like a student
        roles.append("baseline")
    baseline = _baseline(spec, metas[1:])
    _check_class_counts(metas)
    _check_target(spec.target, metas[0])
    for meta in metas:
        check_shapes_version(spec.dataset, meta.name, meta.mean, meta.std)
    imageset = load_split(spec.dataset, spec.split, ws.data)
    rows, selection = _select_rows(spec, imageset)
    _check_labels(imageset, metas[0])
    models = []
    for role, meta in zip(roles, metas, strict=True):
        _check_image_shape(imageset, meta)
        model, meta = store.load(meta.name, device=str(device))
        _check_runs_at(model, meta, imageset, device)
        tap = resolve_tap(model, spec.method, spec.layer)
        for method in spec.sanity_methods:
            resolve_tap(model, method, spec.layer if spec.method != "attention" else None)
        channels = imageset.channels
        models.append(AnalysedModel(
            name=meta.name, role=role, model=model, meta=meta, tap=tap,
            mean=torch.tensor(_per_channel(meta.mean, channels), device=device).view(-1, 1, 1),
            inv_std=1.0 / torch.tensor(_per_channel(meta.std, channels), device=device).view(-1, 1, 1),
        ))
    return AnalysisInputs(models, imageset, rows, device, spec.method, spec.target, selection, baseline)


def _baseline(spec: AnalyzeSpec, others: list[CheckpointMeta]) -> int | None:
    """Which of the compared models is the independent reference: the one ``--baseline`` names, else
    the student trained without a teacher (plain ``si``, not a variant of it), else none."""
    if spec.baseline is not None:
        return next(i for i, meta in enumerate(others) if meta.name == spec.baseline)
    return next((i for i, meta in enumerate(others) if meta.method_label == "si"), None)


def _check_spec(spec: AnalyzeSpec) -> None:
    names = [spec.teacher, *spec.students]
    if spec.baseline is not None and spec.baseline == spec.teacher:
        raise KdcamError(f"--baseline {spec.baseline!r} is the teacher: the baseline is an independent model "
                         "(the si student, or a teacher trained with another seed)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise KdcamError(f"each checkpoint may appear once in an analysis; repeated: {', '.join(duplicates)}")
    if spec.method not in METHODS:
        raise KdcamError(f"unknown CAM method {spec.method!r}; choose one of: {', '.join(METHODS)}")
    for method in spec.sanity_methods:
        if method not in METHODS:
            raise KdcamError(f"unknown CAM method {method!r} for the sanity check; choose one of: {', '.join(METHODS)}")
    canonical = canonical_target(spec.target)  # the one parser every front-end uses
    if spec.target != canonical:  # the job compares targets as written: ' label' or 'class:01' would misfire
        raise KdcamError(f"target {spec.target!r}: write it as {canonical!r}")
    if spec.n is not None and spec.n < 1:
        raise KdcamError(f"--n must be at least 1, got {spec.n}")
    if spec.batch_size < 1:
        raise KdcamError(f"--batch must be at least 1, got {spec.batch_size}")
    if spec.check_images < 0 or spec.deletion_steps < 1 or spec.worst_per_class < 0 or spec.resamples < 0:
        raise KdcamError("check_images, worst_per_class and resamples must be >= 0 and deletion_steps >= 1")


def _check_class_counts(metas: list[CheckpointMeta]) -> None:
    teacher = metas[0]
    for meta in metas[1:]:
        if meta.num_classes != teacher.num_classes:
            raise KdcamError(
                f"student {meta.name!r} has {meta.num_classes} classes but teacher {teacher.name!r} has "
                f"{teacher.num_classes}: their maps and outputs cannot be compared"
            )


def _check_target(target: str, teacher: CheckpointMeta) -> None:
    if target.startswith("class:") and not 0 <= int(target.removeprefix("class:")) < teacher.num_classes:
        raise KdcamError(f"target {target!r} is out of range: the models have {teacher.num_classes} classes")


def _select_rows(spec: AnalyzeSpec, imageset: ImageSet) -> tuple[np.ndarray, str]:
    size = len(imageset)
    if size == 0:
        raise KdcamError(f"dataset {spec.dataset!r} split {spec.split!r} has no images")
    if spec.n is None or spec.n == size:
        return np.arange(size), "first"
    if spec.n > size:
        raise KdcamError(f"--n {spec.n} is larger than dataset {spec.dataset!r} split {spec.split!r} ({size} images)")
    rng = np.random.default_rng(spec.seed)
    return np.sort(rng.choice(size, spec.n, replace=False)), "random"


def _check_labels(imageset: ImageSet, teacher: CheckpointMeta) -> None:
    top = int(imageset.labels.max()) if len(imageset) else -1
    if top >= teacher.num_classes:
        raise KdcamError(
            f"dataset {imageset.name!r} has labels up to {top} but teacher {teacher.name!r} has only "
            f"{teacher.num_classes} classes: was it trained on another dataset ({teacher.dataset})?"
        )


def _check_image_shape(imageset: ImageSet, meta: CheckpointMeta) -> None:
    if imageset.channels != meta.in_channels:
        raise KdcamError(
            f"dataset {imageset.name!r} has {imageset.channels}-channel images but checkpoint {meta.name!r} "
            f"takes {meta.in_channels} channels"
        )
    height, width = imageset.images.shape[1:3]
    if (height, width) != (meta.input_size, meta.input_size):
        raise KdcamError(
            f"checkpoint {meta.name!r} takes {meta.input_size}x{meta.input_size} images but dataset "
            f"{imageset.name!r} has {height}x{width} (resize the data, e.g. imagefolder:PATH?size={meta.input_size})"
        )


def _check_runs_at(model: TappedModel, meta: CheckpointMeta, imageset: ImageSet, device: torch.device) -> None:
    """The model must accept the dataset's image size: one forward pass of a blank image tells."""
    size = imageset.image_size
    probe = torch.zeros(1, imageset.channels, size, size, device=device)
    try:
        with torch.no_grad():
            logits = model(probe)
    except (RuntimeError, ValueError) as exc:
        raise KdcamError(
            f"checkpoint {meta.name!r} ({meta.arch}, made for {meta.input_size}px) cannot take the "
            f"{size}x{size} images of {imageset.name!r}: {str(exc).splitlines()[0]}"
        ) from None
    if logits.shape != (1, meta.num_classes):
        raise KdcamError(f"checkpoint {meta.name!r} outputs shape {tuple(logits.shape[1:])} for a "
                         f"{size}x{size} image, expected {meta.num_classes} class scores")


def _per_channel(values: tuple[float, ...], channels: int) -> list[float]:
    if len(values) == channels:
        return list(values)
    if len(values) == 1:
        return list(values) * channels
    raise KdcamError(f"normalisation has {len(values)} values for {channels}-channel images")

