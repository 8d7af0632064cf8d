"""``kdcam checkpoints import|list|inspect|rename|delete|doctor``: the workspace's checkpoint store.

Rich tables for people, ``--json`` for scripts. Torch is imported only inside the
handlers that need it (import, inspect), so listing stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.api.catalogue import ROLES
from engine.api.checkpoints import CheckpointMeta, meta_path, read_meta, scan_checkpoints, weights_path
from engine.api.display import percent
from engine.api.workspace import Workspace
from engine.cli.commands import command_group
from engine.errors import KdcamError


def register(subparsers: argparse._SubParsersAction) -> None:
    actions = command_group(
        subparsers, "checkpoints", help="import, list, inspect, rename, delete and check (doctor) checkpoints",
        description="The workspace's checkpoint store (WORKSPACE/checkpoints: NAME.safetensors + NAME.json).",
    )

    imp = actions.add_parser(
        "import", help="import a .pt/.pth/.th/.safetensors file",
        description="Import weights without running code from the file (weights_only). The architecture, "
        "width and class count are inferred from tensor names and shapes unless given.",
    )
    imp.add_argument("path", help="checkpoint file")
    imp.add_argument("--name", help="checkpoint name (default: the file name)")
    how = imp.add_mutually_exclusive_group()
    how.add_argument("--arch", help="a zoo architecture (resnet20, resnet20a, wrn_40_2, ...) or a torchvision "
                     "classifier (tv:resnet18, tv:vit_b_16, ...); default: inferred from the tensors")
    how.add_argument("--model-def", metavar="FILE.py:NAME",
                     help="your own nn.Module class or factory function (runs that file; its content is "
                     "copied into the store and trusted)")
    imp.add_argument("--model-args", type=_model_args, metavar="JSON",
                     help='keyword arguments of the --model-def class or function, e.g. \'{"num_classes": 100}\'')
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

    tru = actions.add_parser(
        "trust", help="allow a checkpoint's model code (--model-def) to run on this machine",
        description="Show the checkpoint's stored model code (path and sha256) and, once confirmed, record that "
        "exact content as trusted in your config directory ($KDCAM_CONFIG_DIR, else $XDG_CONFIG_HOME/kdcam or "
        "~/.config/kdcam). Any change to the file needs trusting again.",
    )
    tru.add_argument("name")
    tru.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (for scripts)")
    tru.add_argument("--revoke", action="store_true", help="withdraw the trust instead")
    tru.set_defaults(handler=_trust)

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


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def _model_args(text: str) -> dict[str, Any]:
    from engine.api.model_code import parse_model_args

    try:
        return parse_model_args(text)
    except KdcamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checkpoints(args: argparse.Namespace) -> Path:
    return Workspace.open(args.workspace).checkpoints


def _import(args: argparse.Namespace) -> int:
    from engine.api.specs import ImportSpec
    from engine.cli.output import console, run_job

    workspace = Workspace.open(args.workspace)
    spec = ImportSpec(
        workspace=str(workspace.root), path=str(Path(args.path).expanduser().absolute()), name=args.name,
        arch=args.arch, model_def=args.model_def, model_args=args.model_args, num_classes=args.num_classes,
        width=args.width,
        dataset=args.dataset, mean=args.mean, std=args.std, role=args.role,
    )
    imported: CheckpointMeta = run_job(spec, as_json=args.json)
    if args.json:
        sys.stdout.write(_one_line(imported.to_dict()) + "\n")
        return 0
    console().print(
        f"[green]imported[/] [bold]{imported.name}[/]: {_arch_label(imported)}, {imported.num_classes} classes, "
        f"{imported.params or 0:,} parameters", highlight=False
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json, print_unreadable

    directory = _checkpoints(args)
    metas, broken = scan_checkpoints(directory)
    _warn_problems(directory)
    if args.json:
        print_json([m.to_dict() for m in metas])
    elif not metas:
        console().print(f"no readable checkpoints in {directory}")
    else:
        console().print(_table(directory, metas))
    print_unreadable("checkpoint", [(b.name, b.path, b.reason) for b in broken])
    return 1 if broken else 0


def _table(directory: Path, metas: list[CheckpointMeta]) -> Any:
    """Checkpoint groups (best with its -last twin folded in), one line each at any terminal width."""
    from engine.cli.output import console
    from engine.cli.tables import checkpoint_table

    return checkpoint_table(directory, metas, console().width)


def _inspect(args: argparse.Namespace) -> int:
    from engine.api.specs import TapsSpec
    from engine.cli.output import console, print_json, run_job

    directory = _checkpoints(args)
    meta = read_meta(directory, args.name)
    if meta.model_def:  # its taps need its code to run, which inspect never does
        taps: dict[str, Any] = {"taps": [], "default_cam_tap": None, "default_hint_tap": None}
        report = {**meta.to_dict(), **taps, "files": _files(directory, meta.name),
                  "model_code": _model_code(directory, meta)}
    else:
        model_taps = run_job(TapsSpec(workspace=args.workspace, name=meta.name), quiet=True)
        report = {**meta.to_dict(), **model_taps.to_dict(), "files": _files(directory, meta.name)}
    if args.json:
        print_json(report)
        return 0
    from rich.table import Table

    out = console()
    summary = Table(title=f"checkpoint {meta.name}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for key in ("arch", "width", "num_classes", "in_channels", "input_size", "resize", "params", "mean", "std",
                "dataset", "role", "method", "teacher", "accuracy", "recipe", "epochs", "run_id", "created",
                "source_path", "source_sha256", "model_def", "model_def_sha256", "model_args"):
        value = report.get(key)
        if value is not None:
            summary.add_row(key, _show(key, value))
    out.print(summary)
    if meta.model_def:
        code = report["model_code"]
        out.print(f"[bold]model code:[/] {code['path']} ({code['status']}; inspect never runs it)", highlight=False)
        if code["status"] == "not trusted":
            out.print(f"analyse, train or list its taps after `kdcam checkpoints trust {meta.name}`", highlight=False)
        return 0
    tap_table = Table(title=f"feature taps at {meta.input_size}x{meta.input_size}")
    for column in ("tap", "channels", "height", "width", "default for"):
        tap_table.add_column(column)
    for tap in report["taps"]:
        roles = [what for what, key in (("CAM", "default_cam_tap"), ("hints", "default_hint_tap"))
                 if report[key] == tap["name"]]
        tap_table.add_row(tap["name"], str(tap["channels"]), str(tap["height"]), str(tap["width"]), ", ".join(roles))
    out.print(tap_table)
    if meta.class_names:
        out.print(f"[bold]classes:[/] {', '.join(meta.class_names)}", highlight=False)
    return 0


def _trust(args: argparse.Namespace) -> int:
    from engine.api import trust
    from engine.api.model_code import stored_source
    from engine.cli.output import confirmed, console

    directory = _checkpoints(args)
    meta = read_meta(directory, args.name)
    if not meta.model_def:
        raise KdcamError(f"checkpoint {args.name!r} has no model code to trust (it is a built-in {meta.arch})")
    path, source, def_name = stored_source(directory, meta)
    out = console()
    if args.revoke:
        removed = trust.revoke(source.sha256)
        out.print(f"{'revoked' if removed else 'was not trusted:'} {path} (sha256 {source.sha256})", highlight=False)
        return 0
    lines = source.data.count(b"\n")
    out.print(f"checkpoint [bold]{meta.name}[/] runs [bold]{def_name}[/] from\n  {path}\n  sha256 {source.sha256}\n"
              f"({lines} lines). Trusting it lets kdcam execute this file as you.", highlight=False)
    if not confirmed("trust this exact content?", args.yes,
                     f"refusing to trust {path} without confirmation; read it, then pass --yes", "not trusted"):
        return 1
    trust.trust(source.sha256, str(path))
    out.print(f"trusted (recorded in {trust.trust_path()})", highlight=False)
    return 0


def _rename(args: argparse.Namespace) -> int:
    from engine.api.specs import RenameCheckpointSpec
    from engine.cli.output import console, run_job

    run_job(RenameCheckpointSpec(workspace=args.workspace, name=args.old, new_name=args.new), quiet=True)
    console().print(f"renamed [bold]{args.old}[/] to [bold]{args.new}[/]")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from engine.api.specs import DeleteCheckpointSpec
    from engine.cli.output import confirmed, console, run_job

    read_meta(_checkpoints(args), args.name)  # a clear error for unknown names, before asking
    if not confirmed(f"delete checkpoint {args.name!r} (both files)?", args.yes,
                     f"refusing to delete {args.name!r} without confirmation; pass --yes", "kept"):
        return 1
    run_job(DeleteCheckpointSpec(workspace=args.workspace, name=args.name), quiet=True)
    console().print(f"deleted [bold]{args.name}[/]")
    return 0


def _model_code(directory: Path, meta: CheckpointMeta) -> dict[str, Any]:
    """Where the model code is and whether it may run, found without running it."""
    from engine.api import trust
    from engine.api.model_code import UntrustedModelCode, stored_source

    try:
        path, source, _ = stored_source(directory, meta)
    except UntrustedModelCode as exc:
        return {"path": meta.model_def, "sha256": meta.model_def_sha256, "status": "refused", "problem": str(exc)}
    status = "trusted" if trust.is_trusted(source.sha256) else "not trusted"
    return {"path": str(path), "sha256": source.sha256, "status": status}


def _tell(message: str) -> None:
    sys.stderr.write(message + "\n")


def _warn_problems(directory: Path) -> None:
    """One line on stderr when the store holds files no listed checkpoint accounts for."""
    from engine.api.integrity import scan_store

    problems = scan_store(directory).problems()
    if problems:
        sys.stderr.write(f"warning: {len(problems)} file(s) in {directory} are not part of a complete checkpoint "
                         f"(orphaned, mismatched or half-written); run `kdcam checkpoints doctor` to see them\n")


def _doctor(args: argparse.Namespace) -> int:
    from engine.api.integrity import scan_store
    from engine.api.specs import RepairCheckpointsSpec
    from engine.cli.output import console, print_json, run_job

    directory = _checkpoints(args)
    report = scan_store(directory)
    problems = report.problems()
    actions: list[str] = []
    if args.repair and problems:
        actions = run_job(RepairCheckpointsSpec(workspace=args.workspace), quiet=True)
        after = scan_store(directory)
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
        out.print(f"{directory}: consistent, {len(after.complete)} complete checkpoint(s)", highlight=False)
        return 0
    out.print("run `kdcam checkpoints doctor --repair` to complete interrupted changes and move orphans to "
              f"{directory / '.orphans'} (nothing is deleted)", highlight=False)
    return 1


def _files(directory: Path, name: str) -> dict[str, Any]:
    weights = weights_path(directory, name)
    return {"weights": str(weights), "weights_bytes": weights.stat().st_size, "meta": str(meta_path(directory, name))}


def _arch_label(meta: CheckpointMeta) -> str:
    from engine.cli.tables import arch_label

    return arch_label(meta)


def _show(key: str, value: Any) -> str:
    if key == "accuracy":
        return percent(value, 2)
    if key == "params":
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _one_line(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
