"""Distributed training and analysis on torchrun: 2 CPU processes, gloo, 127.0.0.1 only.

Every subprocess has a timeout; models are vgg8 at width 0.125 on a few hundred shapes images.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import launch
from engine.data import ImageSet
from engine.data.loader import DeviceLoader
from engine.errors import KdcamError

ROOT = Path(__file__).resolve().parent.parent
HARNESS_CASES = ("si", "kd", "dkd", "hints", "crd", "crd-infonce", "kd-std", "cat", "xa")
DATASET = "shapes?classes=4&train=192&test=48"
SMALL = ["--teacher", "vgg8", "--student", "vgg8", "--width", "0.125", "--teacher-width", "0.125", "--device", "cpu"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
            "GLOO_SOCKET_IFNAME": "lo", **extra}


def _kdcam(workspace: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "-w", str(workspace), *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _runs(workspace: Path) -> list[dict]:
    return [{"id": path.name, "config": json.loads((path / "config.json").read_text()),
             "status": json.loads((path / "status.json").read_text())}
            for path in sorted((workspace / "runs").iterdir())]


# ------------------------------------------------------------------ without processes


def _imageset(n: int) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet("t", "train", rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                    rng.integers(0, 3, n).astype(np.int64), ["a", "b", "c"])


def test_rank_shares_rebuild_the_one_process_batches():
    """Three ranks' shares of each global batch, side by side, are that batch (crops and flips included)."""
    data = _imageset(23)
    single = list(DeviceLoader(data, 8, train=True, seed=3))
    ranks = [DeviceLoader(data, 8, train=True, seed=3, rank=r, world_size=3) for r in range(3)]
    shards = [list(loader) for loader in ranks]
    assert [len(s) for s in shards] == [3, 3, 3] and len(single) == 3
    for b, (images, _, indices) in enumerate(single):
        assert torch.equal(torch.cat([s[b][0] for s in shards]), images)
        assert torch.equal(torch.cat([s[b][2] for s in shards]), indices)
        assert sum(loader.weight(b) for loader in ranks) == pytest.approx(3.0)


def test_last_batch_smaller_than_the_world_is_dropped_in_training_only():
    data = _imageset(17)  # 2 full batches of 8 and one image: a share of nothing for two of three ranks
    assert len(DeviceLoader(data, 8, train=True, rank=0, world_size=3)) == 2
    assert len(DeviceLoader(data, 8, train=True)) == 3
    counted = sum(len(labels) for r in range(3) for _, labels, _ in DeviceLoader(data, 8, rank=r, world_size=3))
    assert counted == 17  # evaluation still sees every image exactly once


FAILURE_REPORT = """engine.cli.main FAILED
-------------------------------------------------------
Failures:
[1]:
  time      : 2026-11-30_21:32:21
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 13616)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 13616
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-30_21:32:21
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 13617)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 13617
"""


def test_failure_report_names_the_rank_that_died_not_the_one_torchrun_stopped():
    assert launch.describe_failure(FAILURE_REPORT) == (1, "rank 1 (local rank 1) was killed by SIGKILL")
    assert launch.describe_failure("Traceback: nothing like torchrun's report") is None


def test_launch_flags_go_to_torchrun_not_to_the_workers():
    argv = ["-w", "ws", "train", "--nproc-per-node", "2", "--nnodes=2", "--node-rank", "1",
            "--rdzv-endpoint", "127.0.0.1:29500", "--epochs", "1"]
    command = launch.torchrun_command(argv, 2, 2, 1, "127.0.0.1:29500")
    workers = command[command.index("engine.cli.main") + 1:]
    assert workers == ["-w", "ws", "train", "--epochs", "1"]
    assert "--nnodes=2" in command and "--node-rank=1" in command and "--standalone" not in command
    assert "--standalone" in launch.torchrun_command(argv, 2)


def test_sync_bn_on_cpu_is_refused_naming_cuda():
    from engine.train.trainer import ddp_module

    with pytest.raises(KdcamError, match="--sync-bn needs CUDA"):
        ddp_module(torch.nn.BatchNorm2d(4), torch.device("cpu"), sync_bn=True)


# ------------------------------------------------------------------ 2 processes


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    """tests/dist_harness.py once in one process and once on two ranks (same seeds, same data)."""
    base = tmp_path_factory.mktemp("harness")
    script = str(ROOT / "tests" / "dist_harness.py")
    for world in (1, 2):
        out = base / f"world{world}"
        out.mkdir()
        launcher = [sys.executable] if world == 1 else \
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        done = subprocess.run([*launcher, script, str(base / f"ws{world}"), str(out)], cwd=ROOT, env=_env(),
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    return base


@pytest.mark.parametrize("case", HARNESS_CASES)
def test_first_step_on_two_ranks_equals_one_process(harness, case):
    """One optimiser step on a global batch of 63 split 32/31 over two ranks gives the weights one process
    gets from the same 63 images, on both ranks, within 1e-5.

    BN is held in eval mode (running statistics) in this comparison: in training mode each rank
    normalises with its own share's batch statistics, which by design differ from the global batch's
    (the usual DDP semantics), and PyTorch's SyncBatchNorm that would make them equal has no CPU kernel.
    Everything else is exercised: shares, loss weighting, gradient all-reduce, CRD's gathers.
    """
    one = torch.load(harness / "world1" / f"{case}-rank0.pt")
    for rank in (0, 1):
        two = torch.load(harness / "world2" / f"{case}-rank{rank}.pt")
        for part in ("student", "extras"):
            assert one[part].keys() == two[part].keys()
            for key, value in one[part].items():
                if key.startswith("memory.z_"):  # normalising constants (~100): a relative bound
                    torch.testing.assert_close(two[part][key], value, rtol=1e-6, atol=0)
                else:
                    torch.testing.assert_close(two[part][key], value, rtol=0, atol=1e-5, msg=f"{case} {key}")


def test_crd_bank_identical_on_both_ranks_after_four_steps(harness):
    banks = [torch.load(harness / "world2" / f"bank-rank{rank}.pt")["extras"] for rank in (0, 1)]
    for key in ("memory.memory_student", "memory.memory_teacher", "memory.z_student", "memory.z_teacher"):
        assert torch.equal(banks[0][key], banks[1][key]), key
    single = torch.load(harness / "world1" / "bank-rank0.pt")["extras"]
    torch.testing.assert_close(banks[0]["memory.memory_student"], single["memory.memory_student"], atol=1e-5, rtol=0)


def test_non_finite_loss_on_one_rank_stops_every_rank_at_that_batch(harness):
    """The last rank's second batch turns to NaN: both ranks stop there, before that step is applied."""
    for rank in (0, 1):
        message = (harness / "world2" / f"nan-rank{rank}.txt").read_text()
        assert "loss is not finite at epoch 1, batch 2" in message
    assert "batch 2" in (harness / "world1" / "nan-rank0.txt").read_text()


@pytest.fixture(scope="module")
def two_node_workspace(tmp_path_factory) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """A teacher and a kd student trained by two torchrun launchers ("nodes") meeting on 127.0.0.1."""
    workspace = tmp_path_factory.mktemp("two-node")
    endpoint = f"127.0.0.1:{_free_port()}"
    args = ["train", "--dataset", DATASET, *SMALL, "--methods", "kd", "--epochs", "1", "--nnodes", "2",
            "--nproc-per-node", "1", "--rdzv-endpoint", endpoint]
    command = [sys.executable, "-m", "engine.cli.main", "-w", str(workspace), *args]
    nodes = [subprocess.Popen([*command, "--node-rank", str(rank)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    results = []
    for node in nodes:
        try:
            out, err = node.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in nodes:
                other.kill()
            raise
        results.append(subprocess.CompletedProcess(node.args, node.returncode, out, err))
    return workspace, results


def test_two_node_loopback_run_trains_one_epoch(two_node_workspace):
    workspace, nodes = two_node_workspace
    assert [node.returncode for node in nodes] == [0, 0], nodes[0].stderr[-3000:] + nodes[1].stderr[-3000:]
    runs = _runs(workspace)
    assert [r["config"]["method"] for r in runs] == ["ce", "kd"]  # one run each, not one per rank
    for run in runs:
        assert run["status"]["state"] == "finished" and run["status"]["world_size"] == 2
        assert run["config"]["world_size"] == 2
    stored = sorted(p.stem for p in (workspace / "checkpoints").glob("*.safetensors"))
    assert len(stored) == 4 and sum("-kd-" in name for name in stored) == 2  # best and -last of each, once


def _same_numbers(one, two, path: str = "") -> None:
    if isinstance(one, dict):
        assert one.keys() == two.keys(), path
        for key in one:
            if key not in ("id", "created", "elapsed_s", "name"):
                _same_numbers(one[key], two[key], f"{path}/{key}")
    elif isinstance(one, list):
        assert len(one) == len(two), path
        for i, (a, b) in enumerate(zip(one, two, strict=True)):
            _same_numbers(a, b, f"{path}[{i}]")
    elif isinstance(one, float) and isinstance(two, float):
        assert abs(one - two) <= 1e-6, path
    else:
        assert one == two, path


def test_two_rank_analysis_equals_one_process(two_node_workspace):
    """Sharded CAMs gathered to rank 0: results.json equal within 1e-6 and every map byte for byte."""
    workspace, _ = two_node_workspace
    checkpoints = sorted(p.stem for p in (workspace / "checkpoints").glob("*.safetensors"))
    teacher = next(name for name in checkpoints if "-kd-" not in name and not name.endswith("-last"))
    student = next(name for name in checkpoints if "-kd-" in name and not name.endswith("-last"))
    common = ["analyze", "--teacher", teacher, "--students", student, "--dataset", DATASET, "--batch", "16",
              "--device", "cpu", "--check-images", "8", "--json"]  # 48 images: 3 batches, split 2 + 1
    for name, extra in (("one", []), ("two", ["--nproc-per-node", "2"])):
        done = _kdcam(workspace, *common, "--name", name, *extra)
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = workspace / "analyses" / "one", workspace / "analyses" / "two"
    _same_numbers(json.loads((one / "results.json").read_text()), json.loads((two / "results.json").read_text()))
    arrays = sorted(p.relative_to(one) for p in one.rglob("*.npy"))
    assert arrays == sorted(p.relative_to(two) for p in two.rglob("*.npy")) and len(arrays) >= 4
    for relative in arrays:
        assert (one / relative).read_bytes() == (two / relative).read_bytes(), relative


def _rank_pid(tag: str, rank: int) -> int | None:
    """The worker of this test's run with RANK=rank (found by a tag in its environment)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"KDCAM_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
def test_killed_rank_fails_the_run_naming_it_and_resume_completes(tmp_path):
    """SIGKILL one rank after the first epoch: the run fails naming rank 1; resuming on one process finishes."""
    tag = uuid.uuid4().hex
    args = ["train", "--dataset", "shapes?classes=4&train=256&test=32", *SMALL, "--methods", "si", "--epochs", "2",
            "--batch-size", "32", "--nproc-per-node", "2"]
    launcher = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "-w", str(tmp_path), *args], cwd=ROOT,
                                env=_env(KDCAM_TEST_TAG=tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("runs/*/state.pt")):  # the first epoch is saved: a resumable run
            assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
        pid = _rank_pid(tag, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1
    assert "rank 1 (local rank 1) was killed by SIGKILL" in " ".join(err.split())
    (run,) = _runs(tmp_path)
    assert run["status"]["state"] == "failed" and "rank 1" in run["status"]["message"]
    assert f"--resume {run['id']}" in run["status"]["message"]

    done = _kdcam(tmp_path, "train", "--resume", run["id"], "--json")  # 2 ranks -> 1 process
    assert done.returncode == 0, done.stderr[-3000:]
    runs = _runs(tmp_path)
    assert runs[0]["status"]["state"] == "finished" and runs[0]["status"]["world_size"] == 1
    events = [json.loads(line) for line in (tmp_path / "runs" / run["id"] / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events] == [1, 2]
    assert [r["config"]["method"] for r in runs] == ["ce", "si"]  # the suite went on after the teacher
