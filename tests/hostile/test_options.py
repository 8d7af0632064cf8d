"""Options accepted but wrong (issue class: crash / resource exhaustion): each is refused before any
work with one message naming the option, instead of a NaN at batch 1 or a multi-terabyte allocation."""

from __future__ import annotations

import pytest

from engine.distill.base import resolve_options
from engine.errors import KdcamError

KD = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0}
CRD = {"crd_weight": 0.8, "embed_dim": 128, "num_negatives": 16384, "temperature": 0.07, "momentum": 0.5}


@pytest.mark.parametrize(("defaults", "overrides", "message"), [
    (KD, {"temperature": 0}, "kd.temperature must be more than 0"),
    (KD, {"temperature": 1e9}, "kd.temperature must be more than 0 and at most 10000"),
    (KD, {"kd_weight": float("nan")}, "finite non-negative"),
    (KD, {"kd_weight": -1}, "finite non-negative"),
    (KD, {"kd_weight": "heavy"}, "must be a number"),
    (CRD, {"num_negatives": 2.5}, "crd.num_negatives must be a whole number"),
    (CRD, {"num_negatives": 1e12}, "at most 65536"),
    (CRD, {"num_negatives": 0}, "at least 1"),
    (CRD, {"embed_dim": 1e7}, "crd.embed_dim must be at least 1 and at most 4096"),
    (CRD, {"momentum": 1.5}, "crd.momentum must be at least 0 and at most 1"),
    (KD, {"temprature": 2}, "no option 'temprature'"),
])
def test_a_wrong_option_is_refused_naming_it(defaults: dict, overrides: dict, message: str) -> None:
    key = "crd" if "embed_dim" in defaults else "kd"
    with pytest.raises(KdcamError, match=message):
        resolve_options(key, defaults, overrides)


def test_sensible_options_pass_with_their_types() -> None:
    options = resolve_options("crd", CRD, {"num_negatives": 4096.0, "temperature": "0.1"})
    assert options["num_negatives"] == 4096 and isinstance(options["num_negatives"], int)
    assert options["temperature"] == pytest.approx(0.1)


@pytest.mark.parametrize(("edit", "message"), [
    ({"epochs": "many"}, r"config\.json: spec: field 'epochs': expected an integer"),
    ({"methods": [1]}, r"field 'methods\[0\]': expected a str"),
    ({"surprise": 1}, r"field 'surprise': expected one of the fields of TrainSpec"),
])
def test_a_hand_edited_resume_config_is_one_clear_message(tmp_path, edit: dict, message: str) -> None:
    import json
    import threading

    from engine.api.specs import TrainSpec
    from engine.jobs import JobContext
    from engine.train.suite import run_train_job

    run = tmp_path / "runs" / "20260101-000000-000-t"
    run.mkdir(parents=True)
    spec = {**TrainSpec(workspace=str(tmp_path)).to_dict(), **edit}
    (run / "config.json").write_text(json.dumps({"name": "t", "role": "teacher", "spec": spec}))
    (run / "status.json").write_text(json.dumps({"state": "cancelled"}))
    with pytest.raises(KdcamError, match=message):
        run_train_job(TrainSpec(workspace=str(tmp_path), resume=run.name),
                      JobContext("t", lambda event: None, threading.Event()))
