"""The export a user copies home: every file there, every number equal to the analysis's,
one offline report.html, and nothing half-written when something goes wrong."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from engine.api.exports import MANIFEST
from engine.api.specs import ExportSpec
from engine.api.workspace import Workspace
from engine.errors import JobCancelled, KdcamError
from engine.events import Progress
from engine.jobs import JobContext
from engine.reports.export import run_export_job
from tests.test_reports_fixture import write_synthetic_analysis

ROOT = Path(__file__).resolve().parents[1]
CSV_FILES = ("leaderboard.csv", "per_image.csv", "per_class_accuracy.csv", "confused_pairs.csv")
# A resource fetched by URL: src/href/url()/srcset/@import whose value is absolute or protocol-relative.
URL_REFERENCE = re.compile(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:[a-z]+:)?//"""
                           r"""|url\(\s*["']?\s*(?:[a-z]+:)?//|@import""", re.I)


def context(events: list | None = None, cancel: threading.Event | None = None) -> JobContext:
    return JobContext("test", (events if events is not None else []).append, cancel or threading.Event())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, list]:
    ws = Workspace.open(tmp_path_factory.mktemp("ws")).ensure()
    write_synthetic_analysis(ws, "a1", n=40, num_classes=4)
    events: list = []
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", examples=3), context(events))
    return ws, Path(result.path), events


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def same(cell: str, value: float | int | None) -> bool:
    """A CSV cell holds exactly the analysis's value (empty for null/NaN); a value that is a float32
    is written as that float32's shortest text, which reads back as exactly it in float32."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return cell == ""
    if float(np.float32(value)) == float(value):
        return np.float32(cell) == np.float32(value)
    return float(cell) == float(value)


def test_float32_values_are_written_without_widening_noise() -> None:
    from engine.reports.tables import exact, float32_cells

    assert exact(0.7009999752044678) == "0.701" and exact(np.float32(0.1)) == "0.1"
    assert exact(0.4523809523809524) == "0.4523809523809524"  # float64 values keep every digit
    assert exact(float("nan")) == "" and exact(1e300) == "1e+300"
    assert float32_cells(np.array([0.701, np.nan], dtype=np.float32)) == ["0.701", ""]


def test_every_file_is_there_and_results_json_is_the_analysis(exported) -> None:
    ws, out, _ = exported
    assert out == ws.exports / "a1"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"results.json", "report.html", *CSV_FILES} <= names
    figures = {n for n in names if n.startswith("figures/")}
    models = ("teacher", "kd-student", "at-student", "si-student")
    expected = {f"figures/grid_{k}.png" for k in ("most_similar", "least_similar", "random_sample")}
    expected |= {f"figures/metric_{m}.png" for m in ("pearson", "l2_similarity", "iou", "kl")}
    expected |= {f"figures/confusion_{m}.png" for m in models} | {f"figures/worst_{m}.png" for m in models}
    expected |= {f"figures/confused_pairs_{m}.png" for m in models}
    expected |= {f"figures/confused_examples_{m}.png" for m in models}
    assert expected <= figures
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (out / "results.json").read_bytes() == (ws.analyses / "a1" / "results.json").read_bytes()
    assert not [p for p in ws.exports.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    assert oct((out / "report.html").stat().st_mode & 0o777) == oct(0o644)


def test_leaderboard_csv_holds_the_analysis_numbers(exported) -> None:
    ws, out, _ = exported
    results = json.loads((ws.analyses / "a1" / "results.json").read_text())
    rows = read_csv(out / "leaderboard.csv")
    assert [r["student"] for r in rows] == [p["student"] for p in results["pairs"]]
    for row, pair in zip(rows, results["pairs"], strict=True):
        assert row["band"] == pair["band"] and int(row["band_score"]) == pair["band_score"]
        for metric, stat in pair["metrics"].items():
            assert same(row[metric], stat["mean"]) and same(row[f"{metric}_ci_low"], stat["ci_low"])
            assert same(row[f"{metric}_ci_high"], stat["ci_high"])
            if "band" in stat:
                assert row[f"{metric}_band"] == stat["band"]
        assert same(row["agreement"], pair["agreement"]["mean"])
        student = next(m for m in results["models"] if m["name"] == pair["student"])
        assert same(row["accuracy"], student["accuracy"]["mean"])


def test_per_image_csv_holds_every_prediction_and_metric(exported) -> None:
    ws, out, _ = exported
    data = np.load(ws.analyses / "a1" / "per_image.npz")
    rows = read_csv(out / "per_image.csv")
    assert len(rows) == len(data["labels"])
    for i, row in enumerate(rows):
        assert int(row["index"]) == data["indices"][i] and int(row["label"]) == data["labels"][i]
        for m, model in enumerate(data["models"]):
            assert int(row[f"{model}_pred"]) == data["preds"][m, i]
            assert np.float32(row[f"{model}_confidence"]) == data["confidences"][m, i]
        for s, student in enumerate(data["students"]):
            for metric in ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance", "output_kl"):
                value = data[metric][s, i]
                cell = row[f"{student}_{metric}"]
                assert (cell == "") if np.isnan(value) else np.float32(cell) == value
    assert rows[0]["si-student_pearson"] == "", "a degenerate map's NaN must be an empty cell"


def test_class_and_confusion_tables_hold_the_diagnosis(exported) -> None:
    ws, out, _ = exported
    diagnosis = json.loads((ws.analyses / "a1" / "results.json").read_text())["diagnosis"]
    per_class = read_csv(out / "per_class_accuracy.csv")
    expected = [(model, c) for model, d in diagnosis.items() for c in d["per_class"]]
    assert len(per_class) == len(expected)
    for row, (model, entry) in zip(per_class, expected, strict=True):
        assert row["model"] == model and int(row["class"]) == entry["class"]
        assert same(row["accuracy"], entry["accuracy"])
    pairs = read_csv(out / "confused_pairs.csv")
    expected_pairs = [(model, p) for model, d in diagnosis.items() for p in d["confused_pairs"]]
    assert len(pairs) == len(expected_pairs)
    for row, (model, pair) in zip(pairs, expected_pairs, strict=True):
        assert row["model"] == model and int(row["count"]) == pair["count"] and same(row["rate"], pair["rate"])


class LeaderboardReader(HTMLParser):
    """Collects, per leaderboard row, the student and the exact values the cells carry."""

    def __init__(self) -> None:
        super().__init__()
        self.in_leaderboard = False
        self.rows: dict[str, list[str]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.in_leaderboard = a.get("id") == "leaderboard"
        elif self.in_leaderboard and tag == "tr" and "data-student" in a:
            self.current = a["data-student"]
            self.rows[self.current] = []
        elif self.current and tag == "span" and "data-value" in a:
            self.rows[self.current].append(a["data-value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_leaderboard = False
            self.current = None


def test_report_html_shows_the_analysis_numbers_and_what_was_computed(exported) -> None:
    ws, out, _ = exported
    results = json.loads((ws.analyses / "a1" / "results.json").read_text())
    page = (out / "report.html").read_text()
    reader = LeaderboardReader()
    reader.feed(page)
    assert list(reader.rows) == [p["student"] for p in results["pairs"]]
    for pair in results["pairs"]:
        student = next(m for m in results["models"] if m["name"] == pair["student"])
        expected = [student["accuracy"]["mean"], pair["agreement"]["mean"],
                    *(pair["metrics"][m]["mean"] for m in ("pearson", "l2_similarity", "iou", "kl")),
                    pair["output_kl"]["mean"], pair["n_valid"]]
        assert [float(v) for v in reader.rows[pair["student"]]] == [float(v) for v in expected]
        assert f">{pair['band']}</span>" in page
    for fact in ("gradcam", "label", "stage5", "shapes / test", "40 of 120", "kdcam 0.1.0", "teacher"):
        assert fact in page, fact
    assert "&lt;checked &amp; escaped&gt;" in page, "the written diagnosis summary is shown, escaped"
    assert all(f'href="{name}"' in page for name in CSV_FILES), "the page links the data files beside it"
    assert page.count("data:image/png;base64,") >= 3 + 4 + 4 + 4


def test_report_html_references_nothing_outside_itself(exported) -> None:
    _, out, _ = exported
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert URL_REFERENCE.search(page) is None, URL_REFERENCE.search(page)
    assert "<link" not in page and "<iframe" not in page


def test_progress_reaches_every_file(exported) -> None:
    _, out, events = exported
    progress = [e for e in events if isinstance(e, Progress)]
    last = progress[-1]
    assert last.done == last.total and last.message == "report.html"
    reported = {e.message for e in progress}
    assert {f"figures/{p.name}" for p in (out / "figures").iterdir()} <= reported


def test_grey_images_without_masks_and_a_student_with_only_degenerate_maps(tmp_path: Path) -> None:
    """MNIST-like data and an untrained student: the report still opens, with dashes where no mean exists."""
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "grey", n=16, num_classes=3, size=28, channels=1, blank_student=True,
                             with_diagnosis_maps=False)
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="grey", examples=2), context())
    out = Path(result.path)
    blank = next(r for r in read_csv(out / "leaderboard.csv") if r["student"] == "si-student")
    assert blank["pearson"] == "" and blank["band"] == "Problematic"
    reader = LeaderboardReader()
    reader.feed((out / "report.html").read_text())
    assert reader.rows["si-student"][2] == "", "no mean: an empty data-value, shown as a dash"
    assert (out / "figures" / "worst_teacher.png").is_file(), "errors are shown even without their CAMs"


def test_formats_choose_what_is_written(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=12, num_classes=3)
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", out="only-csv",
                                       formats=("csv", "json")), context())
    assert sorted(p.name for p in Path(result.path).iterdir()) == sorted(["results.json", MANIFEST, *CSV_FILES])
    assert Path(result.path) == ws.exports / "only-csv"
    elsewhere = run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", out="shared/r1", formats=("json",)),
                               context())
    assert Path(elsewhere.path) == ws.root / "shared" / "r1" and (ws.root / "shared" / "r1" / "results.json").is_file()


def test_unknown_analysis_is_a_clear_error(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "real-one", n=8, num_classes=3)
    with pytest.raises(KdcamError, match=r"no analysis 'nope'.*known: real-one"):
        run_export_job(ExportSpec(workspace=str(ws.root), analysis="nope"), context())
    assert list(ws.exports.iterdir()) == []


def test_existing_destination_is_refused_unless_overwrite(tmp_path: Path) -> None:
    """--overwrite replaces a previous export; a folder kdcam did not export is never replaced
    (tests/hostile/test_data_loss_exports.py has the hostile cases)."""
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    spec = ExportSpec(workspace=str(ws.root), analysis="a1", formats=("json",))
    run_export_job(spec, context())
    old = ws.exports / "a1"
    with pytest.raises(KdcamError, match="already exists.*--overwrite"):
        run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", formats=("csv",)), context())
    assert sorted(p.name for p in old.iterdir()) == sorted(["results.json", MANIFEST])
    run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", formats=("csv",), overwrite=True), context())
    assert sorted(p.name for p in old.iterdir()) == sorted([*CSV_FILES, MANIFEST])
    assert sorted(p.name for p in ws.exports.iterdir()) == ["a1"]
    mine = ws.exports / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(KdcamError, match="not a kdcam export"):
        run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", out="mine", overwrite=True), context())
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("code, message", [(errno.EROFS, "cannot write"), (errno.ENOSPC, "no space left")])
def test_a_destination_that_fails_mid_export_leaves_nothing(tmp_path: Path, monkeypatch, code: int,
                                                            message: str) -> None:
    """A read-only or full file system discovered while writing: a clear error and no half report."""
    from engine.api import atomic

    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    real_write = atomic.write_bytes
    calls = []

    def failing_write(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(code, "simulated")
        real_write(path, data)

    monkeypatch.setattr(atomic, "write_bytes", failing_write)
    with pytest.raises(KdcamError, match=message):
        run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1"), context())
    assert list(ws.exports.iterdir()) == []


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` really unwritable: permissions for a user, a read-only mount for root
    (root ignores permissions, and CI runs as root)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(directory)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root cannot mount a read-only file system here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_read_only_destination_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    with read_only(ws.exports):
        with pytest.raises(KdcamError, match="cannot write"):
            run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1"), context())
        assert list(ws.exports.iterdir()) == []
    assert list(ws.exports.iterdir()) == []


def test_cancel_stops_between_figures_and_leaves_nothing(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    cancel = threading.Event()

    def on_event(event) -> None:
        if isinstance(event, Progress) and event.message.startswith("figures/"):
            cancel.set()

    with pytest.raises(JobCancelled):
        run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1"), JobContext("t", on_event, cancel))
    assert list(ws.exports.iterdir()) == []


def test_cli_exports_and_reports_errors(tmp_path: Path, capsys) -> None:
    from engine.cli.main import main

    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    assert main(["--workspace", str(ws.root), "export", "a1", "--formats", "csv,json", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"event": "result"' in out and str(ws.exports / "a1") in out
    assert (ws.exports / "a1" / "leaderboard.csv").is_file()
    assert main(["--workspace", str(ws.root), "export", "a1", "--formats", "csv"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["--workspace", str(ws.root), "export", "a1", "--formats", "pdf"]) == 1
    assert "unknown pdf" in capsys.readouterr().err


def test_export_needs_no_torch(tmp_path: Path) -> None:
    """The export runs where torch is absent or slow to import: a reports-only machine, the TUI thread."""
    ws = Workspace.open(tmp_path).ensure()
    write_synthetic_analysis(ws, "a1", n=8, num_classes=3)
    code = (
        "import sys, threading; from engine.jobs import JobContext; from engine.api.specs import ExportSpec; "
        "from engine.reports.export import run_export_job; import engine.cli.export; "
        f"run_export_job(ExportSpec(workspace={str(ws.root)!r}, analysis='a1', examples=2), "
        "JobContext('t', lambda e: None, threading.Event())); "
        "print(','.join(m for m in ('torch', 'torchvision', 'textual') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert (ws.exports / "a1" / "report.html").is_file()


def _page_and_results(exported) -> tuple[str, dict]:
    ws, out, _ = exported
    return (out / "report.html").read_text(), json.loads((ws.analyses / "a1" / "results.json").read_text())


def test_accuracy_is_a_percentage_everywhere_in_the_page(exported) -> None:
    page, results = _page_and_results(exported)
    for model in results["models"]:
        acc = model["accuracy"]["mean"]
        shown = re.findall(rf'data-value="{re.escape(repr(acc))}">([^<]*)</span>', page)
        assert shown and set(shown) == {f"{100 * acc:.1f}%"}, (model["name"], shown)
        low, high = model["accuracy"]["ci_low"], model["accuracy"]["ci_high"]
        assert f"{100 * low:.1f}–{100 * high:.1f}%" in page
    for pair in results["pairs"]:
        assert f">{100 * pair['agreement']['mean']:.1f}%</span>" in page
    for entry in results["diagnosis"]["teacher"]["per_class"]:
        if entry["accuracy"] is not None:
            assert f'data-value="{entry["accuracy"]!r}">{100 * entry["accuracy"]:.1f}%</span>' in page


def test_each_overall_band_is_explained_beside_its_metric_bands(exported) -> None:
    page, results = _page_and_results(exported)
    labels = {"pearson": "Pearson correlation", "l2_similarity": "L2 similarity", "iou": "IoU (maps &gt; 0.5)",
              "kl": "KL divergence"}
    names = ("Problematic", "Acceptable", "Good", "Excellent")
    below_seen = 0
    for pair in results["pairs"]:
        scores = pair["band_scores"]
        mean = sum(scores.values()) / 4
        assert (f"overall {pair['band']} = mean of the four metric scores" in page
                and f"= {mean:g}, rounded half up to {pair['band_score']}" in page), pair["student"]
        for metric, score in scores.items():
            if score < pair["band_score"]:
                assert f"{labels[metric]} is {names[score]}" in page
                below_seen += 1
    assert below_seen, "the fixture has a row with a metric below its overall band"


def test_every_model_has_its_own_diagnosis_text(exported) -> None:
    page, results = _page_and_results(exported)
    blocks = page.split('<h3 id="diag-')[1:]
    assert len(blocks) == len(results["models"])
    summaries = [re.search(r'<div class="summary"><ul>(.*?)</ul></div>', block).group(1) for block in blocks]
    assert len(set(summaries)) == len(summaries), "two models share the same findings"
    teacher_acc = results["diagnosis"]["teacher"]["accuracy"]
    for model in results["models"][1:]:
        gap = 100 * (results["diagnosis"][model["name"]]["accuracy"] - teacher_acc)
        block = next(b for b in blocks if b.startswith(f'{model["name"]}"'))
        assert f"Against the teacher: accuracy {gap:+.1f} points" in block


def test_training_curves_give_each_loss_term_its_own_axis() -> None:
    """A hint loss near 16 and a cross-entropy near 0.5 on one axis (or summed) hid the CE curve."""
    from engine.api.runs import EpochRecord
    from engine.reports.figures import training_figure

    fitnet = [EpochRecord(epoch=e, losses={"ce": 0.5 / e, "hint": 16.0 / e}, test_acc=0.5 + e / 10) for e in (1, 2, 3)]
    kd = [EpochRecord(epoch=e, losses={"ce": 0.6 / e, "kd": 1.5 / e}, test_acc=0.4 + e / 10) for e in (1, 2, 3)]
    fig = training_figure({"fitnet-student": fitnet, "kd-student": kd}, "runs")
    axes = {ax.get_title(): ax for ax in fig.axes}
    assert set(axes) == {"test accuracy (%)", "loss: ce", "loss: hint", "loss: kd"}
    assert axes["loss: ce"].get_ylim()[1] < 1.0 and axes["loss: hint"].get_ylim()[1] > 10
    assert len(axes["loss: ce"].lines) == 2 and len(axes["loss: hint"].lines) == 1
    assert 60 < axes["test accuracy (%)"].get_ylim()[1] <= 100
