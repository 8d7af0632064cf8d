"""Runs that stop badly still tell the truth (issue 10, items 9, 12, 14).

A run killed by SIGKILL reads as ``interrupted`` (with its resume command only when there is a
state to resume), a full disk ends as ``failed`` and one message, a closed stdout does not fail
the run, a workspace that cannot be written is one message, and weights get the same
permissions as the JSON beside them.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from engine.api import atomic
from engine.api.liveness import identity, process_alive, start_time
from engine.api.runs import list_runs, read_run
from engine.api.specs import TrainSpec
from engine.api.workspace import Workspace, read_json
from engine.cli.main import main
from engine.errors import JobCancelled
from engine.events import Progress
from engine.jobs import JobContext
from engine.train.rundir import RunDir
from engine.train.suite import run_train_job

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--dataset", "shapes?train=32&test=16&classes=4", "--teacher", "vgg8", "--student", "vgg8", "--methods", "si",
        "--epochs", "1", "--width", "0.06", "--batch-size", "16", "--recipe", "quick", "--device", "cpu"]



def train(workspace: Path, *extra: str) -> int:
    return main(["--workspace", str(workspace), "train", *TINY, *extra])


def one_error(capsys) -> str:
    """The single error line kdcam printed (Rich wraps it at the terminal width; unwrapped here)."""
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    return err.replace("\n", "")


def killed_writer(runs: Path) -> RunDir:
    """A forked process starts a run the way training does and is SIGKILLed while it runs."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            run = RunDir.create(runs, "vgg8-test", {"name": "vgg8-test", "role": "teacher", "spec": {}})
            os.write(ready_w, run.run_id.encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(ready_w)
    run_id = os.read(ready_r, 200).decode()
    os.close(ready_r)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return RunDir(runs / run_id)


def test_a_run_killed_by_sigkill_reads_interrupted_with_its_resume_command(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    run = killed_writer(ws.runs)
    assert read_json(run.path / "status.json")["state"] == "running"  # what the killed process last said
    info = read_run(ws, run.run_id)
    assert info.state == "interrupted"
    assert "nothing to resume" in info.message and "--resume" not in info.message
    run.state_path.write_bytes(b"resume state")  # an epoch had finished before the kill
    assert read_run(ws, run.run_id).message.endswith(f"resume with: kdcam train --resume {run.run_id}")
    assert [r.state for r in list_runs(ws)] == ["interrupted"]


def test_a_reused_pid_or_another_host_is_not_mistaken(tmp_path: Path) -> None:
    me = identity()
    assert process_alive(me["pid"], me["host"], me["start_time"])
    if me["start_time"] is not None:  # /proc: a live process with the recorded pid but another start time
        assert not process_alive(me["pid"], me["host"], me["start_time"] - 1)
    assert process_alive(me["pid"] + 4_000_000, "0123abcd", None), "another host's pid is not judged here"
    for junk in (None, "12", -1, True, 2**40, 1.5):
        assert process_alive(junk, me["host"], None), f"a status with pid {junk!r} is not called dead"
    ws = Workspace.open(tmp_path).ensure()
    run = RunDir.create(ws.runs, "live", {"name": "live", "role": "teacher", "spec": {}})
    assert read_run(ws, run.run_id).state == "running"


def test_killed_writes_leave_temporaries_that_the_next_open_removes(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path).ensure()
    run = killed_writer(ws.runs)
    pid = os.fork()
    if pid == 0:
        try:
            with atomic.atomic_open(run.path / "events.jsonl") as handle:
                handle.write(b"half a line")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    left = [p for p in run.path.iterdir() if atomic.TEMP_NAME.match(p.name)]
    assert len(left) == 1
    Workspace.open(tmp_path).ensure()
    assert left[0].exists(), "a temporary younger than a minute is kept (its writer may be in another namespace)"
    past = time.time() - 120
    os.utime(left[0], (past, past))
    Workspace.open(tmp_path).ensure()
    assert sorted(p.name for p in run.path.iterdir()) == ["config.json", "status.json"]


@contextmanager
def tiny_disk(directory: Path, size: str) -> Iterator[None]:
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny file system needs root (CI runs as root)")
def test_a_full_disk_fails_the_run_with_one_message(tmp_path: Path, capsys) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with tiny_disk(disk, "160k"):
        assert train(disk) == 1
        assert "no space left" in one_error(capsys)
        states = {run.run_id: (run.state, run.message) for run in list_runs(disk)}
        assert [state for state, _ in states.values()] == ["failed"], states
        assert "No space left" in next(iter(states.values()))[1]


def test_a_final_status_is_recorded_even_when_no_byte_is_free(tmp_path: Path, monkeypatch) -> None:
    """status.json can still say failed when an atomic replace cannot get a single block."""
    ws = Workspace.open(tmp_path).ensure()
    run = RunDir.create(ws.runs, "full", {"name": "full", "role": "teacher", "spec": {}})

    def full(path, obj) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "write_json", full)
    run.set_status("failed", "x" * 10_000)
    assert read_run(ws, run.run_id).state == "failed"
    with pytest.raises(OSError, match="No space"):
        run.set_status("running")  # "running" is never forced in: it would outlive the process
    monkeypatch.undo()
    assert sorted(p.name for p in run.path.iterdir()) == ["config.json", "status.json"]


def test_a_closed_stdout_does_not_fail_the_run(tmp_path: Path, monkeypatch) -> None:
    """``kdcam train --json … | head -1``: the reader goes away, the run finishes all the same."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert train(tmp_path, "--json") == 0
    finally:
        monkeypatch.undo()
        closed.close()
    assert [run.state for run in list_runs(tmp_path)] == ["finished", "finished"]


def test_a_cancelled_run_without_resume_state_does_not_offer_to_resume(tmp_path: Path) -> None:
    cancel = threading.Event()

    def on_event(event) -> None:
        if isinstance(event, Progress) and event.phase.startswith("vgg8"):
            cancel.set()  # during the first epoch: no state.pt yet

    spec = TrainSpec(workspace=str(tmp_path), dataset="shapes?train=32&test=16&classes=4", teacher="vgg8",
                     student="vgg8", methods=("si",), recipe="quick", epochs=1, batch_size=16, width=0.06,
                     device="cpu")
    with pytest.raises(JobCancelled):
        run_train_job(spec, JobContext("t", on_event, cancel))
    [run] = list_runs(tmp_path)
    assert run.state == "cancelled" and not run.resumable
    assert "resume with" not in run.message and "nothing to resume" in run.message


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(directory)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_unusable_workspaces_and_a_negative_seed_are_one_message(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a workspace\n")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    locked = tmp_path / "locked"
    locked.mkdir()
    cases = [(afile, (), "is not a directory"), (loop, (), "cannot resolve"), (tmp_path / "ws", ("--seed", "-5"), "seed")]
    for workspace, extra, message in cases:
        assert train(workspace, *extra) == 1, workspace
        assert message in one_error(capsys)
    with read_only(locked):
        assert train(locked) == 1
        assert str(locked) in one_error(capsys)
    assert afile.read_text() == "not a workspace\n"
    assert not (tmp_path / "ws" / "runs").exists() or not list((tmp_path / "ws" / "runs").iterdir())


def test_weights_get_the_same_permissions_as_their_json(tmp_path: Path) -> None:
    """safetensors deletes and recreates its file: without care the weights end up 0600."""
    from safetensors.torch import save_file

    atomic.write_with(tmp_path / "w.safetensors", lambda tmp: save_file({"a": torch.zeros(2)}, str(tmp)))
    atomic.write_json(tmp_path / "w.json", {"arch": "vgg8"})
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"w.safetensors": atomic.FILE_MODE, "w.json": atomic.FILE_MODE}
    assert atomic.FILE_MODE == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_start_time_comes_from_proc_where_there_is_one() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc here")
    assert start_time(os.getpid()) == identity()["start_time"] is not None
    assert start_time(2**31 - 1) is None
