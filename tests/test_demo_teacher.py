"""The teacher kdcam ships for the demo: it installs through the store and is what the demo
promises, a teacher far stronger than an 8-epoch student (checked on a slice of the test split,
so a change to the shapes generator that leaves it stale fails here, not in a user's demo)."""

from __future__ import annotations

import torch

from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split
from engine.data.loader import DeviceLoader
from engine.demo import TEACHER, install_teacher


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
