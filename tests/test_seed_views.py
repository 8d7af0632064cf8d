"""The study over seeds where a user looks at results: which analyses form a seed group, the
leaderboard's view over seeds (o) and the report's "Over seeds" section, each checked against
the engine's own aggregate of a real seed group (tiny untrained models on shapes: the numbers
differ by seed, which is all the bookkeeping needs)."""

from __future__ import annotations

import atexit
import csv
import functools
import io
import shutil
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Static

from engine.api.analyses import AnalysisInfo, UnreadableAnalysis
from engine.api.results import SeedAggregate
from engine.api.seedgroups import find_seed_group, split_seed_id
from engine.api.specs import AggregateSpec, ExportSpec
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.events import JobEvent
from engine.jobs import JobContext, run_inline
from engine.reports.seeds import QUANTITIES
from tests.test_tui import text_of, wait_for
from tui.app import KdcamApp
from tui.commands import LeaderboardCommands
from tui.rows import seeds as seed_rows

DATASET = "shapes?classes=4&train=40&test=40"
STUDY = ("study-s0", "study-s1", "study-s2")


def _context() -> JobContext:
    def ignore(event: JobEvent) -> None:
        pass

    return JobContext("test", ignore, threading.Event())


@functools.cache
def _study() -> Path:
    """A workspace with three seeds of one study (teacher, si, kd each) analysed as study-s0..2;
    built once per session, tests copy it."""
    from tests.test_seeds_validation import write_study

    base = Path(tempfile.mkdtemp(prefix="kdcam-seeds-"))
    atexit.register(shutil.rmtree, base, True)
    root = base / "ws"
    Workspace.open(root).ensure()
    assert write_study(root) == list(STUDY)
    return root


@pytest.fixture
def study(tmp_path: Path) -> Path:
    shutil.copytree(_study(), tmp_path / "ws")
    return tmp_path / "ws"


def engine_aggregate(root: Path, ids: tuple[str, ...] = STUDY) -> SeedAggregate:
    result = run_inline(AggregateSpec(str(root), ids), _context())
    assert isinstance(result, SeedAggregate)
    return result


# -- which analyses form a group ---------------------------------------------------------------
def info(analysis_id: str, method: str = "gradcam", dataset: str = "shapes") -> AnalysisInfo:
    return AnalysisInfo(id=analysis_id, path=Path(analysis_id), created="", teacher="t", students=("s",),
                        dataset=dataset, n=10, method=method, target="label", bands={}, split="test")


def test_a_seed_group_is_the_study_name_and_the_same_measurement() -> None:
    assert split_seed_id("study-s12") == ("study", 12) and split_seed_id("study-x-s1") == ("study-x", 1)
    assert split_seed_id("study") is None and split_seed_id("study-s") is None and split_seed_id("studys1") is None
    analyses = [info("study-s2"), info("study-s0"), info("study-s10"), info("other-s1"), info("study"),
                info("study-s3", method="gradcam++")]
    broken = [UnreadableAnalysis("study-s4", Path("study-s4"), "results.json: not JSON"),
              UnreadableAnalysis("else-s4", Path("else-s4"), "results.json: not JSON")]
    group = find_seed_group("study-s0", analyses, broken)
    assert group is not None and group.study == "study" and group.aggregable
    assert group.members == ("study-s0", "study-s2", "study-s10") and group.seeds == (0, 2, 10)
    assert group.left_out == (("study-s3", "measured something else: CAM method 'gradcam++', not 'gradcam'"),
                              ("study-s4", "unreadable: results.json: not JSON"))
    alone = find_seed_group("other-s1", analyses, broken)
    assert alone is not None and alone.members == ("other-s1",) and not alone.aggregable
    assert find_seed_group("study", analyses) is None, "an id without -s<seed> names no group"
    assert find_seed_group("study-s4", analyses, broken) is None, "an unreadable analysis is in no group"


# -- the leaderboard's view over seeds ---------------------------------------------------------
SIZE = (160, 45)


async def open_leaderboard(app: KdcamApp, pilot: Pilot) -> Screen[object]:
    """Key 4, once the board lists the open analysis's two students."""
    await pilot.press("4")
    screen = app.screen
    await wait_for(pilot, lambda: screen.query_one("#board", DataTable).row_count == 2)
    return screen


async def test_o_shows_the_seed_group_aggregated_by_an_engine_job(study: Path) -> None:
    expected = engine_aggregate(study)
    app = KdcamApp(workspace=str(study))
    app.selected_analysis = "study-s1"
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_leaderboard(app, pilot)
        board = screen.query_one("#board", DataTable)
        assert "one of 3 seeds of study (o: over seeds)" in text_of(screen.query_one("#analysis-bar"))
        title, help_text, toggle = next(iter(LeaderboardCommands(screen).commands()))
        assert title == "Show the aggregate over seeds" and "study-s0, study-s1, study-s2" in help_text
        toggle()  # the palette's command is the key's action
        seeds = screen.query_one("#seeds", DataTable)
        await wait_for(pilot, lambda: seeds.row_count == 3, timeout=60)
        assert not board.display and seeds.display
        jobs = [r.spec for r in app.board.records.values()]
        assert len(jobs) == 1 and isinstance(jobs[0], AggregateSpec) and jobs[0].analyses == STUDY, \
            "computed by the engine's job runner"
        heading = text_of(screen.query_one("#seed-heading", Static))
        assert "over 3 seeds of study: study-s0, study-s1, study-s2" in heading and "minus si" in heading
        titles = [str(c.label) for c in seeds.columns.values()]
        assert titles == seed_rows.titles(expected)
        shown = [[str(cell) for cell in seeds.get_row_at(r)] for r in range(seeds.row_count)]
        assert [row[0] for row in shown] == ["teacher", "si·base", "kd"]
        for row, aggregate_row in zip(shown, expected.rows, strict=True):
            assert row == [str(cell) for cell in seed_rows.cells(aggregate_row, expected)]
        kd = expected.row("kd")
        acc = kd.metrics["accuracy"]
        assert shown[2][titles.index("acc %")] == \
            f"{100 * acc.mean:.1f} [{100 * acc.ci_low:.1f},{100 * acc.ci_high:.1f}]"
        difference = kd.vs_baseline["pearson"]
        assert shown[2][titles.index("ΔPearson")].endswith(f" {difference.better}/3 ({difference.significant})")
        seeds.move_cursor(row=2)
        await pilot.pause()
        assert "kd (student): kd-s0, kd-s1, kd-s2" in text_of(screen.query_one("#row-detail", Static))

        title, _, _ = next(iter(LeaderboardCommands(screen).commands()))
        assert title == "Show the single analysis"
        await pilot.press("o")
        assert board.display and not seeds.display
        await pilot.press("o")  # computed once: shown again without a second job
        await wait_for(pilot, lambda: seeds.row_count == 3)
        assert len(app.board.records) == 1


async def test_a_group_of_one_is_said_in_words(study: Path) -> None:
    for seed in (1, 2):
        shutil.rmtree(study / "analyses" / f"study-s{seed}")
    app = KdcamApp(workspace=str(study))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_leaderboard(app, pilot)
        await pilot.press("o")
        heading = screen.query_one("#seed-heading", Static)
        await wait_for(pilot, lambda: "only 1 analysis" in text_of(heading))
        assert "at least two" in text_of(heading) and "kdcam analyze --seeds 0,1,2" in text_of(heading)
        assert screen.query_one("#seeds", DataTable).row_count == 0 and not app.board.records


async def test_a_corrupt_sibling_is_named_and_the_others_are_aggregated(study: Path) -> None:
    (study / "analyses" / "study-s2" / "results.json").write_text('{"schema": "kdcam.analysis", "version": ')
    expected = engine_aggregate(study, STUDY[:2])
    app = KdcamApp(workspace=str(study))
    app.selected_analysis = "study-s0"
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_leaderboard(app, pilot)
        await pilot.press("o")
        seeds = screen.query_one("#seeds", DataTable)
        await wait_for(pilot, lambda: seeds.row_count == 3, timeout=60)
        heading = text_of(screen.query_one("#seed-heading", Static))
        assert "over 2 seeds" in heading and "study-s2 left out: unreadable" in heading
        assert "results.json" in heading, "the reason names the file"
        assert [str(c) for c in seeds.get_row_at(2)] == [str(c) for c in seed_rows.cells(expected.rows[2], expected)]


# -- the report ----------------------------------------------------------------------------------
class TableReader(HTMLParser):
    """The exact values (data-value) of each row of the tables with the given ids."""

    def __init__(self, *ids: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {i: [] for i in ids}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.current = a.get("id") if a.get("id") in self.tables else None
        elif self.current and tag == "tr":
            self.tables[self.current].append([])
        elif self.current and tag == "span" and "data-value" in a and self.tables[self.current]:
            self.tables[self.current][-1].append(a["data-value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.current = None


def test_the_report_of_a_seed_analysis_has_the_group_over_seeds(study: Path) -> None:
    expected = engine_aggregate(study)
    result = run_inline(ExportSpec(workspace=str(study), analysis="study-s1", formats=("html", "csv"), examples=2),
                        _context())
    out = Path(result.path)
    page = (out / "report.html").read_text()
    assert 'id="seeds-section"' in page and ">Over seeds</h2>" in page and 'href="#seeds-section"' in page
    reader = TableReader("over-seeds", "over-seeds-baseline")
    reader.feed(page)
    means = reader.tables["over-seeds"][1:]  # the header row holds no values
    names = [n for n in QUANTITIES if any(n in r.metrics for r in expected.rows)]
    assert {"accuracy", "pearson", "pointing_game"} <= set(names)
    assert [len(values) for values in means] == [1 + len(names)] * 3
    for values, row in zip(means, expected.rows, strict=True):
        assert values[0] == repr(float(max(s.n for s in row.metrics.values())))
        assert values[1:] == [repr(float(row.metrics[n].mean)) if n in row.metrics else "" for n in names]
    differences = reader.tables["over-seeds-baseline"][1:]
    students = [r for r in expected.rows if r.role != "baseline"]
    assert len(differences) == len(students) == 2
    kd = expected.row("kd")
    assert repr(kd.vs_baseline["accuracy"].stat.mean) in differences[1]
    assert f"better in {kd.vs_baseline['pearson'].better}/3 ({kd.vs_baseline['pearson'].significant})" in page

    rows = list(csv.DictReader(io.StringIO((out / "over_seeds.csv").read_text())))
    pearson = next(r for r in rows if r["method"] == "kd" and r["quantity"] == "mean" and r["name"] == "pearson")
    stat = kd.metrics["pearson"]
    assert (float(pearson["mean"]), float(pearson["ci_low"]), float(pearson["ci_high"])) == \
        (stat.mean, stat.ci_low, stat.ci_high)
    assert [float(pearson[i]) for i in STUDY] == list(stat.values)
    gap = next(r for r in rows if r["method"] == "kd" and r["quantity"] == "minus si" and r["name"] == "accuracy")
    assert int(gap["better"]) == kd.vs_baseline["accuracy"].better and float(gap["mean"]) == \
        kd.vs_baseline["accuracy"].stat.mean


def test_the_report_names_a_corrupt_sibling_and_can_be_told_the_group(study: Path) -> None:
    (study / "analyses" / "study-s2" / "results.json").write_text("[]")
    result = run_inline(ExportSpec(workspace=str(study), analysis="study-s0", formats=("html",), examples=2),
                        _context())
    page = (Path(result.path) / "report.html").read_text()
    assert "<code>study-s2</code> left out: unreadable" in page and "study-s0</code>, <code>study-s1</code>" in page
    alone = run_inline(ExportSpec(workspace=str(study), analysis="study-s0", formats=("html",), examples=2,
                                  out="alone", over_seeds=()), _context())
    assert 'id="seeds-section"' not in (Path(alone.path) / "report.html").read_text()
    with pytest.raises(KdcamError, match="study-s2"):
        run_inline(ExportSpec(workspace=str(study), analysis="study-s0", formats=("html",), out="named",
                              over_seeds=("study-s1", "study-s2")), _context())


def test_kdcam_analyze_seeds_without_a_name_makes_a_group_the_views_find(study: Path, capsys) -> None:
    from engine.api.analyses import scan_analyses
    from engine.cli.main import main

    assert main(["-w", str(study), "analyze", "--teacher", "t-s{seed}", "--students", "kd-s{seed},si-s{seed}",
                 "--seeds", "0,1", "--dataset", DATASET, "--n", "8", "--check-images", "0", "--device", "cpu"]) == 0
    assert "over 2 seeds" in capsys.readouterr().out
    analyses, unreadable = scan_analyses(study)
    new = sorted(a.id for a in analyses if a.id not in STUDY)
    assert len(new) == 2 and [split_seed_id(i) for i in new] == [(new[0][:-3], 0), (new[0][:-3], 1)]
    group = find_seed_group(new[0], analyses, unreadable)
    assert group is not None and group.members == tuple(new) and group.study.endswith("-t")
