"""Which function runs which spec: one table, followed statically, torch-free at import.

Each entry imports its engine module only when called, on the engine thread (TUI) or the
main thread (CLI), so importing this table never pulls in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.api.checkpoints import CheckpointMeta
from engine.api.results import (
    AnalysisJobResult,
    DatasetSummary,
    DemoResult,
    Evaluation,
    ExperimentResult,
    ExportResult,
    ModelTaps,
    SeedAggregate,
    SeedGroupResult,
    TrainResult,
)
from engine.api.specs import (
    AggregateSpec,
    AnalyzeSpec,
    DeleteAnalysisSpec,
    DeleteCheckpointSpec,
    DemoSpec,
    EvalSpec,
    ExperimentSpec,
    ExportSpec,
    ImportSpec,
    PreviewSpec,
    RenameCheckpointSpec,
    RepairCheckpointsSpec,
    Spec,
    TapsSpec,
    TrainSpec,
)
from engine.jobs import JobContext


def _import(spec: ImportSpec, ctx: JobContext) -> CheckpointMeta:
    from engine.checkpoints.importer import run_import_job

    return run_import_job(spec, ctx)


def _train(spec: TrainSpec, ctx: JobContext) -> TrainResult | SeedGroupResult:
    from engine.distributed import joined
    from engine.train.suite import run_seed_group, run_train_job

    with joined(spec.device):  # a torchrun worker trains in its process group; one process is unchanged
        return run_seed_group(spec, ctx) if spec.seeds else run_train_job(spec, ctx)


def _analyze(spec: AnalyzeSpec, ctx: JobContext) -> AnalysisJobResult:
    from engine.analysis.job import run_analysis_job
    from engine.distributed import joined

    with joined(spec.device):
        return run_analysis_job(spec, ctx)


def _aggregate(spec: AggregateSpec, ctx: JobContext) -> SeedAggregate:
    from engine.analysis.seeds import run_aggregate_job

    return run_aggregate_job(spec, ctx)


def _export(spec: ExportSpec, ctx: JobContext) -> ExportResult:
    from engine.reports.export import run_export_job

    return run_export_job(spec, ctx)


def _demo(spec: DemoSpec, ctx: JobContext) -> DemoResult:
    from engine.demo import run_demo_job

    return run_demo_job(spec, ctx)


def _experiment(spec: ExperimentSpec, ctx: JobContext) -> ExperimentResult:
    from engine.train.experiments import run_experiment_job

    return run_experiment_job(spec, ctx)


def _preview(spec: PreviewSpec, ctx: JobContext) -> DatasetSummary:
    from engine.data.preview import run_preview_job

    return run_preview_job(spec, ctx)


def _eval(spec: EvalSpec, ctx: JobContext) -> tuple[Evaluation, ...]:
    from engine.evaluation import run_eval_job

    return run_eval_job(spec, ctx)


def _rename(spec: RenameCheckpointSpec, ctx: JobContext) -> str:
    from engine.checkpoints.chores import run_rename

    return run_rename(spec, ctx)


def _repair(spec: RepairCheckpointsSpec, ctx: JobContext) -> list[str]:
    from engine.checkpoints.chores import run_repair

    return run_repair(spec, ctx)


def _delete(spec: DeleteCheckpointSpec, ctx: JobContext) -> str:
    from engine.checkpoints.chores import run_delete

    return run_delete(spec, ctx)


def _delete_analysis(spec: DeleteAnalysisSpec, ctx: JobContext) -> str:
    from engine.analysis.store import run_delete_analysis

    return run_delete_analysis(spec, ctx)


def _taps(spec: TapsSpec, ctx: JobContext) -> ModelTaps:
    from engine.checkpoints.chores import run_taps

    return run_taps(spec, ctx)


#: spec class -> the function that runs it; every spec class of engine.api.specs has exactly one entry
RUNNERS: dict[type[Spec], Callable[[Any, JobContext], Any]] = {
    ImportSpec: _import,
    TrainSpec: _train,
    AnalyzeSpec: _analyze,
    AggregateSpec: _aggregate,
    ExportSpec: _export,
    DemoSpec: _demo,
    ExperimentSpec: _experiment,
    RenameCheckpointSpec: _rename,
    RepairCheckpointsSpec: _repair,
    DeleteCheckpointSpec: _delete,
    DeleteAnalysisSpec: _delete_analysis,
    TapsSpec: _taps,
    PreviewSpec: _preview,
    EvalSpec: _eval,
}


def run_spec(spec: Spec, ctx: JobContext) -> Any:
    """Run ``spec`` on the current thread (the engine worker, or the CLI's main thread)."""
    try:
        runner = RUNNERS[type(spec)]
    except KeyError:
        raise TypeError(f"no runner for {type(spec).__name__}") from None
    return runner(spec, ctx)
