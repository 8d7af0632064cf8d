"""``kdcam eval CKPT... --dataset D``: top-1/top-5, per-class accuracy and calibration of checkpoints.

A Rich table for people (the stored accuracy beside the measured one), ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.api.results import Evaluation


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate checkpoints: top-1/top-5, per-class accuracy, calibration (ECE)",
        description="Evaluate stored checkpoints on a dataset split with each checkpoint's own normalisation. "
        "ECE uses 15 equal-width confidence bins. The accuracy stored in the checkpoint is shown alongside.",
    )
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint names")
    parser.add_argument("--dataset", required=True, metavar="D", help="dataset spec, e.g. cifar100 or shapes")
    parser.add_argument("--split", default="test", choices=("train", "test"), help="split (default: test)")
    parser.add_argument("--batch", type=int, default=256, metavar="B", help="images per batch (default: 256)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--per-class", action="store_true", help="also print each class's accuracy")
    parser.add_argument("--json", action="store_true", help="print a JSON array of results")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from engine.api.specs import EvalSpec
    from engine.cli.output import console, print_json, run_job

    spec = EvalSpec(workspace=args.workspace, checkpoints=tuple(args.checkpoints), dataset=args.dataset,
                    split=args.split, batch_size=args.batch, device=args.device)
    results: tuple[Evaluation, ...] = run_job(spec, quiet=args.json)
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    from rich.table import Table

    table = Table(title=f"{args.dataset} ({args.split}, {results[0].n} images)")
    for column in ("checkpoint", "top-1", "top-5", "ECE", "stored acc"):
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for r in results:
        table.add_row(r.checkpoint, _pct(r.top1), _pct(r.top5), f"{r.ece:.4f}", _pct(r.stored_accuracy))
    out = console()
    out.print(table)
    if args.per_class:
        classes = Table(title="per-class top-1")
        classes.add_column("class")
        for r in results:
            classes.add_column(r.checkpoint, justify="right")
        for k, first in enumerate(results[0].per_class):
            classes.add_row(f"{first.name} ({first.n})",
                            *(_pct(r.per_class[k].accuracy if k < len(r.per_class) else None) for r in results))
        out.print(classes)
    return 0


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.2%}"
