"""SIGKILL in the middle of an epoch, then ``kdcam train --resume``: the final weights are
bit-identical to those of a run that was never interrupted (same seed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch
from safetensors.torch import load_file

from engine.api.runs import list_runs
from engine.api.specs import TrainSpec
from engine.jobs import JobContext
from engine.train.suite import run_train_job

ARGS = ["--dataset", "shapes?classes=4&train=96&test=32", "--teacher", "vgg8", "--student", "vgg8",
        "--methods", "crd", "--recipe", "quick", "--epochs", "3", "--batch-size", "8", "--width", "0.06",
        "--seed", "5", "--device", "cpu", "--option", "crd.num_negatives=32"]


def kdcam(workspace, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the reference run below also uses one thread
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "-w", str(workspace), "train", *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


@pytest.mark.slow
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    process = kdcam(killed, *ARGS)
    for line in process.stdout:  # kill at the 4th batch of the student's second epoch
        event = json.loads(line)
        if event.get("event") == "progress" and "crd" in event["phase"] and event["message"] == "epoch 2/3" \
                and event["done"] == 4:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    (student_run,) = [r for r in list_runs(killed) if r.config.role == "student"]
    assert student_run.state == "interrupted" and student_run.last_epoch == 1 and student_run.resumable
    assert student_run.message.endswith(f"resume with: kdcam train --resume {student_run.run_id}")

    resumed = kdcam(killed, "--resume", student_run.run_id)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    summary = json.loads(out[out.rindex("\n{") + 1:] if "\n{" in out else out)
    assert summary["students"][0]["run_id"] == student_run.run_id

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = tmp_path / "reference"
        spec = TrainSpec(workspace=str(reference), dataset=ARGS[1], teacher="vgg8", student="vgg8", methods=("crd",),
                         recipe="quick", epochs=3, batch_size=8, width=0.06, seed=5, device="cpu",
                         method_options={"crd": {"num_negatives": 32}})
        run_train_job(spec, JobContext("ref", lambda e: None, threading.Event()))
    finally:
        torch.set_num_threads(previous)
    name = summary["students"][0]["name"] + "-last.safetensors"
    expected, got = load_file(str(reference / "checkpoints" / name)), load_file(str(killed / "checkpoints" / name))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
