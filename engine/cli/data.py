"""``kdcam data preview DATASET``: what a dataset holds, before anything trains on it.

Prints the class counts (Rich table, or ``--json``) and writes a PNG contact sheet with a
few images per class, so a wrong label order or a broken import is visible at a glance.
Datasets load with numpy only; nothing here imports torch.
"""

from __future__ import annotations

import argparse
import stat
import struct
from pathlib import Path
from typing import Any

from engine.errors import KdcamError

PER_CLASS = 6  # images per row of the contact sheet
MAX_ROWS = 40  # classes shown on the sheet (CIFAR-100 shows its first 40)
CELL = 64  # pixels per image on the sheet (nearest-neighbour upscaled)
LABEL_WIDTH = 200
#: the PNG text chunk (keyword, value) that marks a contact sheet as kdcam's: only such a file is replaced
PREVIEW_MARK = (b"kdcam", b"data-preview")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARK_SEARCH_BYTES = 64 * 1024  # the mark is written before the image data, near the start


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="inspect datasets", description="Inspect datasets.")
    commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    preview = commands.add_parser(
        "preview",
        help="class counts and a PNG contact sheet of a dataset",
        description="Load one split of DATASET, print how many images each class has and write a PNG contact "
        "sheet with a few images per class. DATASET is shapes[?classes=20&train=5000&test=1000&seed=0], "
        "cifar10, cifar100, mnist, npz:PATH or imagefolder:PATH[?size=32].",
    )
    preview.add_argument("dataset", metavar="DATASET", help="dataset spec, e.g. shapes or npz:mine.npz")
    preview.add_argument("--split", choices=("train", "test"), default="train", help="which split (default: train)")
    preview.add_argument("--out", help="contact sheet PNG, relative to the workspace "
                         "(default: exports/preview-<dataset>-<split>.png); an existing file is replaced "
                         "only when it is a previous preview")
    preview.add_argument("--json", action="store_true", help="print the summary as JSON")
    preview.add_argument("--download", action="store_true", help="fetch cifar10/cifar100/mnist when missing")
    preview.set_defaults(handler=_preview)


def _preview(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json
    from engine.data import load_split
    from engine.workspace import Workspace

    ws = Workspace.open(args.workspace)
    out = ws.root / args.out if args.out else ws.exports / f"preview-{_slug(args.dataset)}-{args.split}.png"
    out = check_preview_destination(out)
    imageset = load_split(args.dataset, args.split, root=ws.data, download=args.download)
    write_contact_sheet(out, imageset.images, imageset.labels, imageset.class_names)
    summary = summarise(imageset)
    summary["contact_sheet"] = str(out)
    if args.json:
        print_json(summary)
    else:
        console().print(_table(summary))
        console().print(f"contact sheet: {out}", highlight=False)
    return 0


def summarise(imageset: Any) -> dict[str, Any]:
    import numpy as np

    counts = np.bincount(imageset.labels, minlength=imageset.num_classes)
    return {
        "dataset": imageset.name,
        "split": imageset.split,
        "images": len(imageset),
        "image_shape": list(imageset.images.shape[1:]),
        "classes": imageset.num_classes,
        "has_masks": imageset.masks is not None,
        "mean": list(imageset.mean),
        "std": list(imageset.std),
        "class_counts": {name: int(count) for name, count in zip(imageset.class_names, counts, strict=True)},
    }


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
    import numpy as np
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    from engine.atomic import write_with

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


def _table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    shape = "x".join(map(str, summary["image_shape"]))
    title = (f"{summary['dataset']} ({summary['split']}): {summary['images']} images {shape}, "
             f"{summary['classes']} classes{', with object masks' if summary['has_masks'] else ''}")
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("images", justify="right")
    for index, (name, count) in enumerate(summary["class_counts"].items()):
        table.add_row(str(index), name, str(count))
    return table


def _slug(spec: str) -> str:
    """A file-name-safe version of a dataset spec."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec).strip("_")[:60] or "dataset"
