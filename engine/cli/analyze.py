"""``kdcam analyze``: CAMs of a teacher and its students on the same images, and how alike they are.

torch is imported only when the command runs (by the job), so ``kdcam --help`` stays instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.api.bands import band_style
from engine.api.catalogue import BANDED_METRICS, CAM_METHODS, DEFAULT_CAM_METHOD, DEFAULT_TARGET, TARGETS
from engine.api.results import AnalysisResults, Stat


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="compare the CAMs of a teacher and its students (similarity, bands, diagnosis)",
        description="Compute CAMs of the teacher and every student on the same images, compare each student's "
        "maps with the teacher's (Pearson, L2 similarity, IoU, KL with 95% bootstrap intervals and bands), "
        "score maps against object masks where the dataset has them, diagnose errors per class, and run a "
        "weight-randomisation sanity check and deletion/insertion on a subset. Writes analyses/ID/.",
    )
    parser.add_argument("--teacher", required=True, metavar="T",
                        help="teacher checkpoint name (or any single model to diagnose)")
    parser.add_argument("--students", default="", metavar="A,B,...",
                        help="comma-separated student checkpoints (none: a diagnosis of the teacher alone)")
    parser.add_argument("--dataset", default="shapes", metavar="D", help="dataset spec (default: shapes)")
    parser.add_argument("--split", default="test", choices=("train", "test"), help="split to analyse (default: test)")
    parser.add_argument("--n", type=int, metavar="N", help="analyse N images drawn at random (seeded); default: all")
    parser.add_argument("--method", default=DEFAULT_CAM_METHOD, choices=CAM_METHODS, metavar="M",
                        help=f"CAM method: {', '.join(CAM_METHODS)} (default: {DEFAULT_CAM_METHOD})")
    parser.add_argument("--target", default=DEFAULT_TARGET, metavar="X",
                        help=f"class each map explains: {', '.join(TARGETS)} (default: {DEFAULT_TARGET})")
    parser.add_argument("--layer", metavar="L", help="tap to compute CAMs at (default: each model's last stage)")
    parser.add_argument("--batch", type=int, default=128, metavar="B", help="images per batch (default: 128)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image subset and bootstrap (default: 0)")
    parser.add_argument("--name", metavar="ID", help="analysis id (default: date-time and teacher)")
    parser.add_argument("--check-images", type=int, default=64, metavar="K",
                        help="images for the sanity check and deletion/insertion (default: 64; 0 skips them)")
    parser.add_argument("--sanity-methods", default="", metavar="M1,M2",
                        help="CAM methods the randomisation check covers (default: the analysis method)")
    parser.add_argument("--json", action="store_true", help="JSON lines of progress, then the result")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from engine.api.specs import AnalyzeSpec
    from engine.cli.output import print_json, run_job

    spec = AnalyzeSpec(
        workspace=args.workspace, teacher=args.teacher, students=_names(args.students), dataset=args.dataset,
        split=args.split, n=args.n, method=args.method, target=args.target, layer=args.layer,
        batch_size=args.batch, seed=args.seed, device=args.device, name=args.name, check_images=args.check_images,
        sanity_methods=_names(args.sanity_methods),
    )
    result = run_job(spec, as_json=args.json)
    if args.json:
        print_json({"event": "result", **result.to_dict()})
    else:
        from engine.api.analyses import load_results

        results = load_results(args.workspace, result.id)
        print_analysis(results, result.path)
        print_where_to_look(results, args.workspace)
    return 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _fmt(stat: Stat | None, digits: int = 2, interval: bool = True) -> str:
    """mean±half-width of the 95% interval, or the mean alone where columns are scarce."""
    if stat is None or stat.mean is None:
        return "–"
    half = stat.half_width
    if not interval or half is None:
        return f"{stat.mean:.{digits}f}"
    return f"{stat.mean:.{digits}f}±{half:.{digits}f}"


def _table(title: str, columns: tuple[str, ...]) -> Any:
    """A summary table whose first column (long checkpoint names) folds instead of truncating."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(columns[0], overflow="fold", ratio=1)
    for column in columns[1:]:
        table.add_column(column, no_wrap=True)
    return table


def print_analysis(results: AnalysisResults, path: str) -> None:
    from engine.cli.output import console

    out = console()
    models = _table("models", ("model", "role", "accuracy", "pointing", "in mask", "degenerate"))
    for model in results.models:
        mask = model.mask
        models.add_row(model.name, model.role, _fmt(model.accuracy), _fmt(mask.pointing_game if mask else None),
                       _fmt(mask.energy_in_mask if mask else None), str(model.degenerate))
    out.print(models)
    if not results.pairs:
        out.print(f"[green]analysis written to[/] {path}", highlight=False)
        return
    interval = out.width >= 110  # eight columns of mean±half-width need a wide terminal
    title = f"students vs teacher ({results.cam.method}, target {results.cam.target})"
    if not interval:
        title += " · means; 95% intervals in the report and the TUI"
    pairs = _table(title, ("student", "band", "Pearson", "L2 sim", "IoU", "KL", "agree", "out KL"))
    for pair in results.pairs:
        cells = []
        for name in BANDED_METRICS:
            stat = pair.metrics[name]
            cells.append(f"[{band_style(stat.band)}]{_fmt(stat, interval=interval)}[/]")
        label = pair.method or pair.student
        pairs.add_row(label, f"[{band_style(pair.band)}]{pair.band}[/]", *cells,
                      _fmt(pair.agreement, interval=interval), _fmt(pair.output_kl, interval=interval))
    out.print(pairs)
    for method, entries in (results.sanity.methods if results.sanity else {}).items():
        verdicts = ", ".join(f"{name} {'passed' if e.passed else 'FAILED' if e.passed is False else 'n/a'} "
                             f"(Spearman {_fmt(e.spearman, 2)})" for name, e in entries.items())
        out.print(f"randomisation check ({method}): {verdicts}", highlight=False)
    out.print(f"[green]analysis written to[/] {path}", highlight=False)


def print_where_to_look(results: AnalysisResults, workspace: str) -> None:
    """For students that look elsewhere (band Acceptable or worse): the command that retrains them with
    the methods that distil where to look, from the same teacher."""
    from engine.api.followup import where_to_look_hints
    from engine.cli.output import console

    hints = where_to_look_hints(results, workspace)
    if not hints:
        return
    out = console()
    names = ", ".join(f"{pair.method or pair.student} ({pair.band})" for pair, _ in hints)
    out.print(f"[bold]where to look:[/] {names} look elsewhere than the teacher; train students that distil "
              "its class activation maps (cat) and align their Grad-CAMs to its (xa) with:", highlight=False)
    for _, command in hints:
        out.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)
