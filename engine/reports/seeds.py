"""The report's "Over seeds" section: the exported analysis's seed group summarised per method.

One seed says whether one run of a method beat the baseline; the section gives the claim about
the method: per method (teacher, baseline, students) the mean over seeds and its 95% Student-t
interval of accuracy, similarity to the teacher and ground-truth localisation, then each
method's paired difference from the baseline over seeds with "better in k of n seeds (j
significantly, in that seed's own analysis)". The numbers are ``engine.analysis.seeds``'s, the
same the CLI (``kdcam aggregate``) and the TUI show; ``over_seeds.csv`` holds them exactly.

The group is the one ``engine.api.seedgroups`` finds (``<study>-s<seed>`` with the same
measurement) unless the export names the analyses (``ExportSpec.over_seeds``). A group found by
name that cannot be aggregated (one readable seed, different baselines) is said in the section
rather than failing the export; analyses the user named must aggregate, or the export fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.analysis.seeds import aggregate
from engine.api.analyses import load_results
from engine.api.bands import band as band_of
from engine.api.catalogue import BANDED_METRICS
from engine.api.results import LOWER_IS_BETTER_ACROSS, SeedAggregate, SeedDifference, SeedStat
from engine.api.seedgroups import seed_group
from engine.api.specs import ExportSpec
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.reports import html as h
from engine.reports.bands import METRIC_LABELS, band_colour

#: the numbers of the section, in column order, with their labels
QUANTITIES: dict[str, str] = {
    "accuracy": "accuracy", **{m: METRIC_LABELS[m] for m in BANDED_METRICS}, "agreement": "agreement",
    "output_kl": "output KL", "pointing_game": "pointing game", "energy_in_mask": "energy in mask",
    "energy_on_distractors": "energy on distractors", "energy_on_cue": "energy on the cue",
    "follows_cue": "follows the cue",
}
#: fractions shown as percentages
PERCENT = frozenset({"accuracy", "agreement", "pointing_game", "follows_cue"})


@dataclass(frozen=True)
class OverSeeds:
    """What the section shows: the aggregate, or why there is none, and the seeds left out."""

    study: str
    aggregate: SeedAggregate | None
    left_out: tuple[tuple[str, str], ...] = ()  # (analysis id, why)
    problem: str | None = None  # why the group was not aggregated


def find_over_seeds(spec: ExportSpec, workspace: Workspace) -> OverSeeds | None:
    """The section's content for ``spec``, or None when the analysis has no seed group."""
    if spec.over_seeds is not None:
        if not spec.over_seeds:
            return None
        ids = tuple(dict.fromkeys((spec.analysis, *spec.over_seeds)))
        if len(ids) < 2:
            raise KdcamError(f"--over-seeds: name at least one analysis besides {spec.analysis}")
        return OverSeeds("as given", aggregate([(i, load_results(workspace, i)) for i in ids]))
    group = seed_group(workspace, spec.analysis)
    if group is None or (len(group.members) < 2 and not group.left_out):
        return None
    if not group.aggregable:
        return OverSeeds(group.study, None, group.left_out,
                         f"only {spec.analysis} of study {group.study} can be read and measured the same way: "
                         "a mean over seeds needs at least two seeds")
    try:
        return OverSeeds(group.study, aggregate([(i, load_results(workspace, i)) for i in group.members]),
                         group.left_out)
    except KdcamError as exc:  # changed since the scan, or not aggregable (say why; the rest of the report stands)
        return OverSeeds(group.study, None, group.left_out, str(exc))


def _interval(stat: SeedStat, percent: bool, signed: bool = False) -> str:
    if stat.ci_low is None or stat.ci_high is None:
        return '<span class="sub">one seed: no interval</span>'
    scale, digits, unit = (100.0, 1, "%") if percent else (1.0, 4, "")
    sign = "+" if signed else ""
    return (f'<span class="sub" title="95% Student-t interval over seeds">[{scale * stat.ci_low:{sign}.{digits}f}, '
            f"{scale * stat.ci_high:{sign}.{digits}f}]{unit}</span>")


def _mean_cell(name: str, stat: SeedStat | None) -> str:
    if stat is None or stat.mean is None:
        return h.numeric_cell(None)
    cell = h.numeric_cell(stat.mean, as_percent=name in PERCENT) + _interval(stat, name in PERCENT)
    if name in BANDED_METRICS:  # bands colour the absolute mean, as everywhere else
        colour = band_colour(band_of(name, stat.mean))
        cell = f'<span style="border-left:4px solid {colour};padding-left:5px;display:inline-block">{cell}</span>'
    return cell


def _difference_cell(name: str, difference: SeedDifference | None) -> str:
    stat = difference.stat if difference is not None else None
    if difference is None or stat is None or stat.mean is None:
        return h.numeric_cell(None)
    verdict = ""
    if stat.ci_low is not None and stat.ci_high is not None and not stat.ci_low <= 0 <= stat.ci_high:
        better = (stat.ci_low > 0) != (name in LOWER_IS_BETTER_ACROSS)
        verdict = f' <strong>{"better" if better else "worse"}</strong>'
    count = (f'<span class="sub" title="seeds on the better side of zero / seeds (significant in that seed\'s own '
             f'analysis)">better in {difference.better}/{stat.n} ({difference.significant})</span>')
    scale, digits = (100.0, 1) if name in PERCENT else (1.0, 4)
    shown = f'<span class="num" data-value="{stat.mean!r}">{scale * stat.mean:+.{digits}f}</span>'
    return shown + verdict + _interval(stat, name in PERCENT, signed=True) + count


def section(over: OverSeeds) -> str:
    """The section body (HTML)."""
    left_out = "".join(f"<li><code>{h.esc(aid)}</code> left out: {h.esc(why)}</li>" for aid, why in over.left_out)
    notes = f'<ul class="note">{left_out}</ul>' if left_out else ""
    agg = over.aggregate
    if agg is None:
        return f'<p class="note">Not aggregated: {h.esc(over.problem or "")}</p>{notes}'
    lead = (f'<p class="note">Study <code>{h.esc(over.study)}</code>: {len(agg.analyses)} analyses '
            f'({", ".join(f"<code>{h.esc(a)}</code>" for a in agg.analyses)}), {h.esc(agg.dataset)}, '
            f"{h.esc(agg.cam)}. Each cell is the mean over seeds of that seed's analysis (itself a mean over "
            "images) with its 95% Student-t interval over seeds; few seeds make wide intervals.</p>")
    names = [n for n in QUANTITIES if any(n in row.metrics for row in agg.rows)]
    columns = [h.Column("method"), h.Column("role"), h.Column("seeds", True)]
    columns += [h.Column(QUANTITIES[n], True, "mean over seeds, 95% t interval") for n in names]
    rows = [[h.esc(row.method), h.esc(row.role),
             h.numeric_cell(max((s.n for s in row.metrics.values()), default=0), 0),
             *(_mean_cell(n, row.metrics.get(n)) for n in names)] for row in agg.rows]
    body = lead + h.table(columns, rows, "over-seeds")
    if agg.baseline is None:
        return body + '<p class="note">These analyses have no baseline: no differences over seeds.</p>' + notes
    diffs = [n for n in QUANTITIES if any(n in row.vs_baseline for row in agg.rows)]
    columns = [h.Column("method")] + [h.Column(f"Δ {QUANTITIES[n]}", True, "mean paired difference over seeds")
                                      for n in diffs]
    rows = [[h.esc(row.method), *(_difference_cell(n, row.vs_baseline.get(n)) for n in diffs)]
            for row in agg.rows if row.role != "baseline"]
    body += (f'<h3>Minus the baseline <code>{h.esc(agg.baseline)}</code>, over seeds</h3>'
             '<p class="note">Each seed\'s paired difference (over the same images) averaged over seeds, with its '
             "95% t interval; \"better in k/n (j)\": k of n seeds on the better side of zero, j of them with "
             "their own 95% paired interval excluding zero.</p>" + h.table(columns, rows, "over-seeds-baseline"))
    return body + notes


def csv_table(over: OverSeeds) -> tuple[list[str], list[list[Any]]]:
    """``over_seeds.csv``: one row per method and number, the mean, interval and each seed's value."""
    agg = over.aggregate
    if agg is None:
        return ["method"], []
    header = ["method", "role", "quantity", "name", "mean", "ci_low", "ci_high", "seeds", "better", "significant",
              *agg.analyses]
    rows: list[list[Any]] = []
    for row in agg.rows:
        for name, stat in row.metrics.items():
            rows.append([row.method, row.role, "mean", name, *_stat_cells(stat), None, None, *stat.values])
        for name, difference in row.vs_baseline.items():
            stat = difference.stat
            rows.append([row.method, row.role, f"minus {agg.baseline}", name, *_stat_cells(stat),
                         difference.better, difference.significant, *stat.values])
    return header, rows


def _stat_cells(stat: SeedStat) -> Sequence[Any]:
    return [stat.mean, stat.ci_low, stat.ci_high, stat.n]
