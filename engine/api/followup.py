"""From an analysis back to training: a student that looks elsewhere than its teacher can be
retrained with the methods that distil *where* to look (``cat``, ``xa``) from the same teacher.

The TUI leaderboard queues the spec built here on a key press; ``kdcam analyze`` prints the
equivalent command for every student whose similarity band is Acceptable or worse. Torch-free.
"""

from __future__ import annotations

import shlex

from engine.api.bands import BANDS
from engine.api.catalogue import ARCHITECTURES, WHERE_TO_LOOK_METHODS, default_recipe
from engine.api.results import AnalysisResults, PairEntry
from engine.api.specs import TrainSpec
from engine.errors import KdcamError

#: bands at or below this one suggest retraining with a where-to-look method
SUGGEST_AT_OR_BELOW = "Acceptable"


def looks_elsewhere(pair: PairEntry) -> bool:
    """The student's overall similarity band is Acceptable or worse."""
    return pair.band_score <= BANDS.index(SUGGEST_AT_OR_BELOW)


def where_to_look_spec(results: AnalysisResults, student: str, workspace: str,
                       methods: tuple[str, ...] = WHERE_TO_LOOK_METHODS) -> TrainSpec:
    """Train ``methods`` students from the analysis's teacher checkpoint, with ``student``'s architecture.

    A zoo student is rebuilt by architecture and width; any other (an imported model) by naming its
    checkpoint, whose model the trainer rebuilds afresh. The recipe is the dataset's default one.
    """
    entry = next((m for m in results.models if m.name == student and m.role != "teacher"), None)
    if entry is None:
        raise KdcamError(f"analysis {results.id!r} has no student {student!r}")
    zoo = entry.arch in ARCHITECTURES
    dataset = results.dataset.spec
    return TrainSpec(workspace=workspace, dataset=dataset, teacher=results.teacher.name,
                     student=entry.arch if zoo else entry.name, methods=methods, recipe=default_recipe(dataset),
                     width=entry.width if zoo else None)


def train_command(spec: TrainSpec) -> str:
    """The ``kdcam train`` command line that runs ``spec`` (shell-quoted)."""
    parts = ["kdcam", "--workspace", spec.workspace, "train", "--dataset", spec.dataset, "--teacher", spec.teacher,
             "--student", spec.student, "--methods", ",".join(spec.methods), "--recipe", spec.recipe]
    if spec.width is not None:
        parts += ["--width", f"{spec.width:g}"]
    return " ".join(shlex.quote(part) for part in parts)


def untried_methods(results: AnalysisResults, student: str) -> tuple[str, ...]:
    """The where-to-look methods no student of ``student``'s architecture in the analysis was trained
    with (a variant such as ``cat+cat_weight0.045`` counts as ``cat``): suggesting one already there
    would send the user to train what they are looking at."""
    entry = next((m for m in results.models if m.name == student), None)
    tried = {(m.method or "").split("+")[0] for m in results.models
             if m.role != "teacher" and entry is not None and (m.arch, m.width) == (entry.arch, entry.width)}
    return tuple(method for method in WHERE_TO_LOOK_METHODS if method not in tried)


def where_to_look_hints(results: AnalysisResults, workspace: str) -> list[tuple[PairEntry, str]]:
    """(pair, command) for each student whose band is Acceptable or worse, one command per architecture,
    naming only the where-to-look methods the analysis does not already hold for that architecture."""
    hints: list[tuple[PairEntry, str]] = []
    seen: set[str] = set()
    for pair in results.pairs:
        methods = untried_methods(results, pair.student)
        if not looks_elsewhere(pair) or not methods:
            continue
        command = train_command(where_to_look_spec(results, pair.student, workspace, methods))
        if command not in seen:
            seen.add(command)
            hints.append((pair, command))
    return hints
