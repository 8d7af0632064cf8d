"""The ``--nproc-per-node`` family of flags, shared by ``kdcam train`` and ``kdcam analyze``.

Given those flags (and not already inside torchrun) the command re-runs itself under
torchrun; inside torchrun, each worker joins the process group, rank 0 reports as a
single process would, and the other ranks work silently.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from engine.errors import JobCancelled, KdcamError


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling out (torchrun)")
    group.add_argument("--nproc-per-node", type=int, metavar="N",
                       help="run N processes on this machine under torchrun (one per GPU; gloo on CPU)")
    group.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines taking part (default: 1)")
    group.add_argument("--node-rank", type=int, default=0, metavar="R", help="this machine's rank, 0..M-1")
    group.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of a multi-node run (node 0)")


def launched(args: argparse.Namespace) -> bool:
    """Start torchrun when the flags ask for it (True: the distributed run finished)."""
    from engine import distributed

    if distributed.worker_env() is not None or not (args.nproc_per_node or args.nnodes > 1):
        return False
    distributed.launch(args.argv, args.nproc_per_node or 1, args.nnodes, args.node_rank, args.rdzv_endpoint,
                       workspace=args.workspace)
    return True


def run_on_rank(spec: Any, as_json: bool) -> Any:
    """Run the job on this rank: rank 0 (or a single process) with live output, the others silently.

    Returns None on ranks other than 0, whose result is rank 0's to report.
    """
    from engine import distributed
    from engine.cli.output import run_job
    from engine.jobs import JobContext, run_inline

    here = distributed.join(spec.device)
    try:
        if here.main:
            return run_job(spec, as_json=as_json)
        cancel = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda signum, frame: cancel.set())
        try:
            run_inline(spec, JobContext(f"rank{here.rank}", lambda event: None, cancel))
        except JobCancelled:
            raise KdcamError(f"rank {here.rank}: cancelled") from None
        finally:
            signal.signal(signal.SIGINT, previous)
        return None
    finally:
        distributed.leave()

