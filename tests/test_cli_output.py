"""Piped job output (``make run | tee log``): whole lines, never wrapped at 80 columns or cut."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api.runs import EpochRecord
from engine.api.specs import DemoSpec
from engine.cli import output
from engine.events import Epoch, Log, Progress
from engine.jobs import JobContext

RUN = "resnet8x4-fitnet-shapes-demo-seed0-a-long-run-name"


def fake_job(spec: Any, ctx: JobContext) -> str:
    ctx.emit(Log("j", "training " + RUN))
    for done in range(0, 101):
        ctx.emit(Progress("j", "epoch 1/2 batches", done, 100, "loss 0.5123 acc 71.2%"))
    ctx.emit(Epoch("j", RUN, EpochRecord(epoch=1, epochs=2, losses={"ce": 0.51234, "kd": 1.2345, "hint": 16.789},
                                    train_acc=0.7, test_acc=0.729, lr=0.05, images_per_s=812.0, val_acc=0.715)))
    return "done"


def test_piped_progress_and_epochs_are_whole_lines(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(output, "run_inline", fake_job)
    assert output.run_job(DemoSpec(workspace="w")) == "done"
    err = capsys.readouterr().err.splitlines()
    epoch = [line for line in err if " epoch 1/2 " in line and line.startswith(RUN)]
    assert epoch and len(epoch[0]) > 80  # longer than the 80 columns Rich assumes without a terminal
    assert "hint=16.7890" in epoch[0] and epoch[0].endswith("812 img/s")
    assert "train 70.00% val 71.50% test 72.90%" in epoch[0]  # the split the best epoch is chosen on
    progress = [line for line in err if line.startswith("epoch 1/2 batches ")]
    # first, every tenth and the last: complete counts, a clock and the note, never an ellipsis
    assert [line.split()[3] for line in progress] == [f"{k}/100" for k in range(0, 101, 10)]
    assert all(line.endswith("loss 0.5123 acc 71.2%") and "…" not in line for line in progress)
