"""Training throughput on 1 and on N torchrun processes, and the scaling efficiency.

    python bench/distributed.py                 # CPU: 1 and 2 processes, 1 thread each, gloo
    python bench/distributed.py --device cuda   # GPUs: 1 and N processes (N = --procs, one per GPU), NCCL

Each run trains a kd student (vgg8 from a vgg8 teacher) through the real trainer
(``Session.fit``: sharded loader, DDP, rank-0 writes) in a scratch workspace, with the same
global batch; the figure is the last epoch's images/s over the whole (global) training set.
Efficiency = images/s on N processes ÷ (N × images/s on 1). On a CPU with fewer free cores
than processes the figure is bounded by the cores, not by kdcam: say so with the number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "BENCH-RESULT "


def worker(args: argparse.Namespace) -> None:
    """One rank: train, then rank 0 prints the last epoch's images/s."""
    from engine import distributed
    from engine.api.specs import TrainSpec
    from engine.jobs import JobContext
    from engine.train.suite import open_session

    here = distributed.join(args.device)
    ctx = JobContext("bench", lambda event: None, threading.Event())
    spec = TrainSpec(workspace=args.workspace, dataset=f"shapes?classes=8&train={args.images}&test=64",
                     teacher="vgg8", student="vgg8", methods=("kd",), recipe="demo", epochs=args.epochs,
                     batch_size=args.batch, width=args.width, teacher_width=args.width, device=args.device)
    session = open_session(spec, ctx)
    teacher = session.build("vgg8", args.width).to(session.device).eval()
    distiller = session.distiller("kd", session.build("vgg8"), teacher)
    result = session.fit(f"bench-{here.world_size}", "student", "kd", "vgg8", distiller, ctx, teacher_name="random")
    if here.main:
        print(MARK + json.dumps({"procs": here.world_size, "images_per_s": result.records[-1]["images_per_s"]}),
              flush=True)
    distributed.leave()


def run(procs: int, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="kdcam-bench-") as workspace:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
                   __file__, "--worker", "--workspace", workspace, "--device", args.device,
                   "--images", str(args.images), "--epochs", str(args.epochs), "--batch", str(args.batch),
                   "--width", str(args.width)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "PYTHONPATH": str(ROOT),
               "GLOO_SOCKET_IFNAME": "lo"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{procs} process(es) failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    return float(json.loads(line[len(MARK):])["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one process per GPU)")
    parser.add_argument("--procs", type=int, default=2, help="processes of the scaled run (default: 2)")
    parser.add_argument("--images", type=int, default=2048, help="training images (default: 2048)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs; the last one is timed (default: 2)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size (default: 64)")
    parser.add_argument("--width", type=float, default=0.25, help="width multiplier of both models (default: 0.25)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    single = run(1, args)
    scaled = run(args.procs, args)
    print(f"device {args.device}, kd vgg8→vgg8 width {args.width:g}, {args.images} images, global batch {args.batch}, "
          f"1 thread per process (OMP_NUM_THREADS=1)")
    print(f"1 process:  {single:8.0f} images/s")
    print(f"{args.procs} processes: {scaled:8.0f} images/s")
    print(f"scaling efficiency: {scaled / (args.procs * single):.0%} (ideal 100%); speed-up ×{scaled / single:.2f}")


if __name__ == "__main__":
    main()
