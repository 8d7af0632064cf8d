"""What ``kdcam train`` says when a user stops it or asks a resumed run to change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

DATASET = "shapes?classes=4&train=64&test=32"


def test_ctrl_c_names_the_run_and_the_resume_command(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "engine.cli.main", "--workspace", str(tmp_path), "train", "--teacher", "vgg8",
               "--width", "0.125", "--methods", "kd", "--epochs", "30", "--dataset", DATASET, "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:  # stop once the first epoch is on disk
        if line.startswith("{\"event\": \"epoch\"") and json.loads(line)["event"] == "epoch":
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    run_id = next(p.name for p in (tmp_path / "runs").iterdir())
    assert f"cancelled run {run_id}" in err and "error" not in err
    assert f"kdcam --workspace {tmp_path} train --resume {run_id}" in err


def test_resume_refuses_options_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(tmp_path), "train", "--resume", "some-run", "--epochs", "40"]) == 1
    err = capsys.readouterr().err
    assert "--epochs cannot change it" in err and not (tmp_path / "runs").exists()


def test_demo_ends_with_a_tui_command_that_runs_from_this_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex
    import shutil

    from engine.cli.demo import tui_command

    monkeypatch.setenv("PATH", "/nonexistent")
    command = shlex.split(tui_command())
    assert shutil.which(command[0]) or Path(command[0]).exists()


def test_deleting_or_trusting_asks_at_a_terminal_and_refuses_without_one(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from engine.cli.output import confirmed
    from engine.errors import KdcamError

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert confirmed("delete x?", True, "refused", "kept")  # --yes: nothing asked
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(KdcamError, match="refused"):
        confirmed("delete x?", False, "refused", "kept")
    monkeypatch.setattr("sys.stdin", Terminal())
    for answer, expected in (("y", True), (" YES ", True), ("", False), ("n", False)):
        monkeypatch.setattr("builtins.input", lambda prompt, a=answer: a)
        assert confirmed("delete x?", False, "refused", "kept") is expected
    assert capsys.readouterr().out.count("kept") == 2
