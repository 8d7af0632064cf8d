"""Two writers on one workspace at once: no checkpoint is lost, none is replaced by the other writer,
and each checkpoint's metadata describes the weights beside it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest
import torch

from engine.api.checkpoints import CheckpointMeta
from engine.checkpoints.store import CheckpointStore
from engine.errors import KdcamError
from engine.models import build_model
from tests.hostile.store_helpers import (
    TRAIN,
    assert_halves_match,
    check_workspace,
    start,
    wait,
)

pytestmark = [pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork"),
              pytest.mark.usefixtures("one_thread")]



def summary(path: Path) -> dict:
    out = path.read_text()
    return json.loads(out[out.rindex("\n{") + 1:])


def test_two_trains_in_one_workspace_keep_both_teachers_and_students(tmp_path):
    workspace = tmp_path / "ws"
    first = start(workspace, *TRAIN, out=tmp_path / "a.out")
    second = start(workspace, *TRAIN, out=tmp_path / "b.out")
    assert (wait(first), wait(second)) == (0, 0)
    runs = [summary(tmp_path / "a.out"), summary(tmp_path / "b.out")]
    store = CheckpointStore(workspace / "checkpoints")
    trained = [run["teacher"] for run in runs if not run["teacher"]["reused"]]  # both, unless one finished first
    assert len({t["name"] for t in trained}) == len(trained) >= 1  # one run took the plain name, the other -2
    assert len({run["students"][0]["name"] for run in runs}) == 2
    listed = {m.name for m in store.list()}
    for run in runs:
        teacher, (student,) = run["teacher"], run["students"]
        for name, run_id in ((teacher["name"], teacher["run_id"]), (student["name"], student["run_id"])):
            for checkpoint in (name, f"{name}-last"):
                assert checkpoint in listed
                assert store.meta(checkpoint).run_id == run_id  # written by this run, not replaced by the other
                assert_halves_match(store.directory, checkpoint)
        assert store.meta(student["name"]).teacher == teacher["name"]
    assert len(listed) == 2 * (2 + len(trained))
    check_workspace(workspace)


def test_import_while_training_loses_nothing(tmp_path):
    workspace = tmp_path / "ws"
    source = tmp_path / "net.pth"
    torch.save(build_model("vgg8", 4, 0.25).state_dict(), source)
    training = start(workspace, *TRAIN, out=tmp_path / "train.out")
    importing = start(workspace, "checkpoints", "import", str(source), "--name", "imp")
    assert (wait(training), wait(importing)) == (0, 0)
    store = CheckpointStore(workspace / "checkpoints")
    run = summary(tmp_path / "train.out")
    expected = {"imp", run["teacher"]["name"], run["students"][0]["name"]}
    assert expected | {f"{n}-last" for n in expected - {'imp'}} == {m.name for m in store.list()}
    for meta in store.list():
        assert_halves_match(store.directory, meta.name)
    check_workspace(workspace)


def hold_lock(directory: Path, seconds: float) -> int:
    """A child process that holds the store's writer lock for ``seconds``."""
    directory.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:
        handle = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.pwrite(handle, b"pid 4242 (test)\n", 0)
        time.sleep(seconds)
        os._exit(0)
    time.sleep(0.3)
    return pid


def tiny_meta(name: str) -> CheckpointMeta:
    return CheckpointMeta(name=name, arch="vgg8", num_classes=4, width=0.06)


def test_second_writer_waits_for_the_first_then_writes(tmp_path):
    messages: list[str] = []
    store = CheckpointStore(tmp_path / "checkpoints", on_wait=messages.append)
    holder = hold_lock(store.directory, 1.0)
    began = time.monotonic()
    store.save("late", build_model("vgg8", 4, 0.06), tiny_meta("late"))
    assert time.monotonic() - began > 0.4 and wait(holder) == 0
    assert messages and "pid 4242" in messages[0]
    assert [m.name for m in store.list()] == ["late"]


def test_a_writer_that_cannot_get_the_lock_stops_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KDCAM_LOCK_TIMEOUT", "0.2")
    store = CheckpointStore(tmp_path / "checkpoints")
    holder = hold_lock(store.directory, 1.5)
    with pytest.raises(KdcamError, match=r"being written by pid 4242.*KDCAM_LOCK_TIMEOUT"):
        store.save("blocked", build_model("vgg8", 4, 0.06), tiny_meta("blocked"))
    assert wait(holder) == 0
    assert store.list() == []


def test_a_store_that_cannot_be_written_gives_one_clear_message(tmp_path):
    blocker = tmp_path / "checkpoints"
    blocker.write_text("a file where the store should be")
    with pytest.raises(KdcamError, match=r"cannot write to .*checkpoints"):
        CheckpointStore(blocker).save("x", build_model("vgg8", 4, 0.06), tiny_meta("x"))
    assert blocker.read_text() == "a file where the store should be"
