"""Which analyses form a seed group: the analyses of one study, one per training seed.

Analyses do not record a group; ``kdcam analyze --seeds 0,1,2 --name study`` names them
``study-s0``, ``study-s1``, ``study-s2``. A group is therefore every analysis named
``<study>-s<seed>`` that measured the same thing as the one asked about (dataset spec, split,
CAM method and target: what ``engine.analysis.seeds`` requires to aggregate). Siblings by name
that measured something else, or whose ``results.json`` cannot be read, are kept aside with the
reason, so a view can say which seed is missing and why instead of silently averaging fewer.
Pure functions over ``scan_analyses`` output: no file is read here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.api.analyses import AnalysisInfo, UnreadableAnalysis, scan_analyses
from engine.api.workspace import Workspace

#: ``<study>-s<seed>``: how ``kdcam analyze --seeds`` names each seed's analysis
SEED_ID = re.compile(r"^(?P<study>.+)-s(?P<seed>\d{1,9})$")


def split_seed_id(analysis_id: str) -> tuple[str, int] | None:
    """``("study", 2)`` for ``study-s2``; None for an id that names no seed."""
    match = SEED_ID.match(analysis_id)
    return (match["study"], int(match["seed"])) if match else None


@dataclass(frozen=True)
class SeedGroup:
    """The analyses of one study that can be aggregated, in seed order, and the siblings left out."""

    study: str
    members: tuple[str, ...]  # analysis ids, by seed
    seeds: tuple[int, ...]
    left_out: tuple[tuple[str, str], ...]  # (analysis id, why it is not aggregated)

    @property
    def aggregable(self) -> bool:
        """At least two seeds: a mean over seeds with an interval needs two values."""
        return len(self.members) >= 2


def _measurement(info: AnalysisInfo) -> tuple[tuple[str, str], ...]:
    return (("dataset", info.dataset), ("split", info.split), ("CAM method", info.method),
            ("CAM target", info.target))


def find_seed_group(analysis_id: str, analyses: Sequence[AnalysisInfo],
                    unreadable: Sequence[UnreadableAnalysis] = ()) -> SeedGroup | None:
    """The group ``analysis_id`` belongs to (possibly of one), or None when its id names no seed or
    it is not among the readable ``analyses``."""
    parsed = split_seed_id(analysis_id)
    own = next((info for info in analyses if info.id == analysis_id), None)
    if parsed is None or own is None:
        return None
    study = parsed[0]
    members: list[tuple[int, str]] = []
    left_out: list[tuple[int, str, str]] = []
    for info in analyses:
        sibling = split_seed_id(info.id)
        if sibling is None or sibling[0] != study:
            continue
        differs = [f"{what} {mine!r}, not {theirs!r}"
                   for (what, mine), (_, theirs) in zip(_measurement(info), _measurement(own), strict=True)
                   if mine != theirs]
        if differs:
            left_out.append((sibling[1], info.id, "measured something else: " + "; ".join(differs)))
        else:
            members.append((sibling[1], info.id))
    for broken in unreadable:
        sibling = split_seed_id(broken.id)
        if sibling is not None and sibling[0] == study:
            left_out.append((sibling[1], broken.id, f"unreadable: {broken.reason}"))
    members.sort()
    seeds = [seed for seed, _ in members]
    duplicated = {seed for seed in seeds if seeds.count(seed) > 1}  # study-s1 and study-s01
    if duplicated:
        left_out += [(seed, aid, f"seed {seed} has another analysis in this group")
                     for seed, aid in members if seed in duplicated and aid != analysis_id]
        members = [(seed, aid) for seed, aid in members if seed not in duplicated or aid == analysis_id]
    left_out.sort()
    return SeedGroup(study, tuple(aid for _, aid in members), tuple(seed for seed, _ in members),
                     tuple((aid, why) for _, aid, why in left_out))


def seed_group(ws: Workspace | str | Path, analysis_id: str) -> SeedGroup | None:
    """``find_seed_group`` over the workspace's analyses as they are on disk now (read only when
    ``analysis_id`` names a seed)."""
    if split_seed_id(analysis_id) is None:
        return None
    analyses, unreadable = scan_analyses(ws)
    return find_seed_group(analysis_id, analyses, unreadable)
