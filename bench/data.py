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
from functools import partial

import numpy as np
import torch


def best_rates(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Fastest time of each run over ``repeats`` rounds, the runs interleaved within a round.

    Interleaving makes every pipeline see the same neighbours' load; the fastest round is
    the least disturbed one.
    """
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


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

    def one_epoch(loader) -> None:
        for batch in loader:
            batch[0].sum()  # touch the result, as a model would

    imageset = load_split(f"shapes?train={args.images}", "train")
    device_loader = DeviceLoader(imageset, args.batch_size, "cpu", train=True, seed=0)
    runs: dict[str, Callable[[], object]] = {
        f"shapes v{version} generation (numpy)": partial(shapes.generate, args.images, seed=0, version=version)
        for version in reversed(shapes.VERSIONS)
    }
    runs["DeviceLoader, train (crop+flip)"] = lambda: one_epoch(device_loader)
    for workers in (int(w) for w in args.workers.split(",")):
        baseline = textbook_loader(imageset.images, imageset.labels, args.batch_size,
                                   imageset.mean, imageset.std, workers)
        runs[f"torchvision transforms + DataLoader, {workers} workers"] = partial(one_epoch, baseline)
    seconds = best_rates(runs, args.repeats)
    device_seconds = seconds["DeviceLoader, train (crop+flip)"]
    rows = [(name, args.images / s, None if "torchvision" not in name else s / device_seconds)
            for name, s in seconds.items()]

    print(f"{args.images} shapes images 32x32x3, batch {args.batch_size}, torch threads {args.threads}, "
          f"best of {args.repeats}")
    print(f"{'pipeline':<50} {'images/s':>10}  DeviceLoader speed-up")
    for name, rate, ratio in rows:
        print(f"{name:<50} {rate:>10.0f}  {'' if ratio is None else f'{ratio:.1f}x'}")


if __name__ == "__main__":
    main()
