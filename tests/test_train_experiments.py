"""The experiments' pieces: colour jitter on normalised batches, and the teacher-capacity table."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from engine.jobs import JobContext
from engine.train.colour import ColourJitter, JitterRange, jitter
from engine.train.experiments import ExperimentSpec, run_experiment_job

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def normalised_batch(seed: int = 0) -> torch.Tensor:
    pixels = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_zero_jitter_is_the_identity_and_jittered_pixels_stay_valid():
    images = normalised_batch()
    identity = torch.tensor([[1.0, 1.0, 1.0, 0.0]]).expand(4, 4)
    assert torch.allclose(jitter(images, MEAN, STD, identity), images, atol=1e-5)
    params = JitterRange().draw(4, torch.Generator().manual_seed(3))
    jittered = jitter(images, MEAN, STD, params)
    assert not torch.allclose(jittered, images, atol=1e-2)
    pixels = jittered * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_each_image_jitter_depends_on_seed_epoch_and_index_only():
    images = normalised_batch()
    indices = torch.tensor([7, 2, 5, 0])
    augment = ColourJitter(10, MEAN, STD, seed=1)
    first = augment(images, indices, epoch=3)
    augment(images, indices, epoch=4)  # another epoch in between changes nothing for epoch 3
    fresh = ColourJitter(10, MEAN, STD, seed=1)
    assert torch.equal(fresh(images, indices, epoch=3), first)
    # batch order and size do not matter: image 5 alone gets the jitter it got in the batch
    assert torch.allclose(fresh(images[2:3], indices[2:3], epoch=3), first[2:3], atol=1e-6)
    assert not torch.allclose(fresh(images, indices, epoch=4), first, atol=1e-3)
    assert not torch.allclose(ColourJitter(10, MEAN, STD, seed=2)(images, indices, epoch=3), first, atol=1e-3)


def test_hue_turns_colour_but_keeps_grey_pixels_grey():
    grey_and_red = torch.tensor([[0.5, 0.5, 0.5], [0.9, 0.1, 0.1]]).view(1, 2, 1, 3).permute(0, 3, 1, 2)
    images = (grey_and_red - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    turned = jitter(images, MEAN, STD, torch.tensor([[1.0, 1.0, 1.0, 2.0]]))
    pixels = turned * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert torch.allclose(pixels[0, :, 0, 0], torch.full((3,), 0.5), atol=1e-4)
    assert pixels[0, 0, 1, 0] < 0.5  # red is red no more


def test_unknown_experiment_is_refused():
    from engine.errors import KdcamError

    with pytest.raises(KdcamError, match="unknown experiment"):
        run_experiment_job(ExperimentSpec(workspace=".", experiment="colour"), JobContext("t", print, threading.Event()))


TINY = "shapes?classes=4&train=64&test=32"


def run_tiny(tmp_path, **fields):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = ExperimentSpec(workspace=str(tmp_path), student="vgg8", dataset=TINY, recipe="quick", epochs=1,
                              width=0.06, device="cpu", **fields)
        return run_experiment_job(spec, JobContext("t", lambda e: None, threading.Event()))
    finally:
        torch.set_num_threads(previous)


@pytest.mark.slow
def test_teacher_capacity_distils_one_student_per_teacher_and_reuses_them(tmp_path):
    result = run_tiny(tmp_path, experiment="teacher-capacity", teachers=("vgg11", "vgg8"))
    assert result.method == "kd"
    teachers = [str(row["teacher"]) for row in result.rows]
    assert [t.split("-")[0] for t in teachers] == ["vgg11", "vgg8"]
    assert len({row["student"] for row in result.rows}) == 2
    for row in result.rows:
        assert 0 <= row["teacher_accuracy"] <= 1 and 0 <= row["student_accuracy"] <= 1
        assert (tmp_path / "checkpoints" / f"{row['student']}.json").exists()
    runs = sorted((tmp_path / "runs").iterdir())
    assert run_tiny(tmp_path, experiment="teacher-capacity", teachers=("vgg11", "vgg8")) == result
    assert sorted((tmp_path / "runs").iterdir()) == runs  # everything reused, nothing trained again


@pytest.mark.slow
def test_colour_invariance_scores_four_models_clean_and_jittered(tmp_path):
    result = run_tiny(tmp_path, experiment="color-invariance", teachers=("vgg8",))
    rows = {row["role"]: row for row in result.rows}
    assert list(rows) == ["teacher", "student", "teacher, colour-jitter fine-tuned",
                          "student of it, distilled on jittered images"]
    for row in rows.values():
        assert row["drop"] == pytest.approx(row["clean"] - row["jittered"])
    tuned = rows["teacher, colour-jitter fine-tuned"]["model"]
    assert tuned == rows["teacher"]["model"] + "-cj"
    assert json.loads((tmp_path / "checkpoints" / f"{rows['student of it, distilled on jittered images']['model']}.json").read_text())[
        "teacher"] == tuned
