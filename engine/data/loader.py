"""``DeviceLoader``: a whole split as one uint8 tensor on the device, batched and augmented there.

Why not ``torch.utils.data.DataLoader``: for 32x32 images the per-image Python work
(PIL conversion, transforms, collation, worker processes) costs more than the model. Here
a batch is one gather from a resident tensor; random crop (4-pixel zero padding) and
horizontal flip are one more gather for the whole batch, then conversion and normalisation.

Determinism: the sample order and every crop offset and flip are drawn at ``set_epoch(e)``
from a generator seeded by ``(seed, e)`` only, so a run resumed at epoch ``e`` sees exactly
the batches it would have seen without the interruption. Iterating without calling
``set_epoch`` again repeats the same epoch.

Sharding (distributed training): every rank draws the same plan and takes its contiguous
share of each *global* batch of ``batch_size`` images (shares differ by at most one image),
so N ranks see exactly the batches, crops and flips of one process. The batch size is
global: a 2-rank run takes the same optimiser steps as one process. A training epoch's last
batch is dropped only when it holds fewer images than there are ranks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from engine.data import ImageSet
from engine.errors import KdcamError

PAD = 4  # random-crop padding in pixels, as in the CIFAR KD literature


class DeviceLoader:
    """Yields ``(images float B x C x H x W normalised, labels int64, indices int64)`` on ``device``.

    ``images`` (uint8 N x H x W x C) and ``labels`` stay available as device tensors, e.g. to
    count a split's size; ``indices`` say which images of the split a batch holds.
    """

    def __init__(
        self,
        imageset: ImageSet,
        batch_size: int,
        device: str | torch.device = "cpu",
        train: bool = False,
        seed: int = 0,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        channels_last: bool = False,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.channels_last = channels_last
        self.drop_last = drop_last
        images = np.ascontiguousarray(imageset.images)
        self.images = torch.from_numpy(images).to(self.device)  # N x H x W x C uint8
        self.labels = torch.from_numpy(np.asarray(imageset.labels, dtype=np.int64)).to(self.device)
        channels = images.shape[3]
        mean = imageset.mean if mean is None else mean
        std = imageset.std if std is None else std
        inv_std = 1.0 / _per_channel(std, channels, "std")
        self.scale = (inv_std / 255.0).view(1, channels, 1, 1).to(self.device)
        self.shift = (-_per_channel(mean, channels, "mean") * inv_std).view(1, channels, 1, 1).to(self.device)
        self.epoch = 0
        self._plan = self._draw_plan(0)

    def __len__(self) -> int:
        """Global batches per epoch (a rank may skip one whose share is empty, only when not training)."""
        n = len(self.labels)
        rest = n % self.batch_size
        short = self.drop_last or (self.train and 0 < rest < self.world_size)
        return n // self.batch_size if short or not rest else n // self.batch_size + 1

    def share(self, b: int) -> tuple[int, int, int]:
        """(start, stop) of this rank's positions in global batch ``b``, and the global batch's size."""
        lo = b * self.batch_size
        size = min(len(self.labels), lo + self.batch_size) - lo
        base, extra = divmod(size, self.world_size)
        start = lo + self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra), size

    def weight(self, b: int) -> float:
        """Loss factor of this rank's share of batch ``b``: DDP averages gradients over ranks, so a
        share of n images in a global batch of m weighs n·world/m for the mean over m images."""
        start, stop, size = self.share(b)
        return (stop - start) * self.world_size / size

    def set_epoch(self, epoch: int) -> None:
        """Fix the order and augmentation of the next iteration to those of ``epoch``."""
        self.epoch = epoch
        self._plan = self._draw_plan(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._plan
        for b in range(len(self)):
            start, stop, _ = self.share(b)
            if start == stop:
                continue
            indices = order[start:stop]
            batch = self.images.index_select(0, indices)  # much faster than images[indices] on CPU
            if offsets is not None and flips is not None:  # drawn for training epochs only
                batch = crop_and_flip(batch, offsets[start:stop], flips[start:stop])
            yield self._normalise(batch), self.labels.index_select(0, indices), indices

    def _draw_plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Order, crop offsets (N x 2) and flips (N) of one epoch, on the device."""
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.device), None, None
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        order = torch.randperm(n, generator=generator)
        offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        return order.to(self.device), offsets.to(self.device), flips.to(self.device)

    def _normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 B x H x W x C -> normalised float B x C x H x W, as (x / 255 - mean) / std."""
        images = batch.permute(0, 3, 1, 2).float()
        if not self.channels_last:
            images = images.contiguous()  # else: an NHWC-strided NCHW view is exactly channels_last
        return images.mul_(self.scale).add_(self.shift)


def crop_and_flip(batch: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random crop from a ``PAD``-pixel zero-padded image, then optional horizontal flip.

    ``batch`` is B x H x W x C; ``offsets[i] = (dy, dx)`` in ``[0, 2 * PAD]`` is where the crop
    starts in the padded image; ``flips[i]`` mirrors image i. Each output pixel's position in
    its padded image is computed for the whole batch, then fetched with a single gather.
    """
    b, h, w, c = batch.shape
    padded_h, padded_w = h + 2 * PAD, w + 2 * PAD
    padded = batch.new_zeros((b, padded_h, padded_w, c))
    padded[:, PAD : PAD + h, PAD : PAD + w] = batch
    columns = torch.arange(w, device=batch.device)
    columns = torch.where(flips[:, None], w - 1 - columns, columns) + offsets[:, 1:2]  # B x W
    rows = torch.arange(h, device=batch.device) + offsets[:, 0:1]  # B x H
    source = (rows[:, :, None] * padded_w + columns[:, None, :]).view(b, h * w, 1).expand(b, h * w, c)
    return padded.view(b, padded_h * padded_w, c).gather(1, source).view(b, h, w, c)


def _per_channel(values: tuple[float, ...], channels: int, what: str) -> torch.Tensor:
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise KdcamError(f"normalisation {what} has {len(values)} values for {channels}-channel images")
    return torch.tensor(values, dtype=torch.float32)


def _mix(seed: int, epoch: int) -> int:
    """A 63-bit generator seed from (seed, epoch); distinct pairs give unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
