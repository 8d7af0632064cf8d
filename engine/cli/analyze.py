"""``kdcam analyze``: CAMs of a teacher and its students on the same images, and how alike they are.

torch is imported only when the command runs (by the job), so ``kdcam --help`` stays instant.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from engine.api.catalogue import CAM_METHODS, DEFAULT_CAM_METHOD, DEFAULT_TARGET, TARGETS
from engine.api.results import AnalysisResults
from engine.cli import launch
from engine.cli.summaries import print_aggregate, print_analysis
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


def print_where_to_look(results: AnalysisResults, workspace: str) -> None:
    """For students that look elsewhere (band Acceptable or worse): the command that retrains them with
    the methods that distil where to look, from the same teacher."""
    from rich.markup import escape

    from engine.api.followup import where_to_look_hints
    from engine.cli.output import console

    hints = where_to_look_hints(results, workspace)
    if not hints:
        return
    out = console()
    names = escape(", ".join(f"{pair.method or pair.student} ({pair.band})" for pair, _ in hints))
    out.print(f"[bold]where to look:[/] {names} look elsewhere than the teacher; train students that distil "
              "its class activation maps (cat) and align their Grad-CAMs to its (xa) with:", highlight=False)
    for _, command in hints:
        out.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)
