"""Data benchmark: shapes generation rate and on-device loader throughput, with a textbook baseline.

The baseline is what a CIFAR tutorial does: a Dataset of uint8 arrays turned into PIL
images, ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip`` + ``ToTensor`` +
``Normalize`` per image, batched by ``torch.utils.data.DataLoader``. Both pipelines see the
same images in the same run, so the ratio is meaningful on a noisy shared machine; the
absolute numbers are not comparable across runs.

    .venv/bin/python bench/data.py [--images 5000] [--batch-size 128] [--repeats 3] [--threads N] [--workers 0,2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch


def best_rate(images: int, run: Callable[[], object], repeats: int) -> float:
    """Images per second of the fastest of ``repeats`` runs (the least disturbed by neighbours)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return images / best


def textbook_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, mean, std, workers: int):
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])

    class ArrayDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, index: int):
            return transform(Image.fromarray(images[index])), int(labels[index])

    return torch.utils.data.DataLoader(ArrayDataset(), batch_size=batch_size, shuffle=True, num_workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts of the baselines (default: 0,2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from engine.data import shapes
    from engine.data.loader import DeviceLoader
    from engine.data.registry import load_split

    generation = best_rate(args.images, lambda: shapes.generate(args.images, seed=0), args.repeats)
    imageset = load_split(f"shapes?train={args.images}", "train")

    def one_epoch(loader) -> None:
        for batch in loader:
            batch[0].sum()  # touch the result, as a model would

    device_loader = DeviceLoader(imageset, args.batch_size, "cpu", train=True, seed=0)
    device_rate = best_rate(len(imageset), lambda: one_epoch(device_loader), args.repeats)
    rows = [("shapes generation (numpy)", generation, None), ("DeviceLoader, train (crop+flip)", device_rate, None)]
    for workers in (int(w) for w in args.workers.split(",")):
        baseline = textbook_loader(imageset.images, imageset.labels, args.batch_size,
                                   imageset.mean, imageset.std, workers)
        rate = best_rate(len(imageset), lambda: one_epoch(baseline), args.repeats)
        rows.append((f"torchvision transforms + DataLoader, {workers} workers", rate, device_rate / rate))

    print(f"{args.images} shapes images 32x32x3, batch {args.batch_size}, torch threads {args.threads}, "
          f"best of {args.repeats}")
    print(f"{'pipeline':<50} {'images/s':>10}  DeviceLoader speed-up")
    for name, rate, ratio in rows:
        print(f"{name:<50} {rate:>10.0f}  {'' if ratio is None else f'{ratio:.1f}x'}")


if __name__ == "__main__":
    main()
