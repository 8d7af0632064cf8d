"""``kdcam data preview``'s job: what a dataset holds, before anything trains on it.

Class counts and a PNG contact sheet with a few images per class, so a wrong label order
or a broken import is visible at a glance. Datasets load with numpy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.api.results import DatasetSummary
from engine.api.specs import PreviewSpec
from engine.api.workspace import Workspace
from engine.data import ImageSet
from engine.data.registry import load_split
from engine.jobs import JobContext

PER_CLASS = 6  # images per row of the contact sheet
MAX_ROWS = 40  # classes shown on the sheet (CIFAR-100 shows its first 40)
CELL = 64  # pixels per image on the sheet (nearest-neighbour upscaled)
LABEL_WIDTH = 200


def run_preview_job(spec: PreviewSpec, ctx: JobContext) -> DatasetSummary:
    ws = Workspace.open(spec.workspace)
    imageset = load_split(spec.dataset, spec.split, root=ws.data, download=spec.download)
    out = ws.root / spec.out if spec.out else ws.exports / f"preview-{_slug(spec.dataset)}-{spec.split}.png"
    write_contact_sheet(out, imageset.images, imageset.labels, list(imageset.class_names))
    return summarise(imageset, str(out))


def summarise(imageset: ImageSet, contact_sheet: str) -> DatasetSummary:
    counts = np.bincount(imageset.labels, minlength=imageset.num_classes)
    return DatasetSummary(
        dataset=imageset.name, split=imageset.split, images=len(imageset),
        image_shape=tuple(int(d) for d in imageset.images.shape[1:]), classes=imageset.num_classes,
        has_masks=imageset.masks is not None, mean=tuple(imageset.mean), std=tuple(imageset.std),
        class_counts={name: int(count) for name, count in zip(imageset.class_names, counts, strict=True)},
        contact_sheet=contact_sheet,
    )


def write_contact_sheet(path: Path, images: Any, labels: Any, class_names: list[str]) -> None:
    """Up to ``PER_CLASS`` images of each class in a row, class name on the left; written atomically."""
    from PIL import Image, ImageDraw

    from engine.api.atomic import write_with

    rows = min(len(class_names), MAX_ROWS)
    sheet = Image.new("RGB", (LABEL_WIDTH + PER_CLASS * CELL, rows * CELL), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for row in range(rows):
        draw.text((6, row * CELL + CELL // 2 - 6), class_names[row][:30], fill=(230, 230, 230))
        for column, index in enumerate(np.flatnonzero(labels == row)[:PER_CLASS]):
            pixels = images[index]
            tile = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
            sheet.paste(tile.resize((CELL, CELL), Image.Resampling.NEAREST), (LABEL_WIDTH + column * CELL, row * CELL))
    write_with(path, lambda tmp: sheet.save(tmp, format="PNG"))


def _slug(spec: str) -> str:
    """A file-name-safe version of a dataset spec."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec).strip("_")[:60] or "dataset"
