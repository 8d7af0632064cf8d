"""The one pass over the analysed images: every model's maps to disk, per-image numbers in memory.

Images, masks and maps are appended batch by batch to ``.npy`` files with plain writes
(``RowWriter``), so memory does not grow with the number of images: a memory-mapped
output would keep every written page in this process's resident set until it is closed.
What stays in memory is a few numbers per image and model. All metrics of a batch are
computed on the device in a handful of tensor operations.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from torch import Tensor

from engine.analysis import metrics
from engine.analysis.inputs import AnalysedModel, AnalysisInputs
from engine.cam import ClassTarget, OwnPrediction, Target, compute_cams
from engine.jobs import JobContext

PAIR_ARRAYS = (*metrics.PAIR_METRICS, "output_kl", "agreement")
ATTENTION_METRICS = ("pearson", "peak_distance")


@dataclass
class PerImage:
    """Per-image numbers of one analysis (the content of ``per_image.npz``)."""

    indices: np.ndarray  # N, rows of the dataset split
    labels: np.ndarray  # N
    models: list[str]  # M, teacher first
    students: list[str]  # S
    preds: np.ndarray  # M x N
    correct: np.ndarray  # M x N
    confidences: np.ndarray  # M x N
    true_probs: np.ndarray  # M x N
    targets: np.ndarray  # M x N
    degenerate: np.ndarray  # M x N
    pointing_game: np.ndarray  # M x N, NaN without masks or for degenerate maps
    energy_in_mask: np.ndarray  # M x N
    pair: dict[str, np.ndarray]  # PAIR_ARRAYS -> S x N
    attention: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> metric -> N
    #: M x N share of each map on the distractors / the spurious cue; NaN where the image has none
    #: (None: the dataset has no such masks)
    energy_on_distractors: np.ndarray | None = None
    energy_on_cue: np.ndarray | None = None
    cue_labels: np.ndarray | None = None  # N, the class each image's cue names

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved in ``per_image.npz`` (names as in docs/RESULTS_SCHEMA.md)."""
        return {
            "indices": self.indices, "labels": self.labels,
            "models": np.array(self.models), "students": np.array(self.students),
            "preds": self.preds, "correct": self.correct, "confidences": self.confidences,
            "true_probs": self.true_probs,
            "targets": self.targets, "degenerate": self.degenerate,
            "pointing_game": self.pointing_game, "energy_in_mask": self.energy_in_mask,
            **self.pair,
            **{name: value for name, value in (("energy_on_distractors", self.energy_on_distractors),
                                               ("energy_on_cue", self.energy_on_cue),
                                               ("cue_labels", self.cue_labels)) if value is not None},
            "attention_models": np.array(list(self.attention), dtype=str),
            **{f"attention_{metric}": np.stack([values[metric] for values in self.attention.values()])
               if self.attention else np.zeros((0, len(self.labels)), np.float32) for metric in ATTENTION_METRICS},
        }


class RowWriter:
    """A ``.npy`` file of known shape written front to back in row blocks, never held in memory.

    The file is byte-for-byte what ``np.save`` of the whole array would write.
    """

    def __init__(self, path: Path, dtype: type, shape: tuple[int, ...]):
        self.dtype, self.shape, self.rows_written = np.dtype(dtype), shape, 0
        self._file = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._file, header)

    def append(self, block: np.ndarray) -> None:
        if block.shape[1:] != self.shape[1:] or self.rows_written + len(block) > self.shape[0]:
            raise ValueError(f"block {block.shape} does not fit {self.shape} after {self.rows_written} rows")
        self._file.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.rows_written += len(block)

    def close(self) -> None:
        """Flush and close; a file left short of its declared rows is an error, not a silent truncation."""
        self._file.close()
        if self.rows_written != self.shape[0]:
            raise ValueError(f"{self._file.name}: {self.rows_written} of {self.shape[0]} rows written")

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()


def class_target(target: str, labels: Tensor, teacher_logits: Tensor | None) -> Target:
    """The ``Target`` of an analysis target spec for one batch (the teacher is computed first)."""
    if target == "label":
        return ClassTarget(labels)
    if target == "teacher":
        return OwnPrediction() if teacher_logits is None else ClassTarget(teacher_logits.argmax(dim=1))
    if target == "own":
        return OwnPrediction()
    return ClassTarget(torch.full_like(labels, int(target.removeprefix("class:"))))


def to_uint8(maps: Tensor) -> np.ndarray:
    """[0, 1] float maps -> uint8 (round(map * 255)) on the host."""
    return (maps * 255.0).round_().to(torch.uint8).cpu().numpy()


def _to_host(values: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Per-image vectors of one batch to the host in a single transfer (one device sync, not one each)."""
    stacked = torch.stack([value.to(torch.float64) for value in values.values()]).cpu().numpy()
    return dict(zip(values, stacked, strict=True))


def _nan_where(values: Tensor, invalid: Tensor) -> Tensor:
    return torch.where(invalid, torch.full_like(values, torch.nan), values)


def _gradcam_and_attention(am: AnalysedModel, x: Tensor, target: Target, method: str,
                           maps: Tensor, degenerate: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """An attention model's own attention map and its Grad-CAM, reusing the analysis maps when they are one."""
    model = am.model
    if method == "attention":
        attention, attention_degenerate = maps, degenerate
    else:
        batch = compute_cams(model, x, target, "attention")
        attention, attention_degenerate = batch.maps, batch.degenerate
    if method == "gradcam":
        gradcam, gradcam_degenerate = maps, degenerate
    else:
        tap = am.tap if method != "attention" else model.default_cam_tap
        batch = compute_cams(model, x, target, "gradcam", tap)
        gradcam, gradcam_degenerate = batch.maps, batch.degenerate
    return attention, attention_degenerate, gradcam, gradcam_degenerate


def collect(inputs: AnalysisInputs, out_dir: Path, batch_size: int, ctx: JobContext) -> PerImage:
    """Compute every model's maps for every analysed image; write images, masks and maps under ``out_dir``."""
    imageset, rows = inputs.imageset, inputs.rows
    n, size = len(rows), imageset.image_size
    m, s = len(inputs.models), len(inputs.students)
    attention_models = [am for am in inputs.models if getattr(am.model, "attention_tap", None)]

    result = PerImage(
        indices=rows.astype(np.int64), labels=imageset.labels[rows].astype(np.int64),
        models=[am.name for am in inputs.models], students=[am.name for am in inputs.students],
        preds=np.zeros((m, n), np.int64), correct=np.zeros((m, n), np.bool_), confidences=np.zeros((m, n), np.float32),
        true_probs=np.zeros((m, n), np.float32), targets=np.zeros((m, n), np.int64),
        degenerate=np.zeros((m, n), np.bool_),
        pointing_game=np.full((m, n), np.nan, np.float32), energy_in_mask=np.full((m, n), np.nan, np.float32),
        pair={name: np.full((s, n), np.nan, np.float32) for name in PAIR_ARRAYS},
        attention={am.name: {k: np.full(n, np.nan, np.float32) for k in ATTENTION_METRICS} for am in attention_models},
        energy_on_distractors=np.full((m, n), np.nan, np.float32) if imageset.distractor_masks is not None else None,
        energy_on_cue=np.full((m, n), np.nan, np.float32) if imageset.cue_masks is not None else None,
        cue_labels=imageset.cue_labels[rows].astype(np.int64) if imageset.cue_labels is not None else None,
    )
    regions = {name: masks for name, masks in (("energy_on_distractors", imageset.distractor_masks),
                                                ("energy_on_cue", imageset.cue_masks)) if masks is not None}
    with ExitStack() as files:
        def writer(relative: str, dtype: type, shape: tuple[int, ...]) -> RowWriter:
            (out_dir / relative).parent.mkdir(exist_ok=True)
            return files.enter_context(RowWriter(out_dir / relative, dtype, shape))

        images_file = writer("images.npy", np.uint8, (n, size, size, imageset.channels))
        masks_file = writer("masks.npy", np.bool_, (n, size, size)) if imageset.masks is not None else None
        map_files = {am.name: writer(f"maps/{am.name}.npy", np.uint8, (n, size, size)) for am in inputs.models}
        attention_files = {am.name: writer(f"attention/{am.name}.npy", np.uint8, (n, size, size))
                           for am in attention_models}
        batches = -(-n // batch_size)
        for b in range(batches):
            ctx.check_cancelled()
            lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
            picked = rows[lo:hi]
            pixels = np.ascontiguousarray(imageset.images[picked])
            images_file.append(pixels)
            u8 = torch.from_numpy(pixels).to(inputs.device)
            labels = torch.from_numpy(result.labels[lo:hi]).to(inputs.device)
            masks = None
            if masks_file is not None and imageset.masks is not None:
                mask_pixels = np.ascontiguousarray(imageset.masks[picked])
                masks_file.append(mask_pixels)
                masks = torch.from_numpy(mask_pixels).to(inputs.device)
            region_masks = {name: torch.from_numpy(np.ascontiguousarray(masks[picked])).to(inputs.device)
                            for name, masks in regions.items()}
            teacher_logits = teacher_maps = teacher_degenerate = teacher_ranks = None
            # models with the same normalisation statistics share one input tensor
            normalised: dict[tuple[tuple[float, ...], tuple[float, ...]], Tensor] = {}
            for i, am in enumerate(inputs.models):
                stats = (am.meta.mean, am.meta.std)
                if stats not in normalised:
                    normalised[stats] = am.normalise(u8)
                x = normalised[stats]
                target = class_target(inputs.target, labels, teacher_logits)
                batch = compute_cams(am.model, x, target, inputs.method, am.tap)
                maps, degenerate, logits = batch.maps, batch.degenerate, batch.logits
                map_files[am.name].append(to_uint8(maps))
                probs = torch.softmax(logits.float(), dim=1)
                confidence, pred = probs.max(dim=1)
                values = {
                    "preds": pred, "correct": metrics.correct(logits, labels), "confidences": confidence,
                    "true_probs": probs.gather(1, labels[:, None])[:, 0],
                    "targets": _explained_classes(target, logits, labels), "degenerate": degenerate,
                }
                if masks is not None:
                    values["pointing_game"] = _nan_where(metrics.pointing_game(maps, masks), degenerate)
                    values["energy_in_mask"] = _nan_where(metrics.energy_in_mask(maps, masks), degenerate)
                for name, region in region_masks.items():  # NaN where the image has no such region
                    empty = ~region.flatten(1).any(dim=1)
                    values[name] = _nan_where(metrics.energy_in_mask(maps, region), degenerate | empty)
                if i == 0:
                    teacher_logits, teacher_maps, teacher_degenerate = logits, maps, degenerate
                    teacher_ranks = metrics.average_ranks(maps.reshape(len(maps), -1))
                else:
                    assert teacher_logits is not None and teacher_maps is not None  # the teacher comes first
                    assert teacher_degenerate is not None and teacher_ranks is not None
                    invalid = teacher_degenerate | degenerate
                    pair = metrics.pair_metrics(teacher_maps, maps, teacher_ranks)
                    values.update({f"pair/{name}": _nan_where(value, invalid) for name, value in pair.items()})
                    values["pair/output_kl"] = metrics.output_kl(teacher_logits, logits)
                    values["pair/agreement"] = metrics.agreement(teacher_logits, logits)
                if am.name in attention_files:
                    attention, att_degenerate, gradcam, grad_degenerate = _gradcam_and_attention(
                        am, x, target, inputs.method, maps, degenerate)
                    attention_files[am.name].append(to_uint8(attention))
                    invalid = att_degenerate | grad_degenerate
                    values["attention/pearson"] = _nan_where(metrics.pearson(attention, gradcam), invalid)
                    values["attention/peak_distance"] = _nan_where(metrics.peak_distance(attention, gradcam), invalid)
                for name, value in _to_host(values).items():
                    group, _, key = name.partition("/")
                    if group == "pair":
                        result.pair[key][i - 1, lo:hi] = value
                    elif group == "attention":
                        result.attention[am.name][key][lo:hi] = value
                    else:
                        getattr(result, name)[i, lo:hi] = value
            ctx.progress("maps", b + 1, batches, f"{hi}/{n} images")
    return result


def _explained_classes(target: Target, logits: Tensor, labels: Tensor) -> Tensor:
    """The class a map explains per image ('own prediction' bound to the outputs first)."""
    bound = target.bind(logits)
    assert isinstance(bound, ClassTarget)  # class_target only builds class-valued targets
    return bound.classes.to(labels.device)


def cams_for(am: AnalysedModel, images_u8: np.ndarray, classes: np.ndarray, method: str, device: torch.device,
             batch_size: int, tap: str | None = None) -> tuple[Tensor, Tensor]:
    """Float maps (on the device) and degenerate flags of ``am`` for given images and classes."""
    maps, degenerate = [], []
    for lo in range(0, len(classes), batch_size):
        u8 = torch.from_numpy(np.ascontiguousarray(images_u8[lo:lo + batch_size])).to(device)
        target = ClassTarget(torch.from_numpy(classes[lo:lo + batch_size]))
        batch = compute_cams(am.model, am.normalise(u8), target, method, tap or am.tap)
        maps.append(batch.maps)
        degenerate.append(batch.degenerate)
    if not maps:
        size = images_u8.shape[1]
        return torch.zeros(0, size, size, device=device), torch.zeros(0, dtype=torch.bool, device=device)
    return torch.cat(maps), torch.cat(degenerate)
