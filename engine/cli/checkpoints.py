"""``kdcam checkpoints import|list|inspect|rename|delete|doctor``: the workspace's checkpoint store.

Rich tables for people, ``--json`` for scripts. Torch is imported only inside the
handlers that need it (import, inspect), so listing stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.checkpoints.meta import ROLES, CheckpointMeta
from engine.checkpoints.store import CheckpointStore
from engine.errors import KdcamError
from engine.workspace import Workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "checkpoints", help="import, list, inspect, rename, delete and check (doctor) checkpoints",
        description="The workspace's checkpoint store (WORKSPACE/checkpoints: NAME.safetensors + NAME.json).",
    )
    parser.set_defaults(handler=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    imp = actions.add_parser(
        "import", help="import a .pt/.pth/.th/.safetensors file",
        description="Import weights without running code from the file (weights_only). The architecture, "
        "width and class count are inferred from tensor names and shapes unless given.",
    )
    imp.add_argument("path", help="checkpoint file")
    imp.add_argument("--name", help="checkpoint name (default: the file name)")
    how = imp.add_mutually_exclusive_group()
    how.add_argument("--arch", help="a kdcam architecture (default: inferred)")
    how.add_argument("--model-def", metavar="FILE.py:CLASS", help="your own nn.Module class (runs that file)")
    imp.add_argument("--num-classes", type=int, help="class count (default: from the classifier)")
    imp.add_argument("--width", type=float, help="width multiplier (default: inferred)")
    imp.add_argument("--dataset", help="dataset the model was trained on (sets normalisation and class names)")
    imp.add_argument("--mean", type=_floats, help="normalisation mean per channel, e.g. 0.507,0.487,0.441")
    imp.add_argument("--std", type=_floats, help="normalisation std per channel, e.g. 0.267,0.256,0.276")
    imp.add_argument("--role", choices=ROLES, default="imported", help="teacher, student or imported (default)")
    imp.add_argument("--json", action="store_true", help="JSON lines: progress events, then the metadata")
    imp.set_defaults(handler=_import)

    lst = actions.add_parser("list", help="list checkpoints")
    lst.add_argument("--json", action="store_true", help="print a JSON array of metadata")
    lst.set_defaults(handler=_list)

    ins = actions.add_parser("inspect", help="metadata, feature taps and provenance of one checkpoint")
    ins.add_argument("name")
    ins.add_argument("--json", action="store_true", help="print JSON")
    ins.set_defaults(handler=_inspect)

    ren = actions.add_parser("rename", help="rename a checkpoint (never overwrites)")
    ren.add_argument("old")
    ren.add_argument("new")
    ren.set_defaults(handler=_rename)

    doc = actions.add_parser(
        "doctor", help="find orphaned, mismatched or half-written checkpoint files (and repair)",
        description="Lists every file of the store that is not part of a complete checkpoint: weights without "
        "metadata, metadata without weights, pairs from two different writes, changes a killed writer left "
        "half-done, temporaries. --repair completes interrupted changes and moves the rest to "
        "checkpoints/.orphans/ (nothing is deleted).",
    )
    doc.add_argument("--repair", action="store_true", help="roll interrupted changes forward; move orphans aside")
    doc.add_argument("--json", action="store_true", help="print JSON")
    doc.set_defaults(handler=_doctor)

    rm = actions.add_parser("delete", help="delete a checkpoint")
    rm.add_argument("name")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=_delete)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def _store(args: argparse.Namespace) -> CheckpointStore:
    return CheckpointStore(Workspace.open(args.workspace).checkpoints)


def _import(args: argparse.Namespace) -> int:
    from engine.cli.output import console, run_job
    from engine.specs import ImportSpec

    workspace = Workspace.open(args.workspace)
    spec = ImportSpec(
        workspace=str(workspace.root), path=str(Path(args.path).expanduser().resolve()), name=args.name,
        arch=args.arch, model_def=args.model_def, num_classes=args.num_classes, width=args.width,
        dataset=args.dataset, mean=args.mean, std=args.std, role=args.role,
    )
    meta = run_job(spec, as_json=args.json)
    if args.json:
        sys.stdout.write(_one_line(meta) + "\n")
        return 0
    imported = CheckpointMeta.from_dict(meta)
    console().print(
        f"[green]imported[/] [bold]{imported.name}[/]: {_arch_label(imported)}, {imported.num_classes} classes, "
        f"{imported.params:,} parameters", highlight=False
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json

    metas = _store(args).list()
    _warn_problems(_store(args).directory)
    if args.json:
        print_json([m.to_dict() for m in metas])
        return 0
    if not metas:
        console().print(f"no checkpoints in {_store(args).directory}")
        return 0
    from rich import box
    from rich.table import Table

    table = Table(title=f"checkpoints in {_store(args).directory}", box=box.SIMPLE_HEAD)
    for column in ("name", "arch", "params", "dataset", "role", "method", "teacher", "acc", "created"):
        # names are never cut; the free-text columns fold when the terminal is narrow
        table.add_column(column, justify="right" if column in ("params", "acc") else "left",
                         no_wrap=column in ("name", "params", "role", "acc"), overflow="fold")
    for m in metas:
        table.add_row(
            m.name, _arch_label(m), f"{m.params:,}" if m.params else "-", m.dataset or "-", m.role,
            m.method or "-", m.teacher or "-", f"{m.accuracy:.2%}" if m.accuracy is not None else "-",
            m.created.replace("T", " ")[5:16],
        )
    console().print(table)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json

    store = _store(args)
    meta = store.meta(args.name)
    report = {**meta.to_dict(), **_model_facts(meta), "files": _files(store, meta.name)}
    if args.json:
        print_json(report)
        return 0
    from rich.table import Table

    out = console()
    summary = Table(title=f"checkpoint {meta.name}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for key in ("arch", "width", "num_classes", "in_channels", "input_size", "params", "mean", "std", "dataset",
                "role", "method", "teacher", "accuracy", "recipe", "epochs", "run_id", "created",
                "source_path", "source_sha256", "model_def"):
        value = report.get(key)
        if value is not None:
            summary.add_row(key, _show(key, value))
    out.print(summary)
    taps = Table(title=f"feature taps at {meta.input_size}x{meta.input_size}")
    for column in ("tap", "channels", "height", "width", "default for"):
        taps.add_column(column)
    for tap in report["taps"]:
        roles = [what for what, key in (("CAM", "default_cam_tap"), ("hints", "default_hint_tap"))
                 if report[key] == tap["name"]]
        taps.add_row(tap["name"], str(tap["channels"]), str(tap["height"]), str(tap["width"]), ", ".join(roles))
    out.print(taps)
    if meta.class_names:
        out.print(f"[bold]classes:[/] {', '.join(meta.class_names)}", highlight=False)
    return 0


def _rename(args: argparse.Namespace) -> int:
    from engine.cli.output import console

    store = _store(args)
    store.on_wait = _tell
    store.rename(args.old, args.new)
    console().print(f"renamed [bold]{args.old}[/] to [bold]{args.new}[/]")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from engine.cli.output import console

    store = _store(args)
    store.meta(args.name)  # a clear error for unknown names, before asking
    if not args.yes:
        if not sys.stdin.isatty():
            raise KdcamError(f"refusing to delete {args.name!r} without confirmation; pass --yes")
        answer = input(f"delete checkpoint {args.name!r} (both files)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console().print("kept")
            return 1
    store.delete(args.name)
    console().print(f"deleted [bold]{args.name}[/]")
    return 0


def _tell(message: str) -> None:
    sys.stderr.write(message + "\n")


def _warn_problems(directory: Path) -> None:
    """One line on stderr when the store holds files no listed checkpoint accounts for."""
    from engine.checkpoints.integrity import scan_store

    problems = scan_store(directory).problems()
    if problems:
        sys.stderr.write(f"warning: {len(problems)} file(s) in {directory} are not part of a complete checkpoint "
                         f"(orphaned, mismatched or half-written); run `kdcam checkpoints doctor` to see them\n")


def _doctor(args: argparse.Namespace) -> int:
    from engine.checkpoints.integrity import scan_store
    from engine.cli.output import console, print_json

    store = _store(args)
    store.on_wait = _tell
    report = scan_store(store.directory)
    problems = report.problems()
    actions: list[str] = []
    if args.repair and problems:
        with store.writing():  # rolls every journal forward
            actions += [f"completed the interrupted change {p.name}" for p in report.pending if not p.exists()]
            actions += [f"dropped {p.path.name}, an uncommitted copy (its change never started)"
                        for p in report.temporaries if not p.path.exists()]
            left = scan_store(store.directory)
            aside = [*left.pending, *(p.path for p in left.orphans + left.temporaries)]
            if aside:
                target = store.quarantine(aside)
                actions += [f"moved {path.name} to {target}" for path in aside]
        after = scan_store(store.directory)
    else:
        after = report
    if args.json:
        print_json({"complete": report.complete, "consistent": after.consistent, "actions": actions,
                    "problems": [{"path": str(p.path), "kind": p.kind, "detail": p.detail} for p in problems]})
        return 0 if after.consistent else 1
    out = console()
    for problem in problems:
        out.print(f"[yellow]{problem.kind}[/] {problem.path}: {problem.detail}", highlight=False)
    for action in actions:
        out.print(f"[green]repaired[/] {action}", highlight=False)
    if after.consistent:
        out.print(f"{store.directory}: consistent, {len(after.complete)} complete checkpoint(s)", highlight=False)
        return 0
    out.print("run `kdcam checkpoints doctor --repair` to complete interrupted changes and move orphans to "
              f"{store.directory / '.orphans'} (nothing is deleted)", highlight=False)
    return 1


def _model_facts(meta: CheckpointMeta) -> dict[str, Any]:
    """Taps (channels and size at the checkpoint's input size), without loading the weights."""
    import torch

    from engine.checkpoints.building import build_from_meta

    if meta.model_def:
        model = build_from_meta(meta)
    else:
        with torch.device("meta"):
            model = build_from_meta(meta)
    taps = model.tap_info(meta.input_size, meta.in_channels)
    return {
        "taps": [{"name": t.name, "channels": t.channels, "height": t.height, "width": t.width} for t in taps],
        "default_cam_tap": model.default_cam_tap,
        "default_hint_tap": model.default_hint_tap,
    }


def _files(store: CheckpointStore, name: str) -> dict[str, Any]:
    from engine.checkpoints.meta import meta_path, weights_path

    weights = weights_path(store.directory, name)
    return {"weights": str(weights), "weights_bytes": weights.stat().st_size, "meta": str(meta_path(store.directory, name))}


def _arch_label(meta: CheckpointMeta) -> str:
    if meta.model_def:
        return f"{meta.arch} (model-def)"
    return meta.arch if meta.width == 1 else f"{meta.arch} x{meta.width:g}"


def _show(key: str, value: Any) -> str:
    if key == "accuracy":
        return f"{value:.2%}"
    if key == "params":
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _one_line(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
