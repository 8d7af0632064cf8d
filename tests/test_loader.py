"""DeviceLoader: batches, normalisation, on-device crop/flip, and (seed, epoch) determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import ImageSet
from engine.data.loader import PAD, DeviceLoader, crop_and_flip
from engine.errors import KdcamError


def _imageset(n: int = 20, channels: int = 3, size: int = 8) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (n, size, size, channels), dtype=np.uint8)  # no zeros: padding is visible
    return ImageSet("t", "train", images, np.arange(n, dtype=np.int64) % 4, ["a", "b", "c", "d"],
                    mean=(0.5,) * channels, std=(0.25,) * channels)


def _epoch(loader: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]


def test_eval_mode_yields_every_image_in_order_normalised():
    data = _imageset(10)
    loader = DeviceLoader(data, batch_size=4, train=False)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 3
    images = torch.cat([b[0] for b in batches])
    indices = torch.cat([b[2] for b in batches])
    assert indices.tolist() == list(range(10)) and indices.dtype == torch.int64
    assert torch.cat([b[1] for b in batches]).tolist() == data.labels.tolist()
    expected = (torch.from_numpy(data.images).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(images, expected.permute(0, 3, 1, 2))
    assert images.is_contiguous()


def test_drop_last_drops_the_short_batch():
    loader = DeviceLoader(_imageset(10), batch_size=4, train=True, drop_last=True)
    assert len(loader) == 2 and all(len(b[2]) == 4 for b in _epoch(loader))


def test_same_seed_and_epoch_reproduce_exactly_and_epochs_differ():
    data = _imageset(20)
    first = DeviceLoader(data, batch_size=8, train=True, seed=3)
    resumed = DeviceLoader(data, batch_size=8, train=True, seed=3)
    first.set_epoch(0)
    _epoch(first)
    first.set_epoch(5)
    resumed.set_epoch(5)  # a run resumed straight at epoch 5
    for (xa, ya, ia), (xb, yb, ib) in zip(_epoch(first), _epoch(resumed), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
    resumed.set_epoch(6)
    epoch5, epoch6 = _epoch(first), _epoch(resumed)
    assert not torch.equal(epoch5[0][2], epoch6[0][2])  # another order
    other_seed = DeviceLoader(data, batch_size=8, train=True, seed=4)
    other_seed.set_epoch(5)
    assert not torch.equal(_epoch(other_seed)[0][2], epoch5[0][2])


def test_train_mode_shuffles_and_augments_every_image_once_per_epoch():
    data = _imageset(20)
    loader = DeviceLoader(data, batch_size=8, train=True, seed=0)
    batches = _epoch(loader)
    indices = torch.cat([b[2] for b in batches])
    assert sorted(indices.tolist()) == list(range(20)) and indices.tolist() != list(range(20))
    plain = (torch.from_numpy(data.images).float() / 255 - 0.5) / 0.25
    augmented = torch.cat([b[0] for b in batches])
    changed = [not torch.equal(augmented[k], plain[i].permute(2, 0, 1)) for k, i in enumerate(indices.tolist())]
    assert sum(changed) >= 15  # P(no crop shift and no flip) = 1/162 per image


def test_crop_and_flip_on_a_hand_made_image():
    image = torch.arange(1, 17, dtype=torch.uint8).reshape(1, 4, 4, 1)  # rows 1-4, 5-8, ...
    same = crop_and_flip(image, torch.tensor([[PAD, PAD]]), torch.tensor([False]))
    assert torch.equal(same, image)
    mirrored = crop_and_flip(image, torch.tensor([[PAD, PAD]]), torch.tensor([True]))
    assert mirrored[0, :, :, 0].tolist()[0] == [4, 3, 2, 1]
    # start one row down and two columns right: the top-left is pixel (1, 2); zeros come in at the edges
    shifted = crop_and_flip(image, torch.tensor([[PAD + 1, PAD + 2]]), torch.tensor([False]))[0, :, :, 0]
    assert shifted.tolist() == [[7, 8, 0, 0], [11, 12, 0, 0], [15, 16, 0, 0], [0, 0, 0, 0]]
    # start at the very corner of the padding: only zeros
    corner = crop_and_flip(image, torch.tensor([[0, 0]]), torch.tensor([False]))
    assert corner.sum() == 0
    # flip happens after the crop: a right-shifted crop, mirrored
    both = crop_and_flip(image, torch.tensor([[PAD, PAD + 1]]), torch.tensor([True]))[0, :, :, 0]
    assert both.tolist()[0] == [0, 4, 3, 2]


def test_one_channel_images_and_single_value_statistics():
    data = _imageset(6, channels=1)
    loader = DeviceLoader(data, batch_size=6, train=True, mean=(0.1307,), std=(0.3081,))
    images, _, _ = next(iter(loader))
    assert images.shape == (6, 1, 8, 8)


def test_channels_last_layout():
    images, _, _ = next(iter(DeviceLoader(_imageset(4), batch_size=4, channels_last=True)))
    assert images.is_contiguous(memory_format=torch.channels_last)


def test_statistics_that_do_not_fit_the_channels_are_refused():
    with pytest.raises(KdcamError, match="normalisation mean has 3 values for 1-channel images"):
        DeviceLoader(_imageset(4, channels=1), batch_size=2, mean=(0.5, 0.5, 0.5), std=(0.2,))
