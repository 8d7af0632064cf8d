"""Training benchmark: how close a KD epoch gets to pure compute, and how it compares with a textbook loop.

Three ways to run the same KD epoch (teacher frozen, student trained, same model, batch and
optimiser), measured side by side in one run, alternating, best of ``--repeats``:

- compute: the distiller's forward/backward/step on batches already augmented and resident
  on the device (the floor: no data work, no bookkeeping);
- kdcam:   ``engine.train.trainer.train_epoch`` with the on-device loader (crop/flip on the
  device, per-batch cancel check, progress events, loss sums, NaN check);
- textbook: torchvision transforms per PIL image + ``DataLoader``, then the same step.

Prints (a) kdcam ÷ compute (goal ≤ 1.15) and (b) textbook ÷ kdcam, with images/s. The CPU
default is small (shapes, 1/8 width); ``--device cuda --full`` is VGG-16 → VGG-11 at full
width on 50,000 CIFAR-100-shaped images (synthetic pixels: speed does not depend on them).

    .venv/bin/python bench/train.py [--device cpu] [--images 2000] [--width 0.125] [--repeats 3]
    python bench/train.py --device cuda --full
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.data import ImageSet, load_split
from engine.data.loader import DeviceLoader
from engine.distill import TrainingSet, build_distiller
from engine.jobs import JobContext
from engine.models import build_model
from engine.train.device import autocast, prepare_model
from engine.train.recipes import resolve_recipe
from engine.train.rundir import RunDir
from engine.train.trainer import FitPlan, train_epoch


def synthetic_cifar100(n: int, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, n).astype(np.int64)
    return ImageSet("cifar100-shaped", "train", images, labels, [f"c{i}" for i in range(100)],
                    mean=(0.507, 0.487, 0.441), std=(0.267, 0.256, 0.276))


def textbook_loader(data: ImageSet, batch_size: int, workers: int, pin: bool):
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])

    class ArrayDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, index: int):
            return transform(Image.fromarray(data.images[index])), int(data.labels[index]), index

    return torch.utils.data.DataLoader(ArrayDataset(), batch_size=batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=pin, persistent_workers=workers > 0, drop_last=False)


def timed(run: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="VGG-16 -> VGG-11, width 1, 50,000 images, batch 64")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--method", default="kd")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="textbook DataLoader workers (default: 0 on CPU, "
                        "min(8, cores) on CUDA)")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if args.full:
        args.images, args.width = 50_000, 1.0
    device = torch.device(args.device)
    workers = args.workers if args.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))

    data = synthetic_cifar100(args.images) if args.full else _shapes(args.images)
    torch.manual_seed(0)
    teacher = prepare_model(build_model("vgg16", data.num_classes, args.width), device).eval()
    student = prepare_model(build_model("vgg11", data.num_classes, args.width), device)
    labels = torch.from_numpy(data.labels).to(device)
    distiller = build_distiller(args.method, student, teacher, {}, TrainingSet(len(data), labels)).to(device)
    recipe = resolve_recipe("paper", batch_size=args.batch_size)
    optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)
    step = torch.compile(distiller) if args.compile else distiller
    mixed = autocast(device)
    channels_last = device.type == "cuda"
    loader = DeviceLoader(data, args.batch_size, device, train=True, seed=0, channels_last=channels_last)
    plan = FitPlan("bench", "student", args.method, "vgg11", args.width, distiller, recipe, data, data, device, 0)
    ctx = JobContext("bench", lambda event: None, threading.Event())
    run_dir = RunDir(Path(tempfile.mkdtemp()) / "bench")
    loader.set_epoch(1)
    resident = [(x.clone(), y, i) for x, y, i in loader]
    book = textbook_loader(data, args.batch_size, workers, pin=device.type == "cuda")

    def kd_step(x, y, i) -> None:
        with mixed():
            _, terms = step(x, y, i, 1)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def compute() -> None:
        for x, y, i in resident:
            kd_step(x, y, i)

    def ours() -> None:
        train_epoch(plan, step, optimizer, loader, 1, mixed, ctx, run_dir)

    def textbook() -> None:
        distiller.train()
        for x, y, i in book:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            kd_step(x, y.to(device, non_blocking=True), i.to(device, non_blocking=True))

    distiller.train()
    runs = {"compute": compute, "kdcam": ours, "textbook": textbook}
    for run in runs.values():  # warm-up: allocator, cuDNN autotuning, compile, worker start
        timed(run, device)
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run, device))

    n = len(data)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"KD epoch ({args.method}) vgg16 -> vgg11, width {args.width}, {n} images {data.name}, batch "
          f"{args.batch_size}, {gpu}, textbook workers {workers}, best of {args.repeats}")
    for name in runs:
        print(f"  {name:9s} {best[name]:8.2f} s/epoch  {n / best[name]:9.0f} images/s")
    print(f"(a) kdcam / compute   = {best['kdcam'] / best['compute']:.3f}   (goal <= 1.15)")
    print(f"(b) textbook / kdcam  = {best['textbook'] / best['kdcam']:.3f}")


def _shapes(n: int) -> ImageSet:
    data = load_split(f"shapes?train={n}&test=10", "train", Path("data"))
    return data


if __name__ == "__main__":
    main()
