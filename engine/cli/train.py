"""``kdcam train`` (a teacher and its students) and ``kdcam experiment`` (colour invariance, teacher capacity).

Live progress on stderr with Rich, a table of final accuracies at the end; ``--json`` gives
JSON lines for scripts. Torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.api.catalogue import (
    DEFAULT_METHODS,
    EXPERIMENTS,
    KD_METHODS,
    RECIPES,
    default_recipe,
    parse_method_options,
    parse_methods,
)
from engine.api.catalogue import parse_seeds as catalogue_seeds
from engine.api.display import KEEP, Column
from engine.api.results import ExperimentResult, SeedGroupResult, TrainResult
from engine.api.specs import ExperimentSpec, TrainSpec
from engine.cli import launch
from engine.errors import CommandCancelled, KdcamError

DEFAULT_LIST = ",".join(DEFAULT_METHODS)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train", help="train a teacher (or reuse one) and one student per distillation method",
        description="Train the teacher with CE (or reuse a checkpoint named by --teacher), then one student per "
        "method. Checkpoints go to WORKSPACE/checkpoints (best and -last) under names no other run holds (NAME-2, "
        "NAME-3, ... when NAME is taken: nothing is replaced), runs to WORKSPACE/runs.",
    )
    train.add_argument("--dataset", default="shapes", help="dataset spec (default: shapes, embedded)")
    train.add_argument("--teacher", default="vgg16", help="teacher architecture or existing checkpoint name")
    train.add_argument("--student", default="vgg11", help="student architecture (default: vgg11)")
    train.add_argument("--methods", default=DEFAULT_LIST,
                       help=f"comma-separated methods of {', '.join(KD_METHODS)} (default: {DEFAULT_LIST})")
    train.add_argument("--recipe", choices=RECIPES, help="default: demo on shapes, quick otherwise")
    _common(train)
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument("--lr", type=float, help="override the recipe's learning rate")
    train.add_argument("--compile", action="store_true", help="torch.compile the training step")
    train.add_argument("--resume", metavar="RUN", help="continue an interrupted run (a run id under runs/)")
    train.add_argument("--sync-bn", action="store_true",
                       help="SyncBatchNorm across torchrun ranks (CUDA only; no effect in one process)")
    launch.add_flags(train)
    train.add_argument("--seeds", metavar="S1,S2,...", type=parse_seeds,
                       help="train the whole suite once per seed (e.g. 0,1,2), for means and intervals over seeds")
    train.add_argument("--validation", type=float, default=0.1, metavar="F",
                       help="share of the training images held out to choose the best epoch (default: 0.1; "
                       "0 chooses on the test split)")
    train.set_defaults(handler=_train)

    exp = subparsers.add_parser(
        "experiment", help="color-invariance or teacher-capacity",
        description="color-invariance: fine-tune the teacher on colour-jittered images, distil a CRD student from "
        "it, and compare clean vs jittered test accuracy with the plain teacher/student. teacher-capacity: "
        "distil the same student from each teacher (default vgg19 and vgg16) with the same method.",
    )
    exp.add_argument("experiment", choices=EXPERIMENTS)
    exp.add_argument("--dataset", default="shapes", help="dataset spec (default: shapes)")
    exp.add_argument("--teachers", help="comma-separated teacher architectures or checkpoints "
                     "(default: vgg16 for color-invariance, vgg19,vgg16 for teacher-capacity)")
    exp.add_argument("--student", default="vgg11")
    exp.add_argument("--method", default="", help="distillation method (default: crd / kd)")
    exp.add_argument("--recipe", default="demo", choices=RECIPES, help="default: demo")
    _common(exp)
    exp.set_defaults(handler=_experiment)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, help="students' channel-width multiplier (default: the recipe's)")
    parser.add_argument("--teacher-width", type=float, help="the teacher's (default: the recipe's, or --width)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="override a method's weight/temperature, e.g. kd.temperature=2 (repeatable)")
    parser.add_argument("--json", action="store_true", help="JSON lines: events, then the summary")


def parse_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--option kd.temperature=2`` (repeatable) -> {"kd": {"temperature": 2.0}}."""
    try:
        return parse_method_options(items)
    except KdcamError as exc:
        raise KdcamError(f"--{exc}") from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise KdcamError("--teachers is empty; give at least one architecture or checkpoint")
    return names


#: options that shape a run; a resumed run continues exactly as recorded, so these cannot change it
RUN_SHAPING = ("dataset", "teacher", "student", "methods", "recipe", "epochs", "seed", "width", "teacher_width",
               "batch_size", "lr", "option", "validation", "seeds")


def _train(args: argparse.Namespace) -> int:
    from engine.cli.launch import launched, run_on_rank
    from engine.cli.output import print_json

    if launched(args):
        return 0

    if args.resume:
        _check_resume_options(args)
    spec = TrainSpec(
        workspace=args.workspace, dataset=args.dataset, teacher=args.teacher, student=args.student,
        methods=parse_methods(args.methods), recipe=args.recipe or default_recipe(args.dataset),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
        teacher_width=args.teacher_width, seed=args.seed, device=args.device, compile=args.compile,
        resume=args.resume, method_options=parse_options(args.option),
        sync_bn=args.sync_bn,
        validation=args.validation, seeds=args.seeds or (),
    )
    try:
        summary = run_on_rank(spec, as_json=args.json)
    except CommandCancelled:
        raise CommandCancelled(_cancelled_message(args)) from None
    if summary is None:  # a rank other than 0: rank 0 reports
        return 0
    if args.json:
        print_json(summary)
    elif isinstance(summary, SeedGroupResult):
        for run in summary.runs:
            print_suite(run)
    else:
        print_suite(summary)
    return 0


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2``, refused by argparse (with the catalogue's message) when malformed."""
    try:
        return catalogue_seeds(text)
    except KdcamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_resume_options(args: argparse.Namespace) -> None:
    """``--resume`` continues the run as recorded (its learning-rate schedule spans the recorded epochs);
    an option that would change it is refused rather than silently ignored."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    register(subparsers)
    train = subparsers.choices["train"]
    changed = [name for name in RUN_SHAPING if getattr(args, name) != train.get_default(name)]
    if changed:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
        raise KdcamError(f"--resume {args.resume} continues that run exactly as it was recorded; {flags} cannot "
                         "change it. Resume without them, or start a new run with the new settings.")


def _cancelled_message(args: argparse.Namespace) -> str:
    """Which run Ctrl-C stopped (the newest one this process wrote) and how to continue it."""
    import os
    import shlex

    from engine.api.runs import scan_runs

    mine = [run for run in scan_runs(args.workspace)[0] if run.status.pid == os.getpid()]
    if not mine:
        return "cancelled before a run started; nothing to resume"
    run = mine[0]  # newest first
    if not run.resumable:
        return f"cancelled run {run.run_id} before its first epoch finished; nothing to resume, start it again"
    workspace = "" if args.workspace == "." else f" --workspace {shlex.quote(args.workspace)}"
    return (f"cancelled run {run.run_id} after epoch {run.last_epoch}; resume with: "
            f"kdcam{workspace} train --resume {run.run_id}")


def _experiment(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, run_job

    default_teachers = "vgg16" if args.experiment == "color-invariance" else "vgg19,vgg16"
    spec = ExperimentSpec(
        workspace=args.workspace, experiment=args.experiment, dataset=args.dataset,
        teachers=_names(args.teachers or default_teachers), student=args.student, method=args.method,
        recipe=args.recipe, epochs=args.epochs, width=args.width, teacher_width=args.teacher_width,
        seed=args.seed, device=args.device,
        method_options=parse_options(args.option),
    )
    result = run_job(spec, as_json=args.json)
    if args.json:
        print_json(result)
    else:
        _print_experiment(result)
    return 0


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def print_suite(summary: TrainResult) -> None:
    """Test accuracy at the epoch validation chose and at the last epoch, and each student's
    difference from ``si`` (one seed: intervals come from ``kdcam analyze`` and ``kdcam aggregate``).
    One line per model at any width: names are shortened from the middle, columns dropped."""
    from engine.cli.output import console
    from engine.cli.tables import fitted_table

    teacher = summary.teacher
    baseline = next((s.accuracy for s in summary.students if s.method == "si"), None)
    rows = [("teacher", teacher.name, teacher.val_accuracy, teacher.accuracy, teacher.last_accuracy, "")]
    for student in summary.students:
        change = "" if baseline is None or student.accuracy is None or student.method == "si" \
            else f"{student.accuracy - baseline:+.2%}"
        rows.append((student.method, student.name, student.val_accuracy, student.accuracy,
                     student.last_accuracy, change))
    model, name, val, best, last, delta = zip(*rows, strict=True)
    columns = [
        Column("model", model, 9, shrink=True, min_width=7, middle=False),
        Column("checkpoint", name, KEEP, shrink=True, min_width=20),
        Column("val acc", tuple(_pct(v) for v in val), 5),
        Column("test acc", tuple(_pct(v) for v in best), 10),
        Column("last epoch", tuple(_pct(v) for v in last), 4),
        Column("vs si", delta, 8),
    ]
    title = f"{summary.dataset} · recipe {summary.recipe} · seed {summary.seed}"
    caption = "test acc: at the epoch chosen on validation; last epoch: at the final one" + \
        ("; the teacher was reused from the store" if teacher.reused else "")
    console().print(fitted_table(title, columns, console().width, caption))
    if baseline is not None and len(summary.students) > 1:
        console().print("vs si: this seed's test accuracies, without an interval; kdcam analyze pairs them per image "
                        "(95% intervals), kdcam aggregate over seeds", style="dim", highlight=False)


def _print_experiment(result: ExperimentResult) -> None:
    from rich.table import Table

    from engine.cli.output import console

    rows = result.rows
    table = Table(title=f"{result.experiment} · method {result.method}")
    for column in rows[0] if rows else ():
        table.add_column(column)
    for row in rows:
        table.add_row(*(_pct(v) if isinstance(v, float) else str(v) for v in row.values()))
    console().print(table)
    if result.jitter is not None:
        spread = result.jitter
        console().print(f"drop = clean − jittered accuracy. Each test image is jittered once, the same for every "
                        f"model: brightness ×(1 ± {spread['brightness']:g}), contrast ×(1 ± {spread['contrast']:g}), "
                        f"saturation ×(1 ± {spread['saturation']:g}), hue ± {spread['hue'] / 2:g} turn.")
    if not rows:
        console().print(json.dumps(result.to_dict()))
