"""What the where-to-look methods cost: epoch time of ``cat``, ``xa`` and the standardised logit
methods, each divided by ``kd``'s, on the same data, models and optimiser.

Every method runs ``engine.train.trainer.train_epoch`` (the real training loop) over the same
on-device loader; the methods are measured side by side in one run, in rotating order, best of
``--repeats`` after one warm-up epoch each, so a noisy shared machine slows them alike. Wall time
and this process's CPU time are both reported: on a loaded shared CPU the wall clock mostly
measures the neighbours, and CPU seconds (all threads) are the steadier measure of the work.

    .venv/bin/python bench/distill_where.py [--device cpu] [--images 1000] [--repeats 3]
    python bench/distill_where.py --device cuda --images 20000 --width 1
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import threading
import time
from pathlib import Path

import torch

from engine.data import load_split
from engine.data.loader import DeviceLoader
from engine.distill import TrainingSet, build_distiller
from engine.jobs import JobContext
from engine.models import build_model
from engine.train.device import autocast, prepare_model
from engine.train.recipes import resolve_recipe
from engine.train.rundir import RunDir
from engine.train.trainer import FitPlan, train_epoch

#: (label, method, options): the baseline first
CASES: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("kd", "kd", {}),
    ("kd+std", "kd", {"standardize": True}),
    ("dkd", "dkd", {}),
    ("dkd+std", "dkd", {"standardize": True}),
    ("cat", "cat", {}),
    ("xa", "xa", {}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--width", type=float, default=0.125, help="students' width; the teacher gets twice it")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    data = load_split(f"shapes?train={args.images}&test=10", "train", Path(tempfile.mkdtemp()))
    labels = torch.from_numpy(data.labels).to(device)
    torch.manual_seed(0)
    teacher = prepare_model(build_model("vgg16", data.num_classes, min(1.0, 2 * args.width)), device).eval()
    recipe = resolve_recipe("demo", batch_size=args.batch_size)
    loader = DeviceLoader(data, args.batch_size, device, train=True, seed=0, channels_last=device.type == "cuda")
    ctx = JobContext("bench", lambda event: None, threading.Event())
    run_dir = RunDir(Path(tempfile.mkdtemp()) / "bench")
    mixed = autocast(device)

    epochs = {}
    for label, method, options in CASES:
        torch.manual_seed(0)
        student = prepare_model(build_model("vgg11", data.num_classes, args.width), device)
        distiller = build_distiller(method, student, teacher, dict(options), TrainingSet(len(data), labels)).to(device)
        optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)
        plan = FitPlan("bench", "student", method, "vgg11", args.width, distiller, recipe, data, data, device, 0)

        def epoch(plan: FitPlan = plan, distiller: torch.nn.Module = distiller,
                  optimizer: torch.optim.Optimizer = optimizer) -> None:
            train_epoch(plan, distiller, optimizer, loader, 1, mixed, ctx, run_dir)

        epochs[label] = epoch

    def timed(label: str) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) for one epoch."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, cpu = time.perf_counter(), time.process_time()
        epochs[label]()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, time.process_time() - cpu

    names = list(epochs)
    for name in names:  # warm-up: allocator, cuDNN autotuning, first-call costs
        timed(name)
    best = {name: float("inf") for name in names}
    best_cpu = {name: float("inf") for name in names}
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            wall, cpu = timed(name)
            best[name], best_cpu[name] = min(best[name], wall), min(best_cpu[name], cpu)

    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads")
    print(f"epoch time / kd's: teacher vgg16 x{min(1.0, 2 * args.width):g} -> student vgg11 x{args.width:g}, "
          f"{len(data)} shapes images, batch {args.batch_size}, {machine}, best of {args.repeats}")
    print(f"  {'method':8s} {'wall s':>7s} {'images/s':>8s} {'÷ kd':>6s}   {'CPU s':>7s} {'÷ kd':>6s}")
    for name in names:
        print(f"  {name:8s} {best[name]:7.2f} {len(data) / best[name]:8.0f} {best[name] / best['kd']:6.2f}   "
              f"{best_cpu[name]:7.2f} {best_cpu[name] / best_cpu['kd']:6.2f}")


if __name__ == "__main__":
    main()
