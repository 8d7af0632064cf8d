"""The experiments' pieces: colour jitter on normalised batches, and the teacher-capacity table."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.jobs import JobContext
from engine.train.colour import colour_jitter
from engine.train.experiments import ExperimentSpec, run_experiment_job

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def normalised_batch(seed: int = 0) -> torch.Tensor:
    pixels = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_zero_jitter_is_the_identity_and_a_seeded_jitter_is_repeatable():
    images = normalised_batch()
    assert torch.allclose(colour_jitter(images, MEAN, STD, strength=0.0, hue=0.0), images, atol=1e-5)
    first = colour_jitter(images, MEAN, STD, generator=torch.Generator().manual_seed(3))
    again = colour_jitter(images, MEAN, STD, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and not torch.allclose(first, images, atol=1e-2)
    pixels = first * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5  # still valid images


def test_unknown_experiment_is_refused():
    from engine.errors import KdcamError

    with pytest.raises(KdcamError, match="unknown experiment"):
        run_experiment_job(ExperimentSpec(workspace=".", experiment="colour"), JobContext("t", print, threading.Event()))


@pytest.mark.slow
def test_teacher_capacity_distils_one_student_per_teacher(tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = ExperimentSpec(workspace=str(tmp_path), experiment="teacher-capacity", teachers=("vgg11", "vgg8"),
                              student="vgg8", dataset="shapes?classes=4&train=64&test=32", recipe="quick",
                              epochs=1, width=0.06, device="cpu")
        result = run_experiment_job(spec, JobContext("t", lambda e: None, threading.Event()))
    finally:
        torch.set_num_threads(previous)
    assert result["method"] == "kd"
    teachers = [row["teacher"] for row in result["rows"]]
    assert [t.split("-")[0] for t in teachers] == ["vgg11", "vgg8"]
    assert len({row["student"] for row in result["rows"]}) == 2
    for row in result["rows"]:
        assert 0 <= row["teacher_accuracy"] <= 1 and 0 <= row["student_accuracy"] <= 1
        assert (tmp_path / "checkpoints" / f"{row['student']}.json").exists()
