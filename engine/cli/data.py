"""``kdcam data preview DATASET``: what a dataset holds, before anything trains on it.

Prints the class counts (Rich table, or ``--json``) and writes a PNG contact sheet with a
few images per class, so a wrong label order or a broken import is visible at a glance.
The work is an engine job (``PreviewSpec``); this module only parses and prints.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.api.results import DatasetSummary


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
    from engine.api.specs import PreviewSpec
    from engine.cli.output import console, print_json, run_job

    spec = PreviewSpec(workspace=args.workspace, dataset=args.dataset, split=args.split, out=args.out,
                       download=args.download)
    summary: DatasetSummary = run_job(spec, quiet=True)
    if args.json:
        print_json(summary)
    else:
        console().print(_table(summary))
        console().print(f"contact sheet: {summary.contact_sheet}", highlight=False)
    return 0


def _table(summary: DatasetSummary) -> Any:
    from rich.table import Table

    shape = "x".join(map(str, summary.image_shape))
    title = (f"{summary.dataset} ({summary.split}): {summary.images} images {shape}, "
             f"{summary.classes} classes{', with object masks' if summary.has_masks else ''}")
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("images", justify="right")
    for index, (name, count) in enumerate(summary.class_counts.items()):
        table.add_row(str(index), name, str(count))
    return table
