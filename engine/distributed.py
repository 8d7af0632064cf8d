"""Running kdcam on PyTorch's distributed engine: torchrun workers and their collectives.

A process is a *worker* when torchrun started it (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in
its environment); ``kdcam train|analyze --nproc-per-node N`` starts torchrun itself
(``engine.cli.launch``, which does not import torch). Workers join one process group (gloo
on CPU, NCCL on CUDA) before the job runs; every helper here is the identity in a single
process, so the engine calls them unconditionally and one code path serves 1 and N processes.

Only rank 0 writes files; it notes each run it opens for the launcher (``note_run``), which
marks that run failed when a rank dies.
"""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from engine.cli.launch import RUN_NOTE_ENV
from engine.errors import KdcamError

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


@contextmanager
def joined(device: str) -> Iterator[Rank]:
    """The job's process group for its duration: joined when torchrun started this process, else a no-op."""
    here = join(device)
    try:
        yield here
    finally:
        leave()


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
    rows = torch.cat([part[: int(count)] for part, count in zip(parts, counts, strict=True)])
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
