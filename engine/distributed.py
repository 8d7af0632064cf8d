"""Running kdcam on PyTorch's distributed engine: torchrun workers, collectives, the launcher.

A process is a *worker* when torchrun started it (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in
its environment); ``kdcam train|analyze --nproc-per-node N`` starts torchrun itself
(``launch``). Workers join one process group (gloo on CPU, NCCL on CUDA) before the job
runs; every helper here is the identity in a single process, so the engine calls them
unconditionally and one code path serves 1 and N processes.

Only rank 0 writes files. A rank that dies makes torchrun stop the others; the launcher
reads torchrun's failure report, names the rank, marks the run failed and says how to resume.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import warnings
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from engine.errors import KdcamError

#: launcher flags that torchrun consumes; they are not passed on to the workers
LAUNCH_FLAGS = ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint")
#: a file (set by the launcher) where rank 0 notes each run directory it opens
RUN_NOTE_ENV = "KDCAM_RUN_NOTE"
TIMEOUT = timedelta(minutes=10)  # a collective that waits longer than this is a hung peer


@dataclass(frozen=True)
class Rank:
    """Where this process stands: its rank, the world size and its rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def worker_env() -> Rank | None:
    """This process's place in a torchrun job, or None when it was not started by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank = Rank(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise KdcamError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (set by torchrun)") from None
    if rank.world_size < 1 or not 0 <= rank.rank < rank.world_size or rank.local_rank < 0:
        raise KdcamError(f"inconsistent torchrun environment: RANK={rank.rank} WORLD_SIZE={rank.world_size}")
    return rank


def current() -> Rank:
    """The rank of this process in the initialised process group (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Rank()


def join(device: str) -> Rank:
    """Join the process group torchrun set up; gloo on CPU, NCCL on CUDA (one GPU per local rank)."""
    rank = worker_env()
    if rank is None or not rank.distributed or dist.is_initialized():
        return current()
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available() or rank.local_rank >= torch.cuda.device_count():
            raise KdcamError(f"local rank {rank.local_rank} has no CUDA device (this node has "
                             f"{torch.cuda.device_count()}); start at most one process per GPU")
        torch.cuda.set_device(rank.local_rank)  # "cuda" then means this rank's GPU
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    # torchrun stops workers with SIGTERM: treat it as Ctrl-C (whatever handler the job installs)
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))
    return current()


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if current().distributed:
        dist.barrier()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``tensor`` reduced over ranks in place (sum, min or max); unchanged in one process."""
    if current().distributed:
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
    return tensor


def gather_rows(tensor: torch.Tensor, with_grad: bool = False) -> tuple[torch.Tensor, int]:
    """Every rank's rows concatenated in rank order, and where this rank's rows start.

    Ranks may hold different numbers of rows (the last batch splits unevenly): rows are
    padded to the largest count for the collective and the padding cut off again. With
    ``with_grad`` the gather is differentiable (gradients flow back to each rank's rows).
    """
    here = current()
    if not here.distributed:
        return tensor, 0
    counts = torch.zeros(here.world_size, dtype=torch.long, device=tensor.device)
    counts[here.rank] = tensor.shape[0]
    dist.all_reduce(counts)
    largest = int(counts.max())
    padded = torch.cat([tensor, tensor.new_zeros((largest - tensor.shape[0], *tensor.shape[1:]))])
    if with_grad:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # deprecated for a private successor; the public one still works
            warnings.simplefilter("ignore", FutureWarning)
            parts = list(all_gather(padded))
    else:
        parts = [torch.empty_like(padded) for _ in range(here.world_size)]
        dist.all_gather(parts, padded)
    rows = torch.cat([part[: int(count)] for part, count in zip(parts, counts)])
    return rows, int(counts[: here.rank].sum())


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled by torch between our own processes, never from a file)."""
    if not current().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank 0 (None elsewhere)."""
    here = current()
    if not here.distributed:
        return [obj]
    out: list[Any] | None = [None] * here.world_size if here.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def note_run(run_id: str) -> None:
    """Rank 0 tells the launcher which run it is writing, so a dead rank's run is marked failed."""
    path = os.environ.get(RUN_NOTE_ENV)
    if path and current().main:
        with open(path, "a", encoding="utf-8") as note:
            note.write(run_id + "\n")


# ---------------------------------------------------------------- launcher


def strip_launch_flags(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's own flags (``--flag V`` and ``--flag=V`` forms)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_FLAGS:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in LAUNCH_FLAGS)):
            out.append(arg)
    return out


def torchrun_command(argv: list[str], nproc: int, nnodes: int = 1, node_rank: int = 0,
                     rdzv_endpoint: str | None = None) -> list[str]:
    """The torchrun command line running ``kdcam ARGV`` on ``nproc`` processes per node."""
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise KdcamError(f"--nproc-per-node and --nnodes must be ≥ 1 and 0 ≤ --node-rank < --nnodes "
                         f"(got {nproc}, {nnodes}, {node_rank})")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        command.append("--standalone")
    else:
        if not rdzv_endpoint or ":" not in rdzv_endpoint:
            raise KdcamError("a multi-node run needs --rdzv-endpoint HOST:PORT (rank 0's node and a free port)")
        command += [f"--nnodes={nnodes}", f"--node-rank={node_rank}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={rdzv_endpoint}", "--rdzv-id=kdcam"]
        host = rdzv_endpoint.rpartition(":")[0]
        if host in ("127.0.0.1", "localhost"):  # every "node" on this machine: keep all traffic on loopback
            command.append("--local-addr=127.0.0.1")
    return [*command, "-m", "engine.cli.main", *strip_launch_flags(argv)]


def launch(argv: list[str], nproc: int, nnodes: int = 1, node_rank: int = 0, rdzv_endpoint: str | None = None,
           workspace: str = ".", timeout: float | None = None) -> int:
    """Run ``kdcam ARGV`` under torchrun; a failed worker becomes a ``KdcamError`` naming its rank.

    Worker output passes through (stderr is also kept, to read torchrun's failure report).
    Ctrl-C reaches the workers directly (same process group); they cancel together.
    """
    import tempfile

    command = torchrun_command(argv, nproc, nnodes, node_rank, rdzv_endpoint)
    with tempfile.TemporaryDirectory(prefix="kdcam-launch-") as tmp:
        note = Path(tmp) / "runs"
        env = {**os.environ, RUN_NOTE_ENV: str(note), "PYTHONUNBUFFERED": "1"}
        tail: deque[str] = deque(maxlen=400)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers handle Ctrl-C themselves
        try:
            process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
            reader = threading.Thread(target=_relay, args=(process.stderr, tail), daemon=True)
            reader.start()
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(timeout=60)
                raise KdcamError(f"the distributed run took longer than {timeout:g} s and was stopped") from None
            reader.join(timeout=10)
        finally:
            signal.signal(signal.SIGINT, previous)
        if code == 0:
            return 0
        runs = note.read_text(encoding="utf-8").split() if note.exists() else []
    failure = describe_failure("".join(tail))
    if failure is None:
        raise KdcamError(f"torchrun exited with code {code}; see the output above")
    message = f"distributed run failed: {failure}"
    if runs:
        message += _mark_failed(workspace, runs[-1], message, nproc * nnodes)
    raise KdcamError(message)


def _relay(stream: Any, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line)
        sys.stderr.write(line)
    sys.stderr.flush()


_FAILURE = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*exitcode\s*:\s*(-?\d+)[^\n]*\n"
                      r"(?:.*\n)?\s*traceback\s*:\s*([^\n]*)")


def describe_failure(text: str) -> str | None:
    """Which rank failed and how, from torchrun's failure report.

    A rank killed by a signal other than SIGTERM (which torchrun sends to the survivors) is
    the cause when there is one; else torchrun's "root cause" (first observed failure).
    """
    def parse(part: str) -> list[tuple[int, int, int, str]]:
        return [(int(r), int(lr), int(code), trace.strip()) for r, lr, code, trace in _FAILURE.findall(part)]

    failures = parse(text)
    if not failures:
        return None
    _, _, root_text = text.rpartition("Root Cause")
    killed = [f for f in failures if f[2] < 0 and -f[2] != signal.SIGTERM]
    rank, local_rank, code, trace = (killed or parse(root_text) or failures)[0]
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() \
        else f"exited with code {code}"
    detail = "" if not trace or trace.startswith(("Signal", "<N/A>", "To enable")) else f" ({trace})"
    return f"rank {rank} (local rank {local_rank}) {how}{detail}"


def _mark_failed(workspace: str, run_id: str, message: str, world_size: int) -> str:
    """Record the failure in the run rank 0 was writing, unless it finished; the resume hint."""
    from engine.train.rundir import RunDir
    from engine.workspace import Workspace, read_json

    run = RunDir(Workspace.open(workspace).runs / run_id)
    status = read_json(run.path / "status.json") or {}
    if status.get("state") == "finished":
        return ""
    hint = f"; resume with: kdcam train --resume {run_id} (any --nproc-per-node)"
    run.set_status("failed", message + hint, world_size=world_size)
    return hint
