"""``kdcam export ANALYSIS``: turn an analysis into a report folder (HTML, PNG, CSV, JSON).

Nothing heavy is imported here: the export job itself needs only numpy and matplotlib,
and they are imported when the command runs.
"""

from __future__ import annotations

import argparse

from engine.api.catalogue import EXPORT_FORMATS
from engine.api.specs import ExportSpec
from engine.errors import KdcamError

FORMATS = EXPORT_FORMATS  # every format; the default exports them all


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an analysis as an offline report folder (report.html, figures, CSV, JSON)",
        description="Write analyses/ANALYSIS as exports/NAME/: one self-contained report.html, PNG figures, "
        "CSV tables and results.json, marked as kdcam's by kdcam-export.json. The folder is built under a "
        "temporary name and renamed into place; --overwrite swaps it with the previous export in one step.",
    )
    parser.add_argument("analysis", metavar="ANALYSIS", help="analysis id (a directory under analyses/)")
    parser.add_argument("--out", metavar="PATH",
                        help="destination folder (default: exports/ANALYSIS); a bare NAME means exports/NAME, "
                        "other relative paths are taken from the workspace")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help=f"comma-separated subset of {','.join(FORMATS)} (default: all)")
    parser.add_argument("--examples", type=int, default=8, metavar="K",
                        help="images per CAM grid: most similar, least similar, random (default: 8)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous kdcam export (a folder under exports/ holding kdcam-export.json); "
                        "any other existing folder is refused")
    parser.add_argument("--over-seeds", metavar="ID,ID,...|none", type=parse_over_seeds,
                        help="the analyses of the report's \"Over seeds\" section besides ANALYSIS (the same "
                        "study trained with other seeds); default: those named <study>-s<seed> like ANALYSIS "
                        "that measured the same dataset, split, CAM method and target; none: no such section")
    parser.add_argument("--json", action="store_true", help="JSON lines of progress, then the result")
    parser.set_defaults(handler=_handle)


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise KdcamError(f"--formats: unknown {', '.join(unknown) or 'empty list'}; choose from {','.join(FORMATS)}")
    return formats


def parse_over_seeds(text: str) -> tuple[str, ...]:
    """``none`` (no section) or a comma-separated list of analysis ids."""
    if text.strip().lower() == "none":
        return ()
    ids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise argparse.ArgumentTypeError("give analysis ids separated by commas, or none")
    return ids


def _handle(args: argparse.Namespace) -> int:
    from engine.cli.output import console, print_json, run_job

    spec = ExportSpec(workspace=args.workspace, analysis=args.analysis, out=args.out,
                      formats=parse_formats(args.formats), examples=args.examples, overwrite=args.overwrite,
                      over_seeds=args.over_seeds)
    result = run_job(spec, as_json=args.json)
    if args.json:
        print_json({"event": "result", **result.to_dict()})
    else:
        # The job already logged where the report went; say what to do with it.
        hint = f"; open {result.path}/report.html in a browser (works offline)" if "html" in spec.formats else ""
        console().print(f"[green]{len(result.files)} files[/]{hint}", highlight=False)
    return 0
