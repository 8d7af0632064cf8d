"""``kdcam data preview``'s job: what a dataset holds, before anything trains on it.

Class counts and a PNG contact sheet with a few images per class, so a wrong label order
or a broken import is visible at a glance. Datasets load with numpy only.
"""

from __future__ import annotations

import stat
import struct
from pathlib import Path
from typing import Any

import numpy as np

from engine.api.results import DatasetSummary
from engine.api.specs import PreviewSpec
from engine.api.workspace import Workspace
from engine.data import ImageSet
from engine.data.registry import load_split
from engine.errors import KdcamError
from engine.jobs import JobContext

PER_CLASS = 6  # images per row of the contact sheet
MAX_ROWS = 40  # classes shown on the sheet (CIFAR-100 shows its first 40)
CELL = 64  # pixels per image on the sheet (nearest-neighbour upscaled)
LABEL_WIDTH = 200
#: the PNG text chunk (keyword, value) that marks a contact sheet as kdcam's: only such a file is replaced
PREVIEW_MARK = (b"kdcam", b"data-preview")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARK_SEARCH_BYTES = 64 * 1024  # the mark is written before the image data, near the start


def run_preview_job(spec: PreviewSpec, ctx: JobContext) -> DatasetSummary:
    ws = Workspace.open(spec.workspace)
    out = ws.root / spec.out if spec.out else ws.exports / f"preview-{_slug(spec.dataset)}-{spec.split}.png"
    out = check_preview_destination(out)  # before loading: a refusal costs nothing
    imageset = load_split(spec.dataset, spec.split, root=ws.data, download=spec.download)
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


def check_preview_destination(out: Path) -> Path:
    """The resolved path to write, refused (before any work) when something that is not a
    previous kdcam preview is there: ``--out`` must never replace a user's file."""
    try:
        real = out.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic-link loop
        raise KdcamError(f"--out {out}: cannot resolve the path ({exc})") from None
    try:
        info = real.lstat()
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise KdcamError(f"--out {out}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode) or not is_preview(real):
        raise KdcamError(f"refusing to overwrite {out}: it is not a kdcam data preview; choose another --out")
    return real


def is_preview(path: Path) -> bool:
    """True for a PNG carrying kdcam's preview text chunk (read chunk by chunk up to the image data)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(MARK_SEARCH_BYTES)
    except OSError:
        return False
    if not head.startswith(PNG_SIGNATURE):
        return False
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[offset:offset + 8])
        if kind == b"IDAT" or length > len(head):
            return False
        data = head[offset + 8:offset + 8 + length]
        if kind == b"tEXt" and tuple(data.split(b"\0", 1)) == PREVIEW_MARK:
            return True
        offset += 12 + length
    return False


def write_contact_sheet(path: Path, images: Any, labels: Any, class_names: list[str]) -> None:
    """Up to ``PER_CLASS`` images of each class in a row, class name on the left; written atomically."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

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
    mark = PngInfo()
    mark.add_text(PREVIEW_MARK[0].decode(), PREVIEW_MARK[1].decode())
    write_with(path, lambda tmp: sheet.save(tmp, format="PNG", pnginfo=mark))


def _slug(spec: str) -> str:
    """A file-name-safe version of a dataset spec."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec).strip("_")[:60] or "dataset"
