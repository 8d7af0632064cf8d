"""The TUI's row models without an app: leaderboard rows and sorting, the browser's filters,
the Train screen's run book, the checkpoint table (unreadable entries included)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.api.analyses import UnreadableAnalysis, list_analyses, load_results
from engine.api.checkpoints import CheckpointMeta, UnreadableCheckpoint
from engine.api.runs import EpochRecord, UnreadableRun, has_validation
from engine.api.workspace import Workspace
from tests.test_reports_fixture import write_synthetic_analysis
from tui import format as fmt
from tui.jobboard import JobBoard
from tui.rows.browser import OUTCOMES, Filters, LruCache, load_analysis, outcome_of, siblings
from tui.rows.checkpoints import COLUMNS, checkpoint_rows
from tui.rows.leaderboard import COLUMNS as BOARD_COLUMNS
from tui.rows.leaderboard import BoardView, cells, stat_text
from tui.rows.runs import RunBook, epoch_columns, epoch_row, eta_seconds

STUDENTS = ("kd-student", "at-student", "si-student")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = Workspace.open(tmp_path_factory.mktemp("rows") / "ws").ensure()
    write_synthetic_analysis(ws, "synthetic", n=40, students=STUDENTS, num_classes=4)
    return ws.root


def test_board_rows_split_and_sort(workspace: Path) -> None:
    results = load_results(workspace, "synthetic")
    view = BoardView()
    assert [r.student for r in view.rows(results)] == list(STUDENTS)
    split = view.toggled_split()
    rows = split.rows(results)
    assert len(rows) == 5 * len(STUDENTS) and [r.split for r in rows[:5]] == [None, *OUTCOMES[1:]]

    by_pearson = view.sorted_by("Pearson")
    means = [r.stats["pearson"].mean for r in by_pearson.rows(results)]
    assert means == sorted(means, reverse=True)
    again = by_pearson.sorted_by("Pearson")
    assert [r.stats["pearson"].mean for r in again.rows(results)] == sorted(means)
    assert view.sorted_by("KL").descending is False  # lower is better: best (lowest) first

    # split rows stay under their student when sorted
    sorted_split = split.sorted_by("Pearson").rows(results)
    heads = [i for i, r in enumerate(sorted_split) if r.split is None]
    assert heads == [0, 5, 10]
    assert all(len(cells(r)) == len(BOARD_COLUMNS) == 12 for r in sorted_split)


def test_stat_text_handles_missing_values() -> None:
    from engine.api.results import Stat

    assert stat_text(None) == "—"
    assert stat_text(Stat(None, None, None, 0)) == "—"
    assert stat_text(Stat(0.8, 0.78, 0.83, 10)) == "0.80±.03"
    assert stat_text(Stat(0.5, None, None, 1), percent=True) == "50.0"


def test_browser_filters(workspace: Path) -> None:
    info = list_analyses(workspace)[0]
    data = load_analysis(workspace, info)
    filters = Filters()
    assert filters.rows(data) == list(range(40))
    for outcome in OUTCOMES[1:]:
        chosen = Filters(outcome=outcome)
        assert all(outcome_of(data, 0, r) == outcome for r in chosen.rows(data))
    assert sum(len(Filters(outcome=o).rows(data)) for o in OUTCOMES[1:]) == 40

    cycle = [filters.class_filter]
    for _ in range(5):
        filters = filters.next_class(len(data.class_names))
        cycle.append(filters.class_filter)
    assert cycle == [None, 0, 1, 2, 3, None]
    assert Filters(student=2).next_student(1, 3).student == 0
    assert Filters(student=5).for_analysis(data).student == 2

    least = Filters(sort="least similar").rows(data)
    pearson = data.per_image["pearson"][0]
    shown = [pearson[r] for r in least if pearson[r] == pearson[r]]
    assert shown == sorted(shown)
    assert siblings([info], info, "method") == [info]


def test_lru_cache_keeps_the_recent() -> None:
    cache: LruCache[int, str] = LruCache(2)
    built = []

    def build(key: int) -> str:
        built.append(key)
        return str(key)

    for key in (1, 2, 1, 3, 1, 2):
        cache.get(key, lambda key=key: build(key))
    assert built == [1, 2, 3, 2] and len(cache) == 2


def test_run_book_merges_disk_and_unreadable_runs(tmp_path: Path) -> None:
    from engine.api.runs import RunConfig, RunInfo, RunStatus

    config = RunConfig("t", "teacher", None, "vgg8", None, "shapes", 0, {}, {})
    epochs = (EpochRecord(1, 4, {"ce": 1.0}, elapsed=10.0), EpochRecord(2, 4, {"ce": 0.5}, elapsed=20.0))
    good = RunInfo("a-good", tmp_path / "a-good", config, RunStatus("finished"), epochs)
    book = RunBook(JobBoard())
    book.load([good], [UnreadableRun("b-bad", tmp_path / "b-bad", "b-bad/status.json: expected a JSON object")])
    assert book.ids() == ["a-good", "b-bad"]
    assert book.status("a-good") == "finished" and book.status("b-bad") == "unreadable"
    assert list(book.records("a-good")) == list(epochs) and list(book.records("b-bad")) == []
    assert book.problems() == [("run b-bad", "b-bad/status.json: expected a JSON object")]
    assert eta_seconds(epochs[1]) == 20.0
    assert epoch_row(epochs[1], ["ce"], has_validation(epochs))[:2] == ["2/4", "0.500"]
    assert "val" not in epoch_columns(["ce"], has_validation(epochs))  # a run without a validation split
    chosen_on_val = (EpochRecord(1, 4, {"ce": 1.0}, train_acc=0.5, test_acc=0.25, val_acc=0.375),)
    columns = epoch_columns(["ce"], has_validation(chosen_on_val))
    row = dict(zip(columns, epoch_row(chosen_on_val[0], ["ce"], True), strict=True))
    assert row["val"] == fmt.percent(0.375) and row["test"] == fmt.percent(0.25)
    assert book.ranks("a-good") == ""  # one process: nothing to say


def test_a_distributed_run_shows_its_ranks(tmp_path: Path) -> None:
    """A torchrun run is a workspace run like any other; the Train header names its world size."""
    import json

    from engine.api.runs import read_run

    run = tmp_path / "runs" / "20260101-000000-000-t"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"name": "t", "role": "teacher", "spec": {}, "world_size": 2}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "world_size": 2}))
    book = RunBook(JobBoard())
    book.load([read_run(tmp_path, run.name)], [])
    assert book.ranks(run.name) == " · 2 ranks (world size 2)"


def test_checkpoint_rows_list_unreadable_entries_in_order(tmp_path: Path) -> None:
    metas = [CheckpointMeta(name="b", arch="vgg8", num_classes=4, created="2026-01-02T03:04:05+00:00")]
    broken = [UnreadableCheckpoint("a", tmp_path / "a.json", f"{tmp_path}/a.json: field 'accuracy': expected a number")]
    rows = checkpoint_rows(metas, broken)
    assert [r.name for r in rows] == ["a", "b"]
    assert rows[0].cells()[:2] == ("a", "unreadable") and not rows[0].readable
    assert rows[1].cells()[COLUMNS.index("arch")] == "vgg8" and rows[1].readable


def test_checkpoint_rows_fold_last_twins_in_natural_order() -> None:
    metas = [CheckpointMeta(name=name, arch="vgg8", num_classes=4, accuracy=accuracy)
             for name, accuracy in (("vgg16-s0", 0.9), ("vgg16-s0-last", 0.8), ("vgg8-s0", 0.7), ("vgg8-s0-last", 0.6))]
    rows = checkpoint_rows(metas, [])
    assert [r.name for r in rows] == ["vgg8-s0", "vgg16-s0"]
    acc, last = COLUMNS.index("acc"), COLUMNS.index("last")
    assert [(r.cells()[acc], r.cells()[last]) for r in rows] == [("70.0%", "60.0%"), ("90.0%", "80.0%")]
    unfolded = checkpoint_rows(metas, [], show_twins=True)
    assert [r.name for r in unfolded] == ["vgg8-s0", "vgg8-s0-last", "vgg16-s0", "vgg16-s0-last"]
    assert unfolded[1].twin and unfolded[1].cells()[0].endswith("-last")


def test_unreadable_analysis_type_is_what_scan_returns(workspace: Path, tmp_path: Path) -> None:
    """The screens show ``UnreadableAnalysis.reason``; it names the file."""
    from engine.api.analyses import scan_analyses

    ws = Workspace.open(tmp_path / "ws").ensure()
    write_synthetic_analysis(ws, "broken", n=8, students=("kd-student",), num_classes=4)
    (ws.analyses / "broken" / "results.json").write_text("[]")
    infos, broken = scan_analyses(ws)
    assert infos == [] and isinstance(broken[0], UnreadableAnalysis) and "results.json" in broken[0].reason


def test_leaderboard_marks_the_baseline_and_shows_each_rows_difference_from_it(tmp_path: Path) -> None:
    from engine.api.results import Stat
    from tui.rows.leaderboard import analysis_bar, detail_text, difference_text

    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws)
    results = load_results(ws, "synthetic")
    assert results.baseline is None  # a file written before baselines: no marks, no differences
    plain = BoardView().rows(results)
    assert not any(r.baseline for r in plain) and all(cells(r)[3] == "" for r in plain)
    # the same analysis with the si student as its baseline and a difference for the kd student
    gap = Stat(0.05, 0.01, 0.09, 60)
    kd = results.pair("kd-student")
    results = dataclasses.replace(results, baseline="si-student", pairs=tuple(
        dataclasses.replace(p, vs_baseline={"pearson": gap}) if p is kd else p for p in results.pairs))
    rows = {r.student: r for r in BoardView().rows(results)}
    assert rows["si-student"].baseline and cells(rows["si-student"])[1] == "si·base"
    assert cells(rows["kd-student"])[list(BOARD_COLUMNS).index("ΔPear.")] == "+.05*"  # its interval excludes 0
    assert "minus the baseline" in detail_text(rows["kd-student"]).plain
    assert difference_text(Stat(-0.012, -0.05, 0.02, 60), percent=True) == "-1.2"
    assert BoardView().sorted_by("ΔPear.").rows(results)[0].student == "kd-student"
    assert "vs baseline" not in analysis_bar(results)  # the teacher has no difference in this file
