"""``kdcam data preview DATASET``: what a dataset holds, before anything trains on it.

Prints the class counts (Rich table, or ``--json``) and writes a PNG contact sheet with a
few images per class, so a wrong label order or a broken import is visible at a glance.
Datasets load with numpy only; nothing here imports torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PER_CLASS = 6  # images per row of the contact sheet
MAX_ROWS = 40  # classes shown on the sheet (CIFAR-100 shows its first 40)
CELL = 64  # pixels per image on the sheet (nearest-neighbour upscaled)
LABEL_WIDTH = 200


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
                         "(default: exports/preview-<dataset>-<split>.png)")
    preview.add_argument("--json", action="store_true", help="print the summary as JSON")
    preview.add_argument("--download", action="store_true", help="fetch cifar10/cifar100/mnist when missing")
    preview.set_defaults(handler=_preview)


def _preview(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json
    from engine.data import load_split
    from engine.workspace import Workspace

    ws = Workspace.open(args.workspace)
    imageset = load_split(args.dataset, args.split, root=ws.data, download=args.download)
    out = ws.root / args.out if args.out else ws.exports / f"preview-{_slug(args.dataset)}-{args.split}.png"
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


def write_contact_sheet(path: Path, images: Any, labels: Any, class_names: list[str]) -> None:
    """Up to ``PER_CLASS`` images of each class in a row, class name on the left; written atomically."""
    import numpy as np
    from PIL import Image, ImageDraw

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
    write_with(path, lambda tmp: sheet.save(tmp, format="PNG"))


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
