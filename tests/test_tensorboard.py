"""Training writes TensorBoard event files that TensorBoard's own reader loads: every scalar of every epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (make run / make test install it)")


def test_event_files_hold_every_scalar_of_the_run(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["--workspace", str(tmp_path), "train", "--teacher", "vgg8", "--width", "0.125", "--methods", "kd",
                 "--epochs", "2", "--dataset", "shapes?classes=4&train=64&test=32", "--json"]) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2  # the teacher, then the kd student
    for run in runs:
        records = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()
        expected = {f"loss/{term}" for term in records[0]["losses"]} | \
            {"accuracy/train", "accuracy/test", "accuracy/validation", "lr", "images_per_s"}
        assert set(events.Tags()["scalars"]) == expected
        for tag in expected:
            scalars = events.Scalars(tag)
            assert [s.step for s in scalars] == [r["epoch"] for r in records]
            for scalar, record in zip(scalars, records, strict=True):
                value = {"accuracy/train": 100 * record["train_acc"], "accuracy/test": 100 * record["test_acc"],
                         "accuracy/validation": 100 * record["val_acc"],
                         "lr": record["lr"], "images_per_s": record["images_per_s"]}.get(tag) \
                    if not tag.startswith("loss/") else record["losses"][tag[5:]]
                assert scalar.value == pytest.approx(value, rel=1e-6)
        assert "config/text_summary" in events.Tags()["tensors"]
        text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert json.loads((run / "config.json").read_text())["name"] in text
