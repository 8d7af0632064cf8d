"""Data loss in the checkpoint store, as a careless user or a hostile workspace would cause it: a run
never replaces another run's checkpoints, orphans are reported and never overwritten, a journal
cannot reach outside the store, and no id or name becomes a path out of the workspace."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from engine.api.analyses import analysis_dir
from engine.api.checkpoints import CheckpointMeta
from engine.api.integrity import scan_store
from engine.api.names import check_id
from engine.api.runs import read_run
from engine.api.specs import ImportSpec, TrainSpec
from engine.checkpoints.importer import import_checkpoint
from engine.checkpoints.store import CheckpointStore
from engine.cli.main import main
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import build_model
from engine.train.suite import run_train_job

pytestmark = pytest.mark.usefixtures("one_thread")



def digest(directory: Path) -> dict[str, str]:
    """Every user-visible file of a folder tree with a hash of its bytes."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".lock"}


def save(store: CheckpointStore, name: str, run_id: str | None = None) -> None:
    store.save(name, build_model("vgg8", 4, 0.25), CheckpointMeta(name=name, arch="vgg8", num_classes=4, width=0.25,
                                                                   run_id=run_id))


def test_rerunning_train_with_other_epochs_keeps_the_first_runs_students(tmp_path):
    spec = TrainSpec(workspace=str(tmp_path), dataset="shapes?classes=4&train=32&test=16", teacher="vgg8",
                     student="vgg8", methods=("si",), recipe="quick", epochs=1, batch_size=16, width=0.06,
                     device="cpu")
    ctx = JobContext("t", lambda event: None, threading.Event())
    first = run_train_job(spec, ctx)
    student = first.students[0].name
    kept = digest(tmp_path / "checkpoints")
    second = run_train_job(TrainSpec(**{**spec.to_dict(), "epochs": 2}), ctx)
    assert second.teacher.reused and second.students[0].name == f"{student}-2"
    now = digest(tmp_path / "checkpoints")
    assert {k: now[k] for k in kept if not k.startswith(".")} == {k: v for k, v in kept.items()
                                                                   if not k.startswith(".")}
    store = CheckpointStore(tmp_path / "checkpoints")
    assert store.meta(student).run_id == first.students[0].run_id
    assert store.meta(f"{student}-2-last").epochs == 2  # the best epoch is chosen on validation


def test_a_run_cannot_take_names_another_run_holds(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    save(store, "best", run_id="older-run")
    store.reserve(["busy", "busy-last"], "running-run")
    before = digest(store.directory)
    with pytest.raises(KdcamError, match=r"run resuming-run cannot write 'best'.*already exists.*rename best"):
        store.reserve(["best", "best-last"], "resuming-run")  # e.g. --resume of an old run
    with pytest.raises(KdcamError, match="reserved by run running-run"):
        save(store, "busy", run_id="another-run")
    with pytest.raises(KdcamError, match="'best' already exists"):
        save(store, "best", run_id="another-run")
    assert digest(store.directory) == before
    assert store.free_name("busy", ("", "-last")) == "busy-2"


def test_orphaned_weights_are_reported_and_never_overwritten_by_an_import(tmp_path, capsys):
    store = CheckpointStore(tmp_path / "checkpoints")
    save(store, "mine")
    (store.directory / "mine.json").rename(store.directory / "elsewhere.json")  # e.g. a rename killed half-way
    source = tmp_path / "mine.pth"
    torch.save(build_model("vgg8", 4, 0.25).state_dict(), source)
    before = digest(store.directory)
    with pytest.raises(KdcamError, match=r"mine.safetensors has no metadata.*doctor"):
        import_checkpoint(ImportSpec(workspace=str(tmp_path), path=str(source)))
    assert digest(store.directory) == before

    assert main(["-w", str(tmp_path), "checkpoints", "list"]) == 0
    assert "2 file(s)" in capsys.readouterr().err  # the orphans are not hidden: list points to doctor
    assert main(["-w", str(tmp_path), "checkpoints", "doctor"]) == 1
    out = capsys.readouterr().out
    assert "orphan-weights" in out and "orphan-meta" in out
    assert main(["-w", str(tmp_path), "checkpoints", "doctor", "--repair"]) == 0
    moved = {p.name for p in (store.directory / ".orphans").rglob("*") if p.is_file()}
    assert moved == {"mine.safetensors", "elsewhere.json"}  # set aside, never deleted
    assert scan_store(store.directory).consistent


def test_a_name_held_for_a_run_that_no_longer_exists_is_reported_and_freed(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    store.reserve(["gone", "gone-last"], "20260101-000000-000-gone")  # its run folder was deleted
    assert store.free_name("gone", ("", "-last")) == "gone-2"
    assert {p.kind for p in scan_store(store.directory).problems()} == {"reservation"}
    assert main(["-w", str(tmp_path), "checkpoints", "doctor", "--repair"]) == 0
    assert store.free_name("gone", ("", "-last")) == "gone"


@pytest.mark.parametrize(("state", "has_state", "stale"), [
    ("cancelled", False, True), ("failed", False, True), ("cancelled", True, False), ("running", False, False)])
def test_a_name_held_by_a_stopped_run_is_freed_only_when_there_is_nothing_to_resume(tmp_path, state, has_state,
                                                                                     stale):
    """A killed run cannot release its names; doctor frees them unless the run can still resume into them."""
    run_id = "20260101-000000-000-stopped"
    run = tmp_path / "runs" / run_id
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"name": "held", "role": "student", "spec": {}}))
    (run / "status.json").write_text(json.dumps({"state": state, "pid": os.getpid()}))  # this process: alive
    if has_state:
        (run / "state.pt").write_bytes(b"x")
    store = CheckpointStore(tmp_path / "checkpoints")
    store.reserve(["held", "held-last"], run_id)
    assert ({p.kind for p in scan_store(store.directory).problems()} == {"reservation"}) == stale
    assert main(["-w", str(tmp_path), "checkpoints", "doctor", "--repair"]) == 0
    assert (store.free_name("held", ("", "-last")) == "held") == stale


def test_a_pair_from_two_writes_is_reported_as_mismatched(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    save(store, "a")
    save(store, "b")
    shutil.copyfile(store.directory / "a.safetensors", store.directory / "b.safetensors")
    report = scan_store(store.directory)
    assert report.complete == ["a"] and [(p.path.name, p.kind) for p in report.orphans] == [
        ("b.safetensors", "mismatched")]


def test_a_hostile_journal_cannot_reach_outside_the_store(tmp_path):
    store = CheckpointStore(tmp_path / "ws" / "checkpoints")
    save(store, "a")
    victim = tmp_path / "victim.txt"
    victim.write_text("user data")
    journal = store.directory / ".journal" / "evil.op"
    journal.write_text(json.dumps({"steps": [["replace", "a.safetensors", "../../victim.txt"],
                                             ["unlink", "/etc/hostname"]]}))
    save(store, "b")  # any writer replays journals first: this one is refused, not followed
    assert victim.read_text() == "user data" and store.exists("a")
    assert scan_store(store.directory).pending == [journal]
    assert main(["-w", str(tmp_path / "ws"), "checkpoints", "doctor", "--repair"]) == 0
    assert not journal.exists() and scan_store(store.directory).consistent
    assert victim.read_text() == "user data"


@pytest.mark.parametrize("value", ["../../other/runs/ID", "/abs/path", ".hidden", "..", " ", "a:b*?<>|", "a\nb",
                                   "", "x" * 161, "a/b", "a\\b"])
def test_ids_that_would_become_paths_are_refused_everywhere(tmp_path, value):
    with pytest.raises(KdcamError, match="invalid run id"):
        check_id("run id", value)
    with pytest.raises(KdcamError, match="invalid run id"):
        read_run(tmp_path, value)
    with pytest.raises(KdcamError, match="invalid analysis id"):
        analysis_dir(tmp_path, value)
    if value:  # an empty --resume means "no resume"
        with pytest.raises(KdcamError, match="invalid run id"):
            run_train_job(TrainSpec(workspace=str(tmp_path), resume=value), JobContext("t", print, threading.Event()))
    store = CheckpointStore(tmp_path / "checkpoints")
    save(store, "ok")
    with pytest.raises(KdcamError, match="invalid checkpoint name"):
        store.rename("ok", value)
    assert [m.name for m in store.list()] == ["ok"]


def test_ordinary_names_pass():
    for value in ("vgg8-kd-shapes-quick-s0", "20261130-120000-000-run", "a.b_c+d", "X" * 160):
        assert check_id("run id", value) == value
