"""``kdcam checkpoints|runs|analyses list`` and friends: one line per row at 80 columns, unreadable
entries named with their reason, JSON for scripts, CSV without float noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from tests.test_tui_fixtures import ANALYSIS_ID, workspace_copy

TEACHER = "vgg13-teacher-shapes-demo-s0"
METHODS = ("kd", "fitnet", "crd", "at", "similarity")


def _checkpoint(store: Path, name: str, **fields: object) -> None:
    meta = {"name": name, "arch": "vgg8", "num_classes": 20, "width": 0.5, "role": "student",
            "dataset": "shapes?classes=20&train=2000&test=500", "params": 1234567,
            "created": "2026-01-02T03:04:05+00:00", **fields}
    (store / f"{name}.json").write_text(json.dumps(meta))
    (store / f"{name}.safetensors").write_bytes(b"w")


def _kdcam(workspace: Path, *argv: str) -> int:
    return main(["--workspace", str(workspace), *argv])


@pytest.fixture
def store(tmp_path: Path) -> Path:
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    for name, fields in [(TEACHER, {"arch": "vgg13", "role": "teacher", "accuracy": 0.9}),
                         *((f"vgg8-{m}-shapes-demo-s0", {"method": m, "teacher": TEACHER, "accuracy": 0.7290000081})
                           for m in METHODS)]:
        _checkpoint(directory, name, **fields)
        _checkpoint(directory, f"{name}-last", **{**fields, "accuracy": 0.7009999752044678})
    return directory


def test_checkpoints_list_fits_each_group_on_one_line_at_80_columns(
        store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert _kdcam(store.parent, "checkpoints", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if "%" in line]
    assert len(body) == 1 + len(METHODS)  # each -last twin folded into its best checkpoint's row
    for method in METHODS:  # the part of each name that differs is visible, on its own line
        assert sum(f"vgg8-{method}" in line for line in body) == 1
    assert all("70.10%" in line and "72.90%" in line for line in body if "vgg8-" in line)
    assert "0.7009999" not in "\n".join(lines)


def test_checkpoints_list_sorts_naturally(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    (tmp_path / "checkpoints").mkdir()
    for name in ("vgg16", "vgg8", "vgg11"):
        _checkpoint(tmp_path / "checkpoints", name)
    _kdcam(tmp_path, "checkpoints", "list")
    out = capsys.readouterr().out
    assert out.index("vgg8 ") < out.index("vgg11 ") < out.index("vgg16 ")


def _run(root: Path, run_id: str, events: str, status: str = '{"state": "finished"}') -> None:
    run = root / "runs" / run_id
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"name": "vgg8-kd", "role": "student", "method": "kd",
                                                 "teacher": "t", "dataset": "shapes", "spec": {"epochs": 2}}))
    (run / "status.json").write_text(status)
    (run / "events.jsonl").write_text(events)


EPOCHS = "".join(json.dumps({"epoch": e, "epochs": 2, "losses": {"ce": 1.2345678, "kd": 0.1},
                             "train_acc": 0.5, "val_acc": 0.62, "test_acc": 0.7009999752044678, "lr": 0.05}) + "\n"
                 for e in (1, 2))
RUN_ID = "20260101-000000-000-vgg8-kd-shapes-demo-s0"


def test_runs_list_names_unreadable_runs_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _run(tmp_path, RUN_ID, EPOCHS)
    _run(tmp_path, "20260102-000000-000-broken", EPOCHS, status='{"state": "dancing"}')
    assert _kdcam(tmp_path, "runs", "list") == 1
    captured = capsys.readouterr()
    assert RUN_ID in captured.out and "70.10%" in captured.out and "2/2" in captured.out
    assert all(len(line) <= 80 for line in captured.out.splitlines())
    assert "unreadable run 20260102-000000-000-broken" in captured.err and "state" in captured.err
    assert _kdcam(tmp_path, "runs", "list", "--json") == 1
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed["runs"]] == [RUN_ID] and listed["runs"][0]["best_accuracy"] == pytest.approx(0.701)
    assert listed["unreadable"][0]["id"] == "20260102-000000-000-broken" and "status.json" in \
        listed["unreadable"][0]["reason"]


def test_runs_inspect_and_csv_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, RUN_ID, EPOCHS)
    assert _kdcam(tmp_path, "runs", "inspect", RUN_ID, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "finished" and len(report["events"]) == 2 and report["config"]["method"] == "kd"
    assert _kdcam(tmp_path, "runs", "export", RUN_ID, "--csv") == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "epoch,epochs,loss_ce,loss_kd,train_acc,val_acc,test_acc,lr,images_per_s,elapsed_s"
    assert rows[1] == "1,2,1.234568,0.1,0.5,0.62,0.701,0.05,,"
    out = tmp_path / "epochs.csv"
    assert _kdcam(tmp_path, "runs", "export", RUN_ID, "--csv", "--out", str(out)) == 0
    assert out.read_text().splitlines() == rows
    assert _kdcam(tmp_path, "runs", "inspect", "no-such-run") == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_analyses_list_inspect_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    ws = workspace_copy(tmp_path / "ws")
    broken = ws / "analyses" / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{}")
    assert _kdcam(ws, "analyses", "list") == 1
    captured = capsys.readouterr()
    assert ANALYSIS_ID in captured.out and "unreadable analysis broken" in captured.err
    assert all(len(line) <= 80 for line in captured.out.splitlines())
    _kdcam(ws, "analyses", "list", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert listed["analyses"][0]["students"] == ["kd-student", "at-student"]
    assert listed["unreadable"][0]["id"] == "broken" and "results.json" in listed["unreadable"][0]["reason"]
    assert _kdcam(ws, "analyses", "inspect", ANALYSIS_ID, "--json") == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)["models"]] == ["teacher", "kd-student", "at-student"]
    assert _kdcam(ws, "analyses", "delete", "broken") == 1  # not a terminal: refuses without --yes
    assert "pass --yes" in capsys.readouterr().err and broken.exists()
    assert _kdcam(ws, "analyses", "delete", "broken", "--yes") == 0
    assert not broken.exists() and not [p for p in (ws / "analyses").iterdir() if p.name.startswith(".")]
    assert _kdcam(ws, "analyses", "delete", "../checkpoints", "--yes") == 1
    assert (ws / "checkpoints").is_dir()


def test_the_train_summary_keeps_each_model_on_one_line_and_names_apart_at_80_columns(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped ``make run`` output is 80 columns: names cut at their end all read ``vgg11-kd…``."""
    from engine.api.results import StudentOutcome, TeacherOutcome, TrainResult
    from engine.cli.train import print_suite

    monkeypatch.setenv("COLUMNS", "80")
    methods = ("si", "kd", "kd+std", "kd+kd_weight0.9+std", "dkd", "cat+cat_weight0.045", "xa")
    summary = TrainResult("shapes", "demo", 0, 8, TeacherOutcome("vgg16-shapes-demo-teacher", 0.969, None, True),
                          tuple(StudentOutcome(m, f"vgg11-{m}-shapes-demo-s0", 0.4 + i / 100, 0.39, None, 0.41)
                                for i, m in enumerate(methods)))
    print_suite(summary)
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if "%" in line and "vgg" in line]
    assert len(body) == 1 + len(methods)  # one line per model, none wrapped
    assert body[0].startswith("teacher") and "reused" in "\n".join(lines)
    names = [next(word for word in line.split() if word.startswith("vgg")) for line in body]
    assert len(set(names)) == len(names)  # the part that tells the checkpoints apart is kept
    assert "+1.00%" in body[2] and "40.00%" in body[1]


def test_the_analysis_summary_keeps_each_model_on_one_line_and_tells_twins_apart_at_80_columns(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``make run`` and ``kdcam analyze`` print: no name folded over lines, accuracy in percent
    and its differences in points, a ``-last`` twin not shown as a second ``kd``."""
    from tests.test_tui_fixtures import ZOO, ZOO_ANALYSIS_ID, zoo_workspace

    monkeypatch.setenv("COLUMNS", "80")
    assert _kdcam(zoo_workspace(), "analyses", "inspect", ZOO_ANALYSIS_ID) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    tables = "\n".join(lines).split("┡")[1:]  # each table's body follows its header rule
    rows = [[row.split("│")[1].strip() for row in table.splitlines() if row.startswith("│")] for table in tables]
    models, pairs, differences = rows
    assert len(models) == len(ZOO) and len(pairs) == len(differences) == len(ZOO) - 1  # + teacher − si
    assert len(set(models)) == len(models) and all("…" not in label or len(label) > 8 for label in models)
    assert pairs[:2] == ["si·base", "kd"] and "kd-last" in differences and "at-last" in differences
    assert any("acc %" in line for line in lines[:8]) and "points [" in "\n".join(lines)
    accuracy = [row.split("│")[3].strip() for row in "\n".join(lines).split("┡")[1].splitlines() if row.startswith("│")]
    assert all(float(value) > 1 or float(value) == 0 for value in accuracy)  # percent, not a fraction
    sanity = "\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("randomisation check")):])
    assert f"of {len(ZOO)} models passed" in sanity and "FAILED: teacher" in sanity  # the random-weight teacher


def test_markup_in_file_text_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset spec is free text from a file: ``[/bold]`` in it made Rich's markup parser raise."""
    monkeypatch.setenv("COLUMNS", "200")
    ws = workspace_copy(tmp_path / "ws")
    results = ws / "analyses" / ANALYSIS_ID / "results.json"
    doc = json.loads(results.read_text())
    doc["dataset"]["spec"] = "[/bold]spec"
    results.write_text(json.dumps(doc))
    assert _kdcam(ws, "analyses", "list") == 0
    assert "[/bold]spec" in capsys.readouterr().out
    assert _kdcam(ws, "analyses", "inspect", ANALYSIS_ID) == 0
    assert "images of [/bold]spec" in capsys.readouterr().out
