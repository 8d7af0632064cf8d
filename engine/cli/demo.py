"""``kdcam demo``: the whole pipeline on the embedded shapes dataset, no download, CPU-friendly."""

from __future__ import annotations

import argparse

from engine.api.catalogue import parse_methods


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train, analyse and report on the embedded shapes dataset (minutes on a CPU)",
        description="Train a small VGG-16 teacher and one VGG-11 student per KD method on the embedded "
        "shapes dataset, compare their Grad-CAMs with the teacher's, and export a report into the workspace.",
    )
    parser.add_argument("--methods", type=parse_methods, default=None,
                        help="comma-separated KD methods (default: all seven)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true", help="skip the HTML/PNG/CSV report")
    parser.add_argument("--json", action="store_true", help="JSON lines of progress, then the result")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from engine.api.specs import DemoSpec
    from engine.cli.analyze import print_analysis
    from engine.cli.output import console, print_json, run_job
    from engine.cli.train import print_suite

    options = {"methods": args.methods} if args.methods else {}
    spec = DemoSpec(workspace=args.workspace, seed=args.seed, export=not args.no_export, **options)
    result = run_job(spec, as_json=args.json)
    if args.json:
        print_json({"event": "result", **result.to_dict()})
        return 0
    from engine.api.analyses import load_results

    print_suite(result.train)
    main = result.analyses[0]
    print_analysis(load_results(result.workspace, main.id), main.path)
    out = console()
    if result.report:
        out.print(f"[green]report:[/] {result.report.path}/report.html", highlight=False)
    out.print(f"browse it: [bold]kdcam-tui --workspace {result.workspace}[/]", highlight=False)
    return 0
