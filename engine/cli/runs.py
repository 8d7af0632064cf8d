"""``kdcam runs list|inspect|export``: the training runs of a workspace (``runs/ID``), read through the
contract (engine.api.runs); unreadable runs are listed with the reason. Torch-free."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.api.display import KEEP, Column, csv_number, percent
from engine.api.runs import RunInfo, has_validation, read_run, scan_runs
from engine.api.workspace import Workspace
from engine.cli.commands import command_group
from engine.errors import KdcamError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        subparsers, "runs", help="list, inspect and export training runs",
        description="Training runs under WORKSPACE/runs: what each was asked, its state and its epochs.",
    )

    lst = actions.add_parser("list", help="every run, newest first, with its state and best accuracy")
    lst.add_argument("--json", action="store_true", help="print JSON: runs and unreadable runs with the reason")
    lst.set_defaults(handler=_list)

    ins = actions.add_parser("inspect", help="a run's configuration, status and epochs")
    ins.add_argument("run", help="run id (see kdcam runs list)")
    ins.add_argument("--json", action="store_true", help="print JSON")
    ins.set_defaults(handler=_inspect)

    exp = actions.add_parser("export", help="a run's epochs as CSV (one row per epoch)")
    exp.add_argument("run", help="run id")
    exp.add_argument("--csv", action="store_true", required=True, help="CSV: epoch, loss terms, accuracies, lr, ...")
    exp.add_argument("--out", "-o", help="write to this file (default: standard output)")
    exp.set_defaults(handler=_export)


def _epochs(run: RunInfo) -> str:
    total = run.events[-1].epochs if run.events else run.config.spec.get("epochs")
    return f"{run.last_epoch}/{total if isinstance(total, int) else '?'}"


def run_summary(run: RunInfo) -> dict[str, Any]:
    """A run as JSON: identity, state (``interrupted`` when its process is gone) and progress."""
    return {"id": run.run_id, "path": str(run.path), "name": run.config.name, "role": run.config.role,
            "method": run.config.method, "arch": run.config.arch, "teacher": run.config.teacher,
            "dataset": run.config.dataset, "seed": run.config.seed, "state": run.state, "message": run.message,
            "epoch": run.last_epoch, "best_accuracy": run.best_accuracy, "resumable": run.resumable}


def _list(args: argparse.Namespace) -> int:
    from engine.cli.tables import print_listing

    workspace = Workspace.open(args.workspace)
    runs, broken = scan_runs(workspace)
    return print_listing("runs", "run", workspace.runs, runs, [(b.run_id, b.path, b.reason) for b in broken],
                         as_json=args.json, summary=run_summary, columns=_columns, notes=_interrupted)


def _columns(runs: Sequence[RunInfo]) -> list[Column]:
    return [
        # the id is what resume and inspect take: shown whole (it names the checkpoint too)
        Column("run", tuple(r.run_id for r in runs), KEEP),
        Column("state", tuple(r.state for r in runs), 9),
        Column("checkpoint", tuple(r.config.name for r in runs), 0, shrink=True, min_width=16),
        Column("method", tuple(r.config.method or r.config.role for r in runs), 5),
        Column("epochs", tuple(_epochs(r) for r in runs), 6),
        Column("best", tuple(percent(r.best_accuracy, 2, "-") for r in runs), 7),
        Column("dataset", tuple(r.config.dataset or "-" for r in runs), 2, shrink=True, min_width=12, middle=False),
        Column("teacher", tuple(r.config.teacher or "-" for r in runs), 1, shrink=True, min_width=14),
    ]


def _interrupted(runs: Sequence[RunInfo]) -> list[str]:
    """Under the table: why each interrupted run stopped and how to resume it."""
    return [f"[yellow]{run.run_id}:[/] {run.message}" for run in runs if run.state == "interrupted"]


def _inspect(args: argparse.Namespace) -> int:
    from rich.table import Table

    from engine.cli.output import console, print_json

    run = read_run(args.workspace, args.run)
    if args.json:
        print_json({**run_summary(run), "config": run.config.raw, "status": run.status,
                    "events": [e.to_dict() for e in run.events]})
        return 0
    out = console()
    summary = Table(title=f"run {run.run_id}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for key, value in run_summary(run).items():
        if key == "best_accuracy":
            value = percent(value, 2)
        if value not in (None, ""):
            summary.add_row(key, str(value))
    out.print(summary)
    if run.events:
        terms = sorted({term for e in run.events for term in e.losses})
        validation = has_validation(run.events)
        epochs = Table(title="epochs", title_justify="left")
        for column in ("epoch", *terms, "train", *(("val",) if validation else ()), "test", "lr", "img/s"):
            epochs.add_column(column, justify="right", no_wrap=True)
        for e in run.events:
            epochs.add_row(str(e.epoch), *(f"{e.losses[t]:.4f}" if t in e.losses else "-" for t in terms),
                           percent(e.train_acc, 2, "-"), *((percent(e.val_acc, 2, "-"),) if validation else ()),
                           percent(e.test_acc, 2, "-"),
                           f"{e.lr:.3g}" if e.lr is not None else "-",
                           f"{e.images_per_s:.0f}" if e.images_per_s is not None else "-")
        out.print(epochs)
    return 0


def epochs_csv(run: RunInfo) -> str:
    """One row per epoch; accuracies as fractions in [0, 1] (for scripts), numbers without float noise."""
    terms = sorted({term for e in run.events for term in e.losses})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "epochs", *(f"loss_{t}" for t in terms), "train_acc", "val_acc", "test_acc", "lr",
                     "images_per_s", "elapsed_s"])
    for e in run.events:
        writer.writerow([e.epoch, csv_number(e.epochs), *(csv_number(e.losses.get(t)) for t in terms),
                         csv_number(e.train_acc), csv_number(e.val_acc), csv_number(e.test_acc), csv_number(e.lr),
                         csv_number(e.images_per_s), csv_number(e.elapsed)])
    return buffer.getvalue()


def _export(args: argparse.Namespace) -> int:
    from engine.api import atomic
    from engine.cli.output import STDOUT, error_console

    run = read_run(args.workspace, args.run)
    text = epochs_csv(run)
    if not args.out:
        STDOUT.write(text)
        return 0
    path = Path(args.out).expanduser()
    if path.is_dir():
        raise KdcamError(f"--out {path}: is a directory; name the CSV file to write")
    atomic.write_text(path, text)
    error_console().print(f"wrote {len(run.events)} epochs to {path}", highlight=False)
    return 0
