"""``kdcam train`` (a teacher and its students) and ``kdcam experiment`` (colour invariance, teacher capacity).

Live progress on stderr with Rich, a table of final accuracies at the end; ``--json`` gives
JSON lines for scripts. Torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.api.catalogue import DEFAULT_METHODS, EXPERIMENTS, KD_METHODS, RECIPES, default_recipe, parse_methods
from engine.api.results import ExperimentResult, TrainResult
from engine.api.specs import ExperimentSpec, TrainSpec
from engine.errors import KdcamError

DEFAULT_LIST = ",".join(DEFAULT_METHODS)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train", help="train a teacher (or reuse one) and one student per distillation method",
        description="Train the teacher with CE (or reuse a checkpoint named by --teacher), then one student per "
        "method. Checkpoints go to WORKSPACE/checkpoints (best and -last), runs to WORKSPACE/runs.",
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
    """``kd.temperature=2`` -> {"kd": {"temperature": 2.0}}; text values stay text."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        method, dot, name = key.partition(".")
        if not (sep and dot and method and name):
            raise KdcamError(f"--option {item!r}: write METHOD.NAME=VALUE, e.g. kd.temperature=2")
        try:
            value: Any = float(raw)
        except ValueError:
            value = raw
        options.setdefault(method, {})[name] = value
    return options


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise KdcamError("--teachers is empty; give at least one architecture or checkpoint")
    return names


def _train(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, run_job

    spec = TrainSpec(
        workspace=args.workspace, dataset=args.dataset, teacher=args.teacher, student=args.student,
        methods=parse_methods(args.methods), recipe=args.recipe or default_recipe(args.dataset), epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, width=args.width, teacher_width=args.teacher_width, seed=args.seed,
        device=args.device, compile=args.compile,
        resume=args.resume, method_options=parse_options(args.option),
    )
    summary = run_job(spec, as_json=args.json)
    if args.json:
        print_json(summary)
    else:
        print_suite(summary)
    return 0


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
    from rich.table import Table

    from engine.cli.output import console

    table = Table(title=f"{summary.dataset} · recipe {summary.recipe} · seed {summary.seed}")
    for column in ("role", "method", "checkpoint", "best test acc", "vs si"):
        table.add_column(column, justify="right" if "acc" in column or column == "vs si" else "left")
    teacher = summary.teacher
    table.add_row("teacher", "ce" + (" (reused)" if teacher.reused else ""), teacher.name,
                  _pct(teacher.accuracy), "")
    baseline = next((s.accuracy for s in summary.students if s.method == "si"), None)
    for student in summary.students:
        delta = "" if baseline is None or student.accuracy is None or student.method == "si" \
            else f"{student.accuracy - baseline:+.2%}"
        table.add_row("student", student.method, student.name, _pct(student.accuracy), delta)
    console().print(table)


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
