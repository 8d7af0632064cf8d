"""The ``--nproc-per-node`` family of flags, shared by ``kdcam train`` and ``kdcam analyze``.

Given those flags (and not already inside torchrun) the command re-runs itself under
torchrun (this process stays torch-free); inside torchrun, each worker joins the process
group, rank 0 reports as a single process would, and the other ranks work silently. A rank
that dies makes torchrun stop the others; the launcher reads torchrun's failure report,
names the rank, marks the run failed and says how to resume.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

from engine.errors import JobCancelled, KdcamError

#: launcher flags that torchrun consumes; they are not passed on to the workers
LAUNCH_FLAGS = ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint")
#: a file (made by the launcher) where rank 0 notes each run it opens (``engine.distributed.note_run``)
RUN_NOTE_ENV = "KDCAM_RUN_NOTE"


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling out (torchrun)")
    group.add_argument("--nproc-per-node", type=int, metavar="N",
                       help="run N processes on this machine under torchrun (one per GPU; gloo on CPU)")
    group.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines taking part (default: 1)")
    group.add_argument("--node-rank", type=int, default=0, metavar="R", help="this machine's rank, 0..M-1")
    group.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of a multi-node run (node 0)")


def launched(args: argparse.Namespace) -> bool:
    """Start torchrun when the flags ask for it (True: the distributed run finished)."""
    if "RANK" in os.environ or not (args.nproc_per_node or args.nnodes > 1):
        return False  # a torchrun worker already, or one process asked for
    launch(args.argv, args.nproc_per_node or 1, args.nnodes, args.node_rank, args.rdzv_endpoint,
                       workspace=args.workspace)
    return True


def run_on_rank(spec: Any, as_json: bool) -> Any:
    """Run the job on this rank: rank 0 (or a single process) with live output, the others silently.

    Returns None on ranks other than 0, whose result is rank 0's to report.
    """
    from engine.cli.output import run_job
    from engine.jobs import JobContext, run_inline

    rank = int(os.environ.get("RANK", "0"))  # torchrun's; the job itself joins the process group
    if rank == 0:
        return run_job(spec, as_json=as_json)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: cancel.set())
    try:
        run_inline(spec, JobContext(f"rank{rank}", lambda event: None, cancel))
    except JobCancelled:
        raise KdcamError(f"rank {rank}: cancelled") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    return None


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
           workspace: str = ".") -> None:
    """Run ``kdcam ARGV`` under torchrun; a failed worker becomes a ``KdcamError`` naming its rank.

    Worker output passes through (stderr is also kept, to read torchrun's failure report).
    Ctrl-C reaches the workers directly (same process group); they cancel together.
    """
    command = torchrun_command(argv, nproc, nnodes, node_rank, rdzv_endpoint)
    with tempfile.TemporaryDirectory(prefix="kdcam-launch-") as tmp:
        note = Path(tmp) / "runs"
        env = {**os.environ, RUN_NOTE_ENV: str(note), "PYTHONUNBUFFERED": "1"}
        local = rdzv_endpoint is None or rdzv_endpoint.rpartition(":")[0] in ("127.0.0.1", "localhost")
        if local and sys.platform.startswith("linux"):  # all ranks on this machine: their sockets on loopback
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
            env.setdefault("NCCL_SOCKET_IFNAME", "lo")
        tail: deque[str] = deque(maxlen=400)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers handle Ctrl-C themselves
        try:
            process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
            reader = threading.Thread(target=_relay, args=(process.stderr, tail), daemon=True)
            reader.start()
            code = process.wait()
            reader.join(timeout=10)
        finally:
            signal.signal(signal.SIGINT, previous)
        if code == 0:
            return
        runs = note.read_text(encoding="utf-8").split() if note.exists() else []
    raise KdcamError(_settle(workspace, runs[-1] if runs else None, describe_failure("".join(tail)), code))


def _relay(stream: Any, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line)
        sys.stderr.write(line)
    sys.stderr.flush()


_FAILURE = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*exitcode\s*:\s*(-?\d+)[^\n]*\n"
                      r"(?:.*\n)?\s*traceback\s*:\s*([^\n]*)")


def describe_failure(text: str) -> tuple[int, str] | None:
    """Which rank failed, and how (as a phrase), from torchrun's failure report.

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
    return rank, f"rank {rank} (local rank {local_rank}) {how}{detail}"


def _settle(workspace: str, run_id: str | None, failure: tuple[int, str] | None, code: int) -> str:
    """The user's message; the run rank 0 was writing records what happened to it.

    A run rank 0 marked cancelled or finished keeps its status, and so does one it marked
    failed when rank 0 itself is the cause (its message is the precise one). Otherwise (rank 0
    was stopped mid-run, or its error was another rank's death) the run is marked failed
    naming the rank.
    """
    message = f"distributed run failed: {failure[1]}" if failure else f"torchrun exited with code {code}; see above"
    if run_id is None:
        return message
    from engine.api.runs import write_status
    from engine.api.workspace import Workspace, read_json

    run_path = Workspace.open(workspace).runs / run_id
    status = read_json(run_path / "status.json") or {}
    hint = f"; resume with: kdcam -w {workspace} train --resume {run_id} (any --nproc-per-node)"
    state = status.get("state")
    if state == "finished":
        return message
    if state == "cancelled":
        return f"cancelled{hint}"
    if state == "failed" and (failure is None or failure[0] == 0) and status.get("message"):
        return f"{status['message']}{hint}"
    write_status(run_path, "failed", message + hint, world_size=status.get("world_size"))
    return message + hint
