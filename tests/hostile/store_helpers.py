"""Shared by the store's crash and concurrency tests: kdcam commands in forked processes that can be
SIGKILLed (torch is imported once, in the test process, so each child starts in milliseconds),
and the workspace invariants checked after every kill."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

from engine.api.integrity import (
    JOURNAL_DIR,
    read_journal,
    scan_store,
    weights_header,
)
from engine.checkpoints.store import CheckpointStore
from engine.cli.main import main

DATASET = "shapes?classes=4&train=48&test=16"
TRAIN = ["train", "--dataset", DATASET, "--teacher", "vgg8", "--student", "vgg8", "--methods", "si",
         "--recipe", "quick", "--epochs", "2", "--batch-size", "16", "--width", "0.06", "--device", "cpu", "--json"]


def kdcam(workspace: Path, *argv: str, crash_at: int | None = None, kill_after: float | None = None,
          out: Path | None = None, timeout: float = 60.0) -> int:
    """Run ``kdcam -w WORKSPACE ARGV`` in a forked child; its exit code, or -SIGNAL when it was killed."""
    pid = start(workspace, *argv, crash_at=crash_at, out=out)
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return wait(pid, timeout)


def start(workspace: Path, *argv: str, crash_at: int | None = None, out: Path | None = None) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            if crash_at is not None:
                os.environ["KDCAM_TEST_CRASH_AT"] = str(crash_at)
            torch.set_num_threads(1)
            sink = os.open(out or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(sink, 1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            with open(1, "w", closefd=False) as out_file, open(2, "w", closefd=False) as err_file:
                sys.stdout, sys.stderr = out_file, err_file  # the child's own fds, not pytest's capture
                code = main(["-w", str(workspace), *argv])
        finally:
            os._exit(code)
    return pid


def wait(pid: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"kdcam {pid} did not finish in {timeout} s")


def weight_digests(directory: Path, superseded: frozenset[str] = frozenset()) -> set[str]:
    """sha256 of every weights file under ``directory`` (orphans included), the journal's copies and the
    files a committed change is replacing (``superseded``) excluded."""
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.rglob("*.safetensors")
            if JOURNAL_DIR not in p.parts and p.name not in superseded}


def check_workspace(workspace: Path) -> None:
    """After any kill: every listed checkpoint loads and its two halves belong together; every other
    file is reported by scan_store; ``doctor --repair`` makes the store consistent and loses nothing."""
    directory = workspace / "checkpoints"
    store = CheckpointStore(directory)
    for meta in store.list():
        store.load(meta.name)
    report = scan_store(directory)
    steps = [step for journal in report.pending for step in read_journal(journal)]
    covered = {part for step in steps for part in step[1:]}
    reported = {p.path.name for p in report.problems()}
    complete = set(report.complete)
    for path in directory.iterdir():
        if path.name.startswith("."):
            continue
        stem = path.name.rsplit(".", 1)[0]
        assert stem in complete or path.name in reported or path.name in covered, f"{path} is hidden from the user"
    before = weight_digests(directory, frozenset(step[2] for step in steps if step[0] == "replace"))
    assert main(["-w", str(workspace), "checkpoints", "doctor", "--repair"]) == 0
    after = scan_store(directory)
    assert after.consistent, after.problems()
    assert before <= weight_digests(directory), "doctor --repair lost weights"
    for meta in store.list():
        store.load(meta.name)
        assert_halves_match(directory, meta.name)


def assert_halves_match(directory: Path, name: str) -> None:
    """The JSON and the weights of ``name`` come from one write (same weights_id, run id and epoch)."""
    record = json.loads((directory / f"{name}.json").read_text())
    header = weights_header(directory / f"{name}.safetensors")
    assert header["weights_id"] == record["weights_id"], name
    assert header["run_id"] == (record["run_id"] or ""), name
    assert header["epochs"] == str(record["epochs"] or ""), name
