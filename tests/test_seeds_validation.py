"""Model selection on a validation split, training over several seeds, and the study over seeds.

DESIGN §6: the best epoch is chosen on images held out of training (never the test set), and a
claim about a method rests on several seeds: mean and 95% interval over seeds, paired
differences from ``si``, and "better in k of n seeds".
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.analysis.job import run_analysis_job
from engine.analysis.seeds import aggregate, seed_stat, t_quantile
from engine.api.analyses import load_results
from engine.api.checkpoints import CheckpointMeta, read_meta
from engine.api.results import SeedGroupResult, Stat
from engine.api.runs import list_runs
from engine.api.specs import AggregateSpec, AnalyzeSpec, TrainSpec
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import build_model
from engine.runners import run_spec
from engine.train.trainer import _chosen
from engine.train.validation import carve_validation

pytestmark = pytest.mark.usefixtures("one_thread")


def _context() -> JobContext:
    return JobContext("test", lambda e: None, threading.Event())



# -- validation split ----------------------------------------------------------------------------
def test_the_validation_split_is_stratified_disjoint_and_a_function_of_the_seed():
    data = load_split("shapes?classes=5&train=200", "train")
    train, val, record = carve_validation(data, 0.1, seed=4)
    assert val is not None and len(val) == 20 and len(train) == 180
    assert np.bincount(val.labels, minlength=5).tolist() == [4] * 5  # every class equally
    rows = {image.tobytes() for image in data.images}
    assert len(rows) == len(data)  # (images are distinct, so membership by content is exact)
    assert not {image.tobytes() for image in train.images} & {image.tobytes() for image in val.images}
    assert record == {"fraction": 0.1, "seed": 4, "size": 20, "of": 200, "selects_on": "validation"}
    again = carve_validation(data, 0.1, seed=4)[1]
    other = carve_validation(data, 0.1, seed=5)[1]
    assert again is not None and other is not None
    np.testing.assert_array_equal(again.images, val.images)
    assert not np.array_equal(other.images, val.images)
    whole, none, record = carve_validation(data, 0.0, seed=4)
    assert none is None and len(whole) == 200 and record["selects_on"] == "test"
    for bad in (0.6, -0.1, float("nan"), True):
        with pytest.raises(KdcamError, match="validation fraction"):
            carve_validation(data, bad, seed=0)


def test_the_best_epoch_is_the_best_on_validation_not_on_test():
    records = [{"epoch": 1, "val_acc": 0.50, "test_acc": 0.70},
               {"epoch": 2, "val_acc": 0.60, "test_acc": 0.55},
               {"epoch": 3, "val_acc": 0.60, "test_acc": 0.65}]
    assert _chosen(records)["epoch"] == 2  # the first of the tied best on validation; test never chooses
    assert _chosen([{k: v for k, v in r.items() if k != "val_acc"} for r in records])["epoch"] == 1


def test_seed_group_training_trains_each_seed_with_its_own_validation_split(tmp_path):
    spec = TrainSpec(workspace=str(tmp_path), dataset="shapes?classes=4&train=120&test=40", teacher="vgg8",
                     student="vgg8", methods=("si",), recipe="quick", epochs=2, batch_size=32, width=0.06,
                     device="cpu", seeds=(0, 1))
    result = run_spec(spec, _context())
    assert isinstance(result, SeedGroupResult) and result.seeds == (0, 1)
    teachers = [run.teacher.name for run in result.runs]
    assert teachers[0].endswith("-s0") and teachers[1].endswith("-s1")
    for run in result.runs:
        student = run.students[0]
        assert student.val_accuracy is not None and student.best_epoch in (1, 2)
        assert student.last_accuracy is not None and run.teacher.last_accuracy is not None
        meta = read_meta(tmp_path / "checkpoints", student.name)
        assert meta.validation == {"fraction": 0.1, "seed": run.seed, "size": 12, "of": 120,
                                   "selects_on": "validation"}
        assert meta.val_accuracy == student.val_accuracy and meta.epochs == student.best_epoch
    for info in list_runs(tmp_path):
        events = [json.loads(line) for line in (info.path / "events.jsonl").read_text().splitlines()]
        best = max(events, key=lambda e: (e["val_acc"], -e["epoch"]))
        assert json.loads((info.path / "config.json").read_text())["validation"]["size"] == 12
        meta = read_meta(tmp_path / "checkpoints", info.config.name)
        assert meta.epochs == best["epoch"] and meta.accuracy == best["test_acc"]
    with pytest.raises(KdcamError, match="twice"):
        run_spec(TrainSpec(workspace=str(tmp_path), seeds=(1, 1)), _context())


# -- over seeds ---------------------------------------------------------------------------------
def test_seed_statistics_use_the_student_t_interval():
    stat = seed_stat([1.0, 2.0, 3.0])
    half = 4.303 * 1.0 / math.sqrt(3)
    assert stat.mean == 2.0 and stat.ci_low == pytest.approx(2 - half) and stat.ci_high == pytest.approx(2 + half)
    assert seed_stat([0.5, None]).n == 1 and seed_stat([0.5, None]).ci_low is None
    assert t_quantile(1) == 12.706 and 1.96 < t_quantile(200) < 1.98


DATASET = "shapes?classes=4&train=40&test=40"


def write_study(root: Path) -> list[str]:
    """Three 'seeds' of a study in workspace ``root``: untrained teacher, si and kd per seed (their
    numbers differ by seed, enough for bookkeeping), analysed as study-s0..2; returns the ids."""
    store = CheckpointStore(root / "checkpoints")
    data = load_split(DATASET, "test")
    ids = []
    for seed in range(3):
        for offset, (name, role, method) in enumerate((("t", "teacher", "ce"), ("si", "student", "si"),
                                                       ("kd", "student", "kd"))):
            torch.manual_seed(10 * seed + offset)
            store.save(f"{name}-s{seed}", build_model("vgg8", 4, width=0.0625), CheckpointMeta(
                name=f"{name}-s{seed}", arch="vgg8", num_classes=4, width=0.0625, role=role, method=method,
                mean=data.mean, std=data.std, dataset=DATASET))
        spec = AnalyzeSpec(workspace=str(root), teacher=f"t-s{seed}", students=(f"kd-s{seed}", f"si-s{seed}"),
                           dataset=DATASET, batch_size=40, check_images=0, resamples=200, device="cpu",
                           name=f"study-s{seed}")
        ids.append(run_analysis_job(spec, _context()).id)
    return ids


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("study")
    return root, write_study(root)


def test_aggregate_summarises_each_method_over_seeds_with_paired_differences_and_k_of_n(study):
    root, ids = study
    aggregated = run_spec(AggregateSpec(str(root), tuple(ids)), _context())
    assert aggregated.baseline == "si" and [r.method for r in aggregated.rows] == ["teacher", "si", "kd"]
    assert [r.role for r in aggregated.rows] == ["teacher", "baseline", "student"]
    analyses = [load_results(root, i) for i in ids]
    kd = aggregated.row("kd")
    assert kd.models == ("kd-s0", "kd-s1", "kd-s2")
    per_seed = [a.pair(f"kd-s{s}").metrics["pearson"].mean for s, a in enumerate(analyses)]
    assert kd.metrics["pearson"].values == tuple(per_seed)
    assert kd.metrics["pearson"].mean == pytest.approx(float(np.mean(per_seed)))
    differences = [a.pair(f"kd-s{s}").vs_baseline["pearson"] for s, a in enumerate(analyses)]
    assert kd.vs_baseline["pearson"].stat.mean == pytest.approx(float(np.mean([d.mean for d in differences])))
    assert kd.vs_baseline["pearson"].better == sum(d.mean > 0 for d in differences)
    assert kd.vs_baseline["kl"].better == sum(a.pair(f"kd-s{s}").vs_baseline["kl"].mean < 0
                                              for s, a in enumerate(analyses))  # lower KL is better
    teacher = aggregated.row("teacher")
    assert teacher.vs_baseline["accuracy"].stat.n == 3 and "pearson" not in teacher.metrics
    assert aggregated.row("si").vs_baseline == {}


def test_aggregate_refuses_analyses_that_measured_different_things(study, tmp_path):
    root, ids = study
    other = AnalyzeSpec(workspace=str(root), teacher="t-s0", students=("kd-s0", "si-s0"), dataset=DATASET,
                        method="gradcam++", batch_size=40, check_images=0, resamples=100, device="cpu",
                        name="other-method")
    run_analysis_job(other, _context())
    with pytest.raises(KdcamError, match="CAM method"):
        run_spec(AggregateSpec(str(root), (ids[0], "other-method")), _context())
    with pytest.raises(KdcamError, match="at least two"):
        aggregate([(ids[0], load_results(root, ids[0]))])


def test_a_seed_difference_counts_significant_seeds_on_the_better_side():
    from engine.analysis.seeds import seed_difference

    per_seed = [Stat(0.05, 0.01, 0.09, 100), Stat(0.02, -0.01, 0.05, 100), Stat(-0.03, -0.06, -0.01, 100)]
    up = seed_difference("pearson", per_seed)
    assert (up.better, up.significant) == (2, 1)
    down = seed_difference("kl", per_seed)  # for KL the negative difference is the better one
    assert (down.better, down.significant) == (1, 1)


def test_the_cli_prints_the_study_and_refuses_a_seed_group_without_seed_names(study, capsys):
    import argparse

    from engine.cli import analyze

    root, ids = study
    parser = argparse.ArgumentParser(prog="kdcam")
    parser.add_argument("--workspace", "-w", default=".")
    analyze.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["-w", str(root), "aggregate", *ids])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "over 3 seeds" in out and "si·base" in out and "minus si, over seeds" in out
    args = parser.parse_args(["-w", str(root), "aggregate", *ids, "--json"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()  # progress events, then the aggregate
    data = json.loads("\n".join(lines[lines.index("{"):]))
    assert [row["method"] for row in data["rows"]] == ["teacher", "si", "kd"]
    assert data["rows"][2]["vs_baseline"]["accuracy"]["n"] == 3
    args = parser.parse_args(["-w", str(root), "analyze", "--teacher", "t-s0", "--students", "kd-s0",
                              "--seeds", "0,1"])
    with pytest.raises(KdcamError, match=r"\{seed\} in --students"):
        args.handler(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["-w", str(root), "analyze", "--teacher", "t", "--seeds", "1,1"])


def test_results_tables_writes_the_seed_tables_from_what_aggregate_json_printed(study, capsys, tmp_path):
    # RESULTS.md's tables come from docs/results_tables.py; it must read the CLI's real output
    # (progress lines first) and print the numbers the aggregate holds, in percent where it says so
    import argparse
    import importlib.util

    from engine.cli import analyze

    spec = importlib.util.spec_from_file_location("results_tables", Path(__file__).parents[1] / "docs" /
                                                  "results_tables.py")
    assert spec is not None and spec.loader is not None
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    root, ids = study
    parser = argparse.ArgumentParser(prog="kdcam")
    parser.add_argument("--workspace", "-w", default=".")
    analyze.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["-w", str(root), "aggregate", *ids, "--json"])
    assert args.handler(args) == 0
    printed = tmp_path / "study.json"
    printed.write_text(capsys.readouterr().out)
    tables.main([str(printed)])
    lines = capsys.readouterr().out.splitlines()
    study_rows = tables.last_document(printed.read_text())["rows"]
    kd = next(r for r in study_rows if r["method"] == "kd")
    pearson = kd["metrics"]["pearson"]
    assert pearson["ci_low"] < pearson["ci_high"]  # the seeds differ, so the interval is printed
    assert next(line for line in lines if line.startswith("| si (baseline) |"))
    kd_value = next(line for line in lines if line.startswith("| kd | ") and "·" not in line)
    assert kd_value.split(" | ")[2] == (f"{pearson['mean']:.3f} [{pearson['ci_low']:.3f}, "
                                        f"{pearson['ci_high']:.3f}]").replace("-", "−")
    assert kd_value.split(" | ")[1] == f"{kd['metrics']['accuracy']['mean'] * 100:.1f}"  # the same in every seed
    difference = kd["vs_baseline"]["accuracy"]
    kd_difference = next(line for line in lines if line.startswith("| kd | ") and "·" in line)
    assert kd_difference.split(" | ")[1].endswith(f"· {difference['better']}/3 ({difference['significant']})")
    tables.main(["--analysis", str(root / "analyses" / ids[0] / "results.json")])
    per_model = capsys.readouterr().out.splitlines()
    assert per_model[0].startswith("| model | accuracy (%) | Δ (pts) | pointing game |")
    assert [line.split(" | ")[0] for line in per_model[2:]] == ["| teacher", "| kd", "| si (baseline)"]
