"""What the where-to-look methods cost: a training epoch of ``cat``, ``xa`` and the standardised
logit methods, each divided by ``kd``'s, on the same data, models and optimiser settings.

Side by side in one run, interleaved batch by batch: every batch of the on-device loader is
trained once by each method in turn (each has its own student and optimiser), rotating who goes
first, and each method's step times (forward, loss, backward, optimiser step; what differs
between methods) are recorded. A shared, loaded machine then slows all methods alike instead of
whichever happened to run during a busy minute. Reported: wall and CPU time per epoch, their
ratios to ``kd``, and the median over batches of the per-batch wall ratio (robust to a burst
of load during one step). The first epoch is a warm-up and not counted.

    .venv/bin/python bench/distill_where.py [--device cpu] [--images 1000] [--epochs 2]
    python bench/distill_where.py --device cuda --images 20000 --width 1
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from engine.data import load_split
from engine.data.loader import DeviceLoader
from engine.distill import TrainingSet, build_distiller
from engine.models import build_model
from engine.train.device import autocast, prepare_model

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
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one warm-up epoch")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = load_split(f"shapes?train={args.images}&test=10", "train", Path(tempfile.mkdtemp()))
    labels = torch.from_numpy(data.labels).to(device)
    torch.manual_seed(0)
    teacher_width = min(1.0, 2 * args.width)
    teacher = prepare_model(build_model("vgg16", data.num_classes, teacher_width), device).eval()
    loader = DeviceLoader(data, args.batch_size, device, train=True, seed=0, channels_last=device.type == "cuda")
    mixed = autocast(device)

    steps = {}
    for label, method, options in CASES:
        torch.manual_seed(0)
        student = prepare_model(build_model("vgg11", data.num_classes, args.width), device)
        distiller = build_distiller(method, student, teacher, dict(options), TrainingSet(len(data), labels)).to(device)
        distiller.train()
        optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)
        steps[label] = (distiller, optimizer)

    def step(label: str, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, epoch: int) -> None:
        distiller, optimizer = steps[label]
        with mixed():
            _, terms = distiller(images, targets, indices, epoch)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    names = list(steps)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    per_batch: dict[str, list[float]] = {name: [] for name in names}
    batches = 0
    for epoch in range(1 + args.epochs):
        loader.set_epoch(epoch + 1)
        for images, targets, indices in loader:
            turn = batches % len(names)
            for name in names[turn:] + names[:turn]:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                step(name, images, targets, indices, epoch + 1)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if epoch > 0:  # the first epoch warms up allocators, autotuning and first calls
                    per_batch[name].append(time.perf_counter() - start)
                    wall[name] += per_batch[name][-1]
                    cpu[name] += time.process_time() - start_cpu
            batches += 1

    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads")
    print(f"training-step time per epoch / kd's: teacher vgg16 x{teacher_width:g} -> student vgg11 x{args.width:g}, "
          f"{len(data)} shapes images, batch {args.batch_size}, {machine}, {args.epochs} timed epochs, interleaved")
    print(f"  {'method':8s} {'wall s':>7s} {'images/s':>8s} {'÷ kd':>6s}   {'CPU s':>7s} {'÷ kd':>6s}   "
          f"{'median per-batch ÷ kd':>21s}")
    for name in names:
        per_epoch, cpu_epoch = wall[name] / args.epochs, cpu[name] / args.epochs
        ratios = sorted(t / k for t, k in zip(per_batch[name], per_batch["kd"], strict=True))
        print(f"  {name:8s} {per_epoch:7.2f} {len(data) / per_epoch:8.0f} {wall[name] / wall['kd']:6.2f}   "
              f"{cpu_epoch:7.2f} {cpu[name] / cpu['kd']:6.2f}   {ratios[len(ratios) // 2]:21.2f}")


if __name__ == "__main__":
    main()
