"""The leaderboard's view over seeds: one row per method (teacher, baseline, KD students) of a
seed group, built from the engine's typed ``SeedAggregate``. Cells give the mean over seeds and
its 95% Student-t interval; Δ cells give the paired difference from the baseline over seeds,
"k/n" the seeds on the better side and "(j)" those significant in their own analysis. Bands
colour the absolute means only (a difference has no band)."""

from __future__ import annotations

from rich.text import Text

from engine.api.bands import band as band_of
from engine.api.catalogue import BANDED_METRICS, METRIC_SHORT
from engine.api.results import MethodAggregate, SeedAggregate, SeedDifference, SeedStat
from engine.api.seedgroups import SeedGroup
from tui.bands import band_text

#: the numbers a row can have, in column order, with their column titles
METRICS: dict[str, str] = {
    "accuracy": "acc %", **{m: METRIC_SHORT[m] for m in BANDED_METRICS}, "pointing_game": "point %",
    "energy_in_mask": "in mask", "energy_on_distractors": "on distr.", "energy_on_cue": "on cue",
    "follows_cue": "cue %",
}
#: fractions shown as percentages (the column title says %)
PERCENT = frozenset({"accuracy", "pointing_game", "follows_cue"})


def metric_columns(aggregate: SeedAggregate) -> list[str]:
    """The numbers some row of this aggregate has (a dataset without masks has no localisation)."""
    return [m for m in METRICS if any(m in row.metrics for row in aggregate.rows)]


def difference_columns(aggregate: SeedAggregate) -> list[str]:
    return [m for m in METRICS if any(m in row.vs_baseline for row in aggregate.rows)]


def titles(aggregate: SeedAggregate) -> list[str]:
    return ["method", "seeds", *(METRICS[m] for m in metric_columns(aggregate)),
            *(f"Δ{METRICS[m].removesuffix(' %')}" for m in difference_columns(aggregate))]


def seed_text(stat: SeedStat | None, percent: bool = False, signed: bool = False) -> str:
    """'0.81 [0.78,0.84]': the mean over seeds and its 95% t interval (the mean alone from one seed)."""
    if stat is None or stat.mean is None:
        return "—"
    scale, digits = (100.0, 1) if percent else (1.0, 2)
    sign = "+" if signed else ""
    text = f"{scale * stat.mean:{sign}.{digits}f}"
    if stat.ci_low is not None and stat.ci_high is not None:
        text += f" [{scale * stat.ci_low:{sign}.{digits}f},{scale * stat.ci_high:{sign}.{digits}f}]"
    return text


def difference_text(difference: SeedDifference | None, percent: bool = False) -> str:
    """'+0.03 [-0.01,+0.07] 2/3 (1)': mean paired difference over seeds, its interval, better in k
    of n seeds (j of them significantly, in that seed's own analysis)."""
    if difference is None or difference.stat.mean is None:
        return ""
    return (f"{seed_text(difference.stat, percent, signed=True)} "
            f"{difference.better}/{difference.stat.n} ({difference.significant})")


def label(row: MethodAggregate) -> str:
    return row.method + ("·base" if row.role == "baseline" else "")


def cells(row: MethodAggregate, aggregate: SeedAggregate) -> list[Text | str]:
    seeds = max((s.n for s in row.metrics.values()), default=0)
    out: list[Text | str] = [Text(label(row), style="bold"), f"{seeds}/{len(aggregate.analyses)}"]
    for name in metric_columns(aggregate):
        stat = row.metrics.get(name)
        text = seed_text(stat, name in PERCENT)
        if name in BANDED_METRICS and stat is not None and stat.mean is not None:
            out.append(band_text(text, band_of(name, stat.mean)))  # bands colour the absolute mean
        else:
            out.append(text)
    out += [difference_text(row.vs_baseline.get(name), name in PERCENT) for name in difference_columns(aggregate)]
    return out


def heading(aggregate: SeedAggregate, group: SeedGroup) -> Text:
    """What the table summarises: the group, the measurement, and every seed left out with why."""
    text = Text(f"over {len(aggregate.analyses)} seeds of {group.study}: ", style="bold")
    text.append(f"{', '.join(aggregate.analyses)} · {aggregate.dataset} · {aggregate.cam} · mean [95% t interval] "
                f"over seeds")
    if aggregate.baseline is not None:
        text.append(f" · Δ: minus {aggregate.baseline}, paired; k/n seeds better (j significantly)")
    else:
        text.append(" · no baseline in these analyses: no differences", style="italic")
    for analysis_id, why in group.left_out:
        text.append(f"\n⚠ {analysis_id} left out: {why}", style="yellow")
    return text


def single_message(analysis_id: str, group: SeedGroup | None) -> Text:
    """Why there is nothing to aggregate for ``analysis_id``, and how to make a seed group."""
    how = ("`kdcam analyze --seeds 0,1,2 --name study ...` analyses a study once per seed as study-s0, "
           "study-s1, study-s2; the view over seeds aggregates analyses named <study>-s<seed> that measured "
           "the same dataset, split, CAM method and target.")
    if group is None:
        text = Text(f"{analysis_id} is not part of a seed group (its id does not end in -s<seed>).\n",
                    style="bold")
    else:
        text = Text(f"the seed group {group.study} has only {len(group.members)} analysis "
                    f"({', '.join(group.members)}): a mean over seeds with an interval needs at least two.\n",
                    style="bold")
        for analysis_id_out, why in group.left_out:
            text.append(f"⚠ {analysis_id_out} left out: {why}\n", style="yellow")
    text.append(how, style="dim")
    return text


def detail(row: MethodAggregate) -> Text:
    """The highlighted row spelled out: each seed's checkpoint and value, then the differences."""
    text = Text(f"{row.method} ({row.role}): ", style="bold")
    text.append(", ".join(model or "— (absent)" for model in row.models))
    for name, stat in row.metrics.items():
        if name in METRICS:
            text.append(f"\n{name}: {seed_text(stat, name in PERCENT)} · per seed {_values(stat, name in PERCENT)}")
    for name, difference in row.vs_baseline.items():
        if name in METRICS:
            text.append(f"\nΔ {name}: {difference_text(difference, name in PERCENT)} · per seed "
                        f"{_values(difference.stat, name in PERCENT, signed=True)}")
    return text


def _values(stat: SeedStat, percent: bool, signed: bool = False) -> str:
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    sign = "+" if signed else ""
    return " / ".join("—" if v is None else f"{scale * v:{sign}.{digits}f}" for v in stat.values)
