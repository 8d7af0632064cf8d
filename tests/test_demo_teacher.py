"""The teacher kdcam ships for the demo: it installs through the store and is what the demo
promises, a teacher far stronger than an 8-epoch student (checked on a slice of the test split,
so a change to the shapes generator that leaves it stale fails here, not in a user's demo)."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.api.specs import EvalSpec
from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split, shapes
from engine.data.loader import DeviceLoader
from engine.data.registry import check_shapes_version
from engine.demo import TEACHER, install_teacher
from engine.errors import KdcamError
from engine.evaluation import run_eval_job
from engine.jobs import JobContext


def test_the_packaged_teacher_installs_and_classifies_the_default_shapes_test_split(tmp_path):
    ws = Workspace.open(tmp_path).ensure()
    assert install_teacher(ws) == TEACHER and install_teacher(ws) == TEACHER  # the second time: kept as is
    model, meta = CheckpointStore(ws.checkpoints).load(TEACHER)
    model.eval()
    assert meta.role == "teacher" and meta.recipe == "demo" and meta.dataset == "shapes"
    assert meta.validation is not None and meta.validation["selects_on"] == "validation"
    test = load_split("shapes", "test")
    assert meta.class_names == test.class_names and (meta.mean, meta.std) == (test.mean, test.std)
    part = test.subset(torch.arange(300).numpy())
    correct = 0
    with torch.inference_mode():
        for images, labels, _ in DeviceLoader(part, 100):
            correct += int((model(images).argmax(1) == labels).sum())
    assert correct / len(part) > 0.9


def test_a_checkpoint_trained_on_another_shapes_version_is_refused_with_the_spec_that_fits(tmp_path):
    # a workspace made before version 3 records dataset "shapes": analysing or evaluating it on
    # today's default would silently use other images; its normalisation says which version it saw
    ws = Workspace.open(tmp_path).ensure()
    install_teacher(ws)
    spec = EvalSpec(workspace=str(ws.root), checkpoints=(TEACHER,), dataset="shapes?v=2&test=50")
    with pytest.raises(KdcamError, match=r"trained on shapes version 3 .* 'shapes\?v=3'"):
        run_eval_job(spec, JobContext("test", lambda event: None, threading.Event()))
    v2_mean, v2_std = shapes.statistics(2)
    with pytest.raises(KdcamError, match=r"version 2 .*use the dataset 'shapes\?v=2'"):
        check_shapes_version("shapes?train=10", "old-student", v2_mean, v2_std)
    check_shapes_version("shapes?v=2", "old-student", v2_mean, v2_std)
    check_shapes_version("shapes", "imported", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))  # not a shapes statistic
    check_shapes_version("cifar10", "old-student", v2_mean, v2_std)  # not shapes at all
