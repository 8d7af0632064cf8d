"""``kdcam demo``: the whole pipeline on the embedded shapes dataset, no download, CPU-friendly."""

from __future__ import annotations

import argparse
import shlex

from engine.api.catalogue import parse_methods


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train, analyse and report on the embedded shapes dataset (minutes on a CPU)",
        description="Distil one small VGG-11 student per KD method from a small VGG-16 teacher (the one kdcam "
        "ships, or --train-teacher) on the embedded shapes dataset, compare their Grad-CAMs with the teacher's "
        "and with the independent si student's, and export a report into the workspace.",
    )
    parser.add_argument("--methods", type=parse_methods, default=None,
                        help="comma-separated KD methods (default: all seven)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true", help="skip the HTML/PNG/CSV report")
    parser.add_argument("--train-teacher", action="store_true",
                        help="train the teacher (40 epochs) instead of using the one kdcam ships, which was made "
                        "by the same command")
    parser.add_argument("--json", action="store_true", help="JSON lines of progress, then the result")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from engine.api.specs import DemoSpec
    from engine.cli.output import console, print_json, run_job
    from engine.cli.summaries import print_analysis
    from engine.cli.train import print_suite

    options = {"methods": args.methods} if args.methods else {}
    spec = DemoSpec(workspace=args.workspace, seed=args.seed, export=not args.no_export,
                    train_teacher=args.train_teacher, **options)
    result = run_job(spec, as_json=args.json)
    if args.json:
        print_json({"event": "result", **result.to_dict()})
        return 0
    from engine.api.analyses import load_results

    print_suite(result.train)
    for shown in result.analyses[:2]:  # the last stage's maps, then stage 3's (finer: where models differ)
        print_analysis(load_results(result.workspace, shown.id), shown.path)
    out = console()
    if result.report:
        out.print(f"[green]report:[/] {result.report.path}/report.html", highlight=False)
    out.print(f"browse it: [bold]{tui_command()} --workspace {shlex.quote(str(result.workspace))}[/]",
              highlight=False)
    return 0


def tui_command() -> str:
    """How to start the TUI from this shell: ``kdcam-tui`` when it is on PATH, else the script installed
    beside this Python (``.venv/bin/kdcam-tui``, relative when below the current directory)."""
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("kdcam-tui"):
        return "kdcam-tui"
    script = Path(sys.executable).parent / "kdcam-tui"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m tui.app"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return shlex.quote(str(script))
