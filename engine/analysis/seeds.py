"""A study over training seeds: several analyses (one per seed) summarised per method.

One seed answers "did this run of method X beat ``si``?"; a claim about the *method* needs the
spread over seeds. Each analysis already holds, per model, means over its images and paired
differences from its baseline with 95% bootstrap intervals. Here each number becomes one value
per seed, summarised by the mean over seeds with a 95% Student-t interval (seeds are few, so the
interval is honest about it), and each paired difference also says in how many seeds the method
was on the better side of the baseline ("beats si in k of n"), and in how many that seed's own
interval excluded zero. Rows are matched across analyses by role and KD method, not by name
(every seed has its own checkpoints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.api.analyses import load_results
from engine.api.catalogue import MAP_METRICS
from engine.api.results import (
    LOWER_IS_BETTER_ACROSS,
    AnalysisResults,
    MethodAggregate,
    ModelEntry,
    PairEntry,
    SeedAggregate,
    SeedDifference,
    SeedStat,
    Stat,
)
from engine.api.specs import AggregateSpec
from engine.errors import KdcamError
from engine.jobs import JobContext

#: two-sided 95% Student-t quantiles for 1..30 degrees of freedom
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z95 = 1.959964


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (Cornish-Fisher beyond 30)."""
    if df < 1:
        raise ValueError("a t interval needs at least two values")
    if df <= len(_T95):
        return _T95[df - 1]
    return _Z95 + (_Z95**3 + _Z95) / (4 * df)


def seed_stat(values: Sequence[float | None]) -> SeedStat:
    """Mean over the seeds that have a value, with a 95% t interval (none from a single seed)."""
    present = [v for v in values if v is not None]
    if not present:
        return SeedStat(None, None, None, tuple(values))
    mean = sum(present) / len(present)
    if len(present) < 2:
        return SeedStat(mean, None, None, tuple(values))
    sd = math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1))
    half = t_quantile(len(present) - 1) * sd / math.sqrt(len(present))
    return SeedStat(mean, mean - half, mean + half, tuple(values))


def seed_difference(name: str, per_seed: Sequence[Stat | None]) -> SeedDifference:
    """Per-seed paired differences (method - baseline) summarised over seeds, with k of n."""
    sign = -1.0 if name in LOWER_IS_BETTER_ACROSS else 1.0
    better = sum(1 for s in per_seed if s is not None and s.mean is not None and sign * s.mean > 0)
    significant = sum(1 for s in per_seed if s is not None and s.ci_low is not None and s.ci_high is not None
                      and (s.ci_low > 0 if sign > 0 else s.ci_high < 0))
    return SeedDifference(seed_stat([s.mean if s is not None else None for s in per_seed]), better, significant)


def _model_numbers(model: ModelEntry) -> dict[str, Stat]:
    numbers = {"accuracy": model.accuracy}
    if model.mask is not None:
        numbers["pointing_game"] = model.mask.pointing_game
        numbers["energy_in_mask"] = model.mask.energy_in_mask
        if model.mask.energy_on_distractors is not None:
            numbers["energy_on_distractors"] = model.mask.energy_on_distractors
        if model.mask.energy_on_cue is not None:
            numbers["energy_on_cue"] = model.mask.energy_on_cue
    if model.follows_cue is not None:
        numbers["follows_cue"] = model.follows_cue
    return numbers


def _pair_numbers(pair: PairEntry) -> dict[str, Stat]:
    return {**{name: pair.metrics[name] for name in MAP_METRICS if name in pair.metrics},
            "agreement": pair.agreement, "output_kl": pair.output_kl}


def _rows_of(results: AnalysisResults) -> dict[str, tuple[str, str, dict[str, Stat], dict[str, Stat]]]:
    """key -> (role, model name, numbers, paired differences from the baseline) for one analysis."""
    teacher = results.teacher
    rows = {"teacher": ("teacher", teacher.name, _model_numbers(teacher), dict(teacher.vs_baseline or {}))}
    for pair in results.pairs:
        key = pair.method or pair.student
        if key in rows:
            raise KdcamError(f"analysis {results.id}: two students share method {key!r}; a seed study matches "
                             "students across analyses by method, so each method may appear once")
        model = results.model(pair.student)
        role = "baseline" if pair.student == results.baseline else "student"
        rows[key] = (role, pair.student, {**_model_numbers(model), **_pair_numbers(pair)},
                     {**(model.vs_baseline or {}), **(pair.vs_baseline or {})})
    return rows


def aggregate(analyses: Sequence[tuple[str, AnalysisResults]]) -> SeedAggregate:
    """Summarise analyses of one study (one per seed) per method; they must agree on what was measured."""
    if len(analyses) < 2:
        raise KdcamError("aggregate needs at least two analyses (one per seed)")
    ids = [analysis_id for analysis_id, _ in analyses]
    if len(set(ids)) != len(ids):
        raise KdcamError(f"an analysis is listed twice: {', '.join(ids)}")
    first = analyses[0][1]
    for analysis_id, results in analyses[1:]:
        for what, mine, theirs in (("dataset", results.dataset.spec, first.dataset.spec),
                                   ("split", results.dataset.split, first.dataset.split),
                                   ("CAM method", results.cam.method, first.cam.method),
                                   ("CAM target", results.cam.target, first.cam.target)):
            if mine != theirs:
                raise KdcamError(f"analysis {analysis_id} has {what} {mine!r} but {ids[0]} has {theirs!r}: "
                                 "only analyses of the same measurement can be aggregated")
    per_analysis = [_rows_of(results) for _, results in analyses]
    baselines = {key for rows in per_analysis for key, row in rows.items() if row[0] == "baseline"}
    if len(baselines) > 1:
        raise KdcamError(f"the analyses have different baselines ({', '.join(sorted(baselines))}); give each the "
                         "same one (kdcam analyze --baseline)")
    baseline = next(iter(baselines), None)
    keys: list[str] = []
    for rows in per_analysis:
        keys += [key for key in rows if key not in keys]
    keys.sort(key=lambda k: (k != "teacher", k != baseline))  # teacher, baseline, then the students in order
    out = []
    for key in keys:
        present = [rows.get(key) for rows in per_analysis]
        role = next(row[0] for row in present if row is not None)
        names = sorted({name for row in present if row is not None for name in row[2]},
                       key=_ORDER.index)
        differences = sorted({name for row in present if row is not None for name in row[3]}, key=_ORDER.index)
        out.append(MethodAggregate(
            key, role, tuple(row[1] if row is not None else None for row in present),
            {name: seed_stat([_mean(row[2].get(name)) if row is not None else None for row in present])
             for name in names},
            {name: seed_difference(name, [row[3].get(name) if row is not None else None for row in present])
             for name in differences},
        ))
    return SeedAggregate(tuple(ids), baseline, f"{first.cam.method}, target {first.cam.target}", first.dataset.spec,
                         tuple(out))


_ORDER = ("accuracy", *MAP_METRICS, "agreement", "output_kl", "pointing_game", "energy_in_mask",
          "energy_on_distractors", "energy_on_cue", "follows_cue")


def _mean(stat: Stat | None) -> float | None:
    return stat.mean if stat is not None else None


def run_aggregate_job(spec: AggregateSpec, ctx: JobContext) -> SeedAggregate:
    analyses = []
    for done, analysis_id in enumerate(spec.analyses, start=1):
        ctx.check_cancelled()
        analyses.append((analysis_id, load_results(spec.workspace, analysis_id)))
        ctx.progress("reading analyses", done, len(spec.analyses), analysis_id)
    return aggregate(analyses)
