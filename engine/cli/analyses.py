"""``kdcam analyses list|inspect|delete``: the finished analyses of a workspace (``analyses/ID``), read
through the contract (engine.api.analyses); unreadable ones are listed with the reason. Torch-free."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from engine.api.analyses import (
    RESULTS_FILE,
    AnalysisInfo,
    analysis_dir,
    load_results,
    scan_analyses,
)
from engine.api.display import KEEP, Column
from engine.api.workspace import Workspace
from engine.cli.commands import command_group
from engine.errors import KdcamError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        subparsers, "analyses", help="list, inspect and delete analyses",
        description="Finished analyses under WORKSPACE/analyses: which teacher, students, data and CAM method.",
    )

    lst = actions.add_parser("list", help="every analysis, newest first")
    lst.add_argument("--json", action="store_true", help="print JSON: analyses and unreadable ones with the reason")
    lst.set_defaults(handler=_list)

    ins = actions.add_parser("inspect", help="an analysis's models, student-vs-teacher metrics and checks")
    ins.add_argument("analysis", help="analysis id (see kdcam analyses list)")
    ins.add_argument("--json", action="store_true", help="print its results.json (validated)")
    ins.set_defaults(handler=_inspect)

    rm = actions.add_parser("delete", help="delete an analysis (its exports are kept)")
    rm.add_argument("analysis", help="analysis id")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=_delete)


def analysis_summary(info: AnalysisInfo) -> dict[str, Any]:
    return {"id": info.id, "path": str(info.path), "created": info.created, "teacher": info.teacher,
            "students": list(info.students), "dataset": info.dataset, "n": info.n, "method": info.method,
            "target": info.target, "bands": dict(info.bands)}


def _bands(info: AnalysisInfo) -> str:
    """How many students fall in each band, e.g. ``2 good, 1 problematic``."""
    counts: dict[str, int] = {}
    for band in info.bands.values():
        counts[band] = counts.get(band, 0) + 1
    return ", ".join(f"{n} {band.lower()}" for band, n in counts.items()) or "-"


def _list(args: argparse.Namespace) -> int:
    from engine.cli.tables import print_listing

    workspace = Workspace.open(args.workspace)
    infos, broken = scan_analyses(workspace)
    return print_listing("analyses", "analysis", workspace.analyses, infos,
                         [(b.id, b.path, b.reason) for b in broken], as_json=args.json, summary=analysis_summary,
                         columns=_columns)


def _columns(infos: Sequence[AnalysisInfo]) -> list[Column]:
    return [
        Column("id", tuple(i.id for i in infos), KEEP, shrink=True, min_width=16),
        Column("teacher", tuple(i.teacher for i in infos), 8, shrink=True, min_width=14),
        Column("students", tuple(str(len(i.students)) for i in infos), 7),
        Column("cam", tuple(i.method for i in infos), 9),
        Column("target", tuple(i.target for i in infos), 3),
        Column("n", tuple(str(i.n) for i in infos), 4),
        Column("dataset", tuple(i.dataset for i in infos), 2, shrink=True, min_width=12, middle=False),
        Column("bands", tuple(_bands(i) for i in infos), 5, shrink=True, min_width=12, middle=False),
        Column("created", tuple(i.created.replace("T", " ")[5:16] or "-" for i in infos), 1),
    ]


def _inspect(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json
    from engine.cli.summaries import print_analysis

    results = load_results(args.workspace, args.analysis)  # validates, or one error naming file and field
    path = analysis_dir(args.workspace, args.analysis)
    if args.json:
        print_json(json.loads((path / RESULTS_FILE).read_text()))
        return 0
    print_analysis(results, str(path))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from engine.api.specs import DeleteAnalysisSpec
    from engine.cli.output import confirmed, console, run_job

    workspace = Workspace.open(args.workspace)
    path = analysis_dir(workspace, args.analysis)
    if path.is_symlink() or not path.is_dir():
        known = ", ".join(i.id for i in scan_analyses(workspace)[0]) or "none"
        raise KdcamError(f"no analysis {args.analysis!r} in {workspace.analyses} (known: {known})")
    if not confirmed(f"delete analysis {args.analysis!r} ({path})?", args.yes,
                     f"refusing to delete analysis {args.analysis!r} without confirmation; pass --yes", "kept"):
        return 1
    run_job(DeleteAnalysisSpec(workspace=str(workspace.root), analysis=args.analysis), quiet=True)
    console().print(f"deleted analysis [bold]{args.analysis}[/]", highlight=False)
    return 0
