"""``kdcam analyze``: CAMs of a teacher and its students on the same images, and how alike they are.

torch is imported only when the command runs (by the job), so ``kdcam --help`` stays instant.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from engine.api.bands import band_style
from engine.api.catalogue import BANDED_METRICS, CAM_METHODS, DEFAULT_CAM_METHOD, DEFAULT_TARGET, TARGETS
from engine.api.results import LOWER_IS_BETTER_ACROSS, AnalysisResults, SeedAggregate, SeedStat, Stat
from engine.cli import launch
from engine.cli.train import parse_seeds
from engine.errors import KdcamError


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
    parser.add_argument("--baseline", metavar="NAME",
                        help="the independent reference each student is compared with (paired over images): a "
                        "student, or another checkpoint such as a teacher trained with another seed "
                        "(default: the student trained with method si)")
    parser.add_argument("--seeds", metavar="S1,S2,...", type=parse_seeds,
                        help="analyse a seed group: {seed} in --students (and --teacher/--baseline/--name) is "
                        "replaced by each seed in turn, then the analyses are aggregated over seeds; each seed's "
                        "analysis is named NAME-sSEED (NAME: --name, else date-time and teacher), which is how the "
                        "leaderboard (key o) and kdcam export find the group")
    parser.add_argument("--json", action="store_true", help="JSON lines of progress, then the result")
    launch.add_flags(parser)
    parser.set_defaults(handler=_handle)

    aggregate = subparsers.add_parser(
        "aggregate", help="summarise analyses of one study trained with several seeds",
        description="Per method: mean and 95% interval over seeds of accuracy, similarity to the teacher and "
        "ground-truth localisation; each method's paired difference from the baseline over seeds and in how "
        "many seeds it was better (and significantly so). Give the analyses of each seed, e.g. those of "
        "kdcam analyze --seeds 0,1,2.",
    )
    aggregate.add_argument("analyses", nargs="+", metavar="ID", help="analysis ids, one per seed")
    aggregate.add_argument("--json", action="store_true", help="the aggregate as JSON")
    aggregate.set_defaults(handler=_aggregate)


def _handle(args: argparse.Namespace) -> int:
    from engine.api.specs import AggregateSpec, AnalyzeSpec
    from engine.cli.launch import launched, run_on_rank
    from engine.cli.output import print_json, run_job

    if launched(args):
        return 0

    def spec_for(seed: int | None) -> AnalyzeSpec:
        def fill(text: str | None) -> str | None:
            return text.replace("{seed}", str(seed)) if text is not None and seed is not None else text

        return AnalyzeSpec(
            workspace=args.workspace, teacher=fill(args.teacher) or "", students=_names(fill(args.students) or ""),
            dataset=args.dataset, split=args.split, n=args.n, method=args.method, target=args.target,
            layer=args.layer, batch_size=args.batch, seed=args.seed, device=args.device,
            name=_seed_name(study, seed),
            check_images=args.check_images, sanity_methods=_names(args.sanity_methods), baseline=fill(args.baseline),
        )

    if args.seeds and "{seed}" not in args.students:
        raise KdcamError("--seeds needs {seed} in --students (and in --teacher when each seed has its own), e.g. "
                         "vgg11-kd-shapes-demo-s{seed}: each seed's checkpoints are named after it")
    study = args.name
    if args.seeds and study is None:  # one name for the whole group, so that it is found as one
        teacher = args.teacher.replace("-s{seed}", "").replace("{seed}", "")
        study = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{teacher}"
    results = []
    for seed in args.seeds or (None,):
        result = run_on_rank(spec_for(seed), as_json=args.json)
        if result is None:  # a rank other than 0: rank 0 reports
            continue
        results.append(result)
        if args.json:
            print_json({"event": "result", **result.to_dict()})
        else:
            from engine.api.analyses import load_results

            analysis = load_results(args.workspace, result.id)
            print_analysis(analysis, result.path)
            print_where_to_look(analysis, args.workspace)
    if args.seeds and results:
        aggregated = run_job(AggregateSpec(args.workspace, tuple(r.id for r in results)), as_json=args.json)
        if args.json:
            print_json({"event": "aggregate", **aggregated.to_dict()})
        else:
            print_aggregate(aggregated)
    return 0


def _seed_name(name: str | None, seed: int | None) -> str | None:
    """The analysis id of one seed: ``{seed}`` filled in, or ``-sN`` appended to a plain name."""
    if name is None or seed is None:
        return name
    return name.replace("{seed}", str(seed)) if "{seed}" in name else f"{name}-s{seed}"


def _aggregate(args: argparse.Namespace) -> int:
    from engine.api.specs import AggregateSpec
    from engine.cli.output import print_json, run_job

    aggregated = run_job(AggregateSpec(args.workspace, tuple(args.analyses)), as_json=args.json)
    if args.json:
        print_json(aggregated.to_dict())
    else:
        print_aggregate(aggregated)
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
    table.add_column(columns[0], overflow="fold", min_width=8)
    for column in columns[1:]:
        table.add_column(column, no_wrap=True)
    return table


#: short column titles of per-model and per-pair numbers
SHORT = {"accuracy": "acc", "pearson": "Pearson", "l2_similarity": "L2 sim", "iou": "IoU", "kl": "KL",
         "agreement": "agree", "output_kl": "out KL", "pointing_game": "pointing", "energy_in_mask": "in mask",
         "energy_on_distractors": "on distr.", "energy_on_cue": "on cue", "follows_cue": "follows cue"}
#: what the baseline comparison shows: accuracy, the banded similarities, ground-truth localisation
DIFFERENCE_COLUMNS = ("accuracy", *BANDED_METRICS, "pointing_game", "energy_in_mask", "energy_on_distractors",
                      "energy_on_cue", "follows_cue")


def _difference(stat: Stat | None, name: str, interval: bool) -> str:
    """A paired difference ± the half-width of its 95% interval; ``*`` and green/red where the
    interval excludes zero on the better/worse side (the exact bounds are in the report)."""
    if stat is None or stat.mean is None:
        return "–"
    text = f"{stat.mean:+.3f}"
    half = stat.half_width
    if interval and half is not None:
        text += f"±{half:.3f}"
    if stat.ci_low is None or stat.ci_high is None or stat.ci_low <= 0 <= stat.ci_high:
        return text
    better = (stat.ci_low > 0) != (name in LOWER_IS_BETTER_ACROSS)
    return f"[{'green' if better else 'red'}]{text}*[/]"


def print_analysis(results: AnalysisResults, path: str) -> None:
    from engine.cli.output import console

    out = console()
    wide = out.width >= 110  # columns of mean±half-width need a wide terminal
    regions = [name for name in ("energy_on_distractors", "energy_on_cue")
               if any(m.mask is not None and getattr(m.mask, name) is not None for m in results.models)]
    follows = any(m.follows_cue is not None for m in results.models)
    models = _table("models: accuracy, and where each model's own map lies (ground truth)",
                    ("model", "role", "accuracy", "pointing", "in mask", *(SHORT[r] for r in regions),
                     *(("follows cue",) if follows else ()), "degenerate"))
    for model in results.models:
        mask = model.mask
        role = "baseline" if model.name == results.baseline else model.role
        models.add_row(model.name, role, _fmt(model.accuracy, interval=wide),
                       _fmt(mask.pointing_game if mask else None, interval=wide),
                       _fmt(mask.energy_in_mask if mask else None, interval=wide),
                       *(_fmt(getattr(mask, r) if mask else None, interval=wide) for r in regions),
                       *((_fmt(model.follows_cue, interval=wide),) if follows else ()), str(model.degenerate))
    out.print(models)
    teacher_gap = (results.teacher.vs_baseline or {}).get("accuracy")
    if results.baseline is not None and teacher_gap is not None and teacher_gap.mean is not None:
        bounds = f" [{teacher_gap.ci_low:+.3f}, {teacher_gap.ci_high:+.3f}]" \
            if teacher_gap.ci_low is not None and teacher_gap.ci_high is not None else ""
        out.print(f"teacher − baseline ({results.baseline}) accuracy: {teacher_gap.mean:+.3f}{bounds} "
                  f"(paired over {teacher_gap.n} images, 95% bootstrap interval)", highlight=False)
    if not results.pairs:
        out.print(f"[green]analysis written to[/] {path}", highlight=False)
        return
    title = f"students vs teacher ({results.cam.method}, target {results.cam.target})"
    if not wide:
        title += " · means; 95% intervals in the report and the TUI"
    pairs = _table(title, ("student", "band", "Pearson", "L2 sim", "IoU", "KL", "agree", "out KL"))
    for pair in results.pairs:
        cells = []
        for name in BANDED_METRICS:
            stat = pair.metrics[name]
            cells.append(f"[{band_style(stat.band)}]{_fmt(stat, interval=wide)}[/]")
        label = pair.method or pair.student
        if pair.student == results.baseline:
            label += " (baseline)"
        pairs.add_row(label, f"[{band_style(pair.band)}]{pair.band}[/]", *cells,
                      _fmt(pair.agreement, interval=wide), _fmt(pair.output_kl, interval=wide))
    out.print(pairs)
    _print_differences(results, wide)
    for method, entries in (results.sanity.methods if results.sanity else {}).items():
        verdicts = ", ".join(f"{name} {'passed' if e.passed else 'FAILED' if e.passed is False else 'n/a'} "
                             f"(Spearman {_fmt(e.spearman, 2)})" for name, e in entries.items())
        out.print(f"randomisation check ({method}): {verdicts}", highlight=False)
    out.print(f"[green]analysis written to[/] {path}", highlight=False)


def _print_differences(results: AnalysisResults, wide: bool) -> None:
    """Each model minus the baseline, paired over images: what a student gained from its teacher."""
    from engine.cli.output import console

    if results.baseline is None:
        console().print("no baseline (no si student and no --baseline): similarities have no reference to compare "
                        "with", highlight=False)
        return
    rows = [(p.method or p.student, {**(results.model(p.student).vs_baseline or {}), **(p.vs_baseline or {})})
            for p in results.pairs if p.student != results.baseline]
    rows.insert(0, ("teacher", dict(results.teacher.vs_baseline or {})))
    columns = [c for c in DIFFERENCE_COLUMNS if any(c in diffs for _, diffs in rows)]
    width = console().width
    wide = wide and width >= 12 + 16 * len(columns)  # ±half-widths only where they fit
    columns = _fit(columns, width, 16 if wide else 11)
    title = (f"minus the baseline {results.baseline}: mean paired difference"
             + (" ± 95% bootstrap half-width" if wide else " (intervals in the report, the TUI and --json)")
             + "; * (green/red): its 95% interval excludes 0, better/worse")
    table = _table(title, ("model", *(f"Δ {SHORT[c]}" for c in columns)))
    for label, diffs in rows:
        table.add_row(label, *(_difference(diffs.get(c), c, wide) for c in columns))
    console().print(table)


def _fit(names: list[str], width: int, cell: int, fixed: int = 14) -> list[str]:
    """The first of ``names`` that fit a terminal ``width`` at ``cell`` characters each (the rest are
    in ``--json`` and the report)."""
    return names[:max(1, (width - fixed) // cell)]


def _seed_text(stat: SeedStat | None, interval: bool, digits: int = 2) -> str:
    """mean±half-width of the 95% t interval over seeds (symmetric), or the mean alone."""
    if stat is None or stat.mean is None:
        return "–"
    text = f"{stat.mean:.{digits}f}"
    if interval and stat.ci_low is not None and stat.ci_high is not None:
        text += f"±{(stat.ci_high - stat.ci_low) / 2:.{digits}f}"
    return text


def print_aggregate(aggregated: SeedAggregate) -> None:
    """Per method over seeds: means with 95% t intervals, then the paired differences from the baseline."""
    from engine.cli.output import console

    out = console()
    wide = out.width >= 110
    seeds = len(aggregated.analyses)
    names = [n for n in ("accuracy", *BANDED_METRICS, "pointing_game", "energy_in_mask", "energy_on_distractors",
                         "energy_on_cue", "follows_cue") if any(n in r.metrics for r in aggregated.rows)]
    names = _fit(names, out.width, 12 if wide else 10, fixed=20)
    table = _table(f"over {seeds} seeds ({aggregated.dataset}, {aggregated.cam}): mean ± 95% t half-width over seeds",
                   ("method", "n", *(SHORT[n] for n in names)))
    for row in aggregated.rows:
        label = row.method + (" (baseline)" if row.role == "baseline" else "")
        n = max((s.n for s in row.metrics.values()), default=0)
        table.add_row(label, str(n), *(_seed_text(row.metrics.get(name), wide) for name in names))
    out.print(table)
    if aggregated.baseline is None:
        out.print("no baseline in these analyses: no differences to report", highlight=False)
        return
    diffs = [n for n in ("accuracy", "pearson", "iou", "pointing_game", "energy_in_mask", "energy_on_distractors",
                         "energy_on_cue", "follows_cue") if any(n in r.vs_baseline for r in aggregated.rows)]
    diffs = _fit(diffs, out.width, 22 if wide else 12)
    table = _table(f"minus {aggregated.baseline}, over seeds: mean paired difference ± 95% t half-width · better "
                   "in k/n seeds (j: significantly, in that seed's own analysis)",
                   ("method", *(f"Δ {SHORT[n]}" for n in diffs)))
    for row in aggregated.rows:
        if row.role == "baseline":
            continue
        cells = []
        for name in diffs:
            d = row.vs_baseline.get(name)
            cells.append("–" if d is None else
                         f"{_signed(d.stat, wide)} {d.better}/{d.stat.n}" + (f" ({d.significant})" if wide else ""))
        table.add_row(row.method, *cells)
    out.print(table)


def _signed(stat: SeedStat, interval: bool) -> str:
    if stat.mean is None:
        return "–"
    text = f"{stat.mean:+.3f}"
    if interval and stat.ci_low is not None and stat.ci_high is not None:
        text += f"±{(stat.ci_high - stat.ci_low) / 2:.3f}"
    return text


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
