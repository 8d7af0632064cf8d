"""Datasets from files: CIFAR pickles, MNIST IDX, npz and image folders the tests write themselves."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import load_split
from engine.errors import KdcamError

RNG = np.random.default_rng(0)


def _cifar_planes(images: np.ndarray) -> np.ndarray:
    """NHWC -> the official N x 3072 row layout (all red, then green, then blue)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _dump(path: Path, obj: object) -> None:
    """Pickle like the official files: protocol 2, numpy arrays under numpy 1's module name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(obj, protocol=2)
    path.write_bytes(data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


def _write_cifar10(root: Path, per_batch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    images = RNG.integers(0, 256, (6 * per_batch, 32, 32, 3), dtype=np.uint8)
    labels = RNG.integers(0, 10, 6 * per_batch)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for k, name in enumerate(names):
        rows = slice(k * per_batch, (k + 1) * per_batch)
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": labels[rows].tolist(),
                              b"data": _cifar_planes(images[rows]), b"filenames": [b"x.png"] * per_batch})
    label_names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(folder / "batches.meta", {b"num_cases_per_batch": per_batch, b"label_names": label_names, b"num_vis": 3072})
    return images, labels


def test_cifar10_from_the_real_pickle_layout(tmp_path):
    images, labels = _write_cifar10(tmp_path)
    train = load_split("cifar10", "train", root=tmp_path)
    test = load_split("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(train.images, images[:30])
    np.testing.assert_array_equal(train.labels, labels[:30])
    np.testing.assert_array_equal(test.images, images[30:])
    assert train.class_names[:2] == ["airplane", "automobile"] and train.num_classes == 10
    assert train.masks is None and train.mean == pytest.approx((0.4914, 0.4822, 0.4465))


def test_cifar100_uses_fine_labels_and_names(tmp_path):
    folder = tmp_path / "cifar-100-python"
    images = RNG.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    fine = RNG.integers(0, 100, 8)
    for name, rows in (("train", slice(0, 5)), ("test", slice(5, 8))):
        _dump(folder / name, {b"filenames": [], b"batch_label": b"x", b"fine_labels": fine[rows].tolist(),
                              b"coarse_labels": (fine[rows] // 5).tolist(), b"data": _cifar_planes(images[rows])})
    _dump(folder / "meta", {b"fine_label_names": [f"class{k}".encode() for k in range(100)],
                            b"coarse_label_names": [f"super{k}".encode() for k in range(20)]})
    test = load_split("cifar100", "test", root=tmp_path)
    np.testing.assert_array_equal(test.images, images[5:])
    np.testing.assert_array_equal(test.labels, fine[5:])
    assert test.num_classes == 100 and test.class_names[7] == "class7"


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_cifar_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    _write_cifar10(tmp_path)
    planted = tmp_path / "pwned"
    _dump(tmp_path / "cifar-10-batches-py" / "data_batch_3", {b"data": _Payload(planted), b"labels": []})
    with pytest.raises(KdcamError, match=r"data_batch_3: not a readable CIFAR.*refusing to load"):
        load_split("cifar10", "train", root=tmp_path)
    assert not planted.exists()


def test_missing_cifar_files_say_what_to_put_where(tmp_path):
    with pytest.raises(KdcamError) as info:
        load_split("cifar100", "train", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-100-python") in message and "train, test, meta" in message and "--download" in message


def test_cifar_batch_with_the_wrong_shape_is_explained(tmp_path):
    _write_cifar10(tmp_path)
    _dump(tmp_path / "cifar-10-batches-py" / "test_batch", {b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4})
    with pytest.raises(KdcamError, match=r"test_batch: b'data' must be uint8 N x 3072"):
        load_split("cifar10", "test", root=tmp_path)


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gzipped", [False, True])
def test_mnist_from_idx_files(tmp_path, gzipped):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = RNG.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = RNG.integers(0, 10, 7).astype(np.uint8)
    files = {"t10k-images-idx3-ubyte": _idx(0x803, images), "t10k-labels-idx1-ubyte": _idx(0x801, labels)}
    for name, data in files.items():
        if gzipped:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)
    test = load_split("mnist", "test", root=tmp_path)
    assert test.images.shape == (7, 28, 28, 1) and test.channels == 1
    np.testing.assert_array_equal(test.images[..., 0], images)
    np.testing.assert_array_equal(test.labels, labels)
    assert test.mean == (0.1307,)
    with pytest.raises(KdcamError, match=r"train-images-idx3-ubyte not found.*MNIST/raw/; or pass --download"):
        load_split("mnist", "train", root=tmp_path)


def test_truncated_mnist_file_is_explained(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(_idx(0x803, np.zeros((3, 28, 28), np.uint8))[:-10])
    (raw / "t10k-labels-idx1-ubyte").write_bytes(_idx(0x801, np.zeros(3, np.uint8)))
    with pytest.raises(KdcamError, match="truncated"):
        load_split("mnist", "test", root=tmp_path)


def _arrays(n: int = 20) -> dict[str, np.ndarray]:
    return {
        "images": RNG.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
        "labels": np.arange(n) % 3,
        "masks": RNG.random((n, 16, 16)) > 0.5,
        "class_names": np.array(["cat", "dog", "fox"]),
    }


def test_npz_file_is_used_whole_unless_a_holdout_is_asked_for(tmp_path):
    arrays = _arrays(20)
    np.savez(tmp_path / "mine.npz", **arrays)
    for split in ("test", "train"):
        whole = load_split(f"npz:{tmp_path / 'mine.npz'}", split)
        np.testing.assert_array_equal(whole.images, arrays["images"])
    with pytest.raises(KdcamError, match="holdout=1.5 must be a fraction between 0 and 1"):
        load_split(f"npz:{tmp_path / 'mine.npz'}?holdout=1.5", "test")
    with pytest.raises(KdcamError, match="holdout splits a single file only"):
        load_split(f"npz:{tmp_path}?holdout=0.2", "test")


def test_npz_file_round_trip_with_a_fixed_holdout(tmp_path):
    arrays = _arrays(20)
    np.savez(tmp_path / "mine.npz", **arrays)
    train = load_split(f"npz:{tmp_path / 'mine.npz'}?holdout=0.2", "train")
    test = load_split(f"npz:{tmp_path / 'mine.npz'}?holdout=0.2", "test")
    assert (len(train), len(test)) == (16, 4) and train.class_names == ["cat", "dog", "fox"]
    both = np.concatenate([train.images, test.images])
    assert sorted(map(bytes, both)) == sorted(map(bytes, arrays["images"]))  # every image exactly once
    first = int(np.flatnonzero((arrays["images"] == train.images[0]).all(axis=(1, 2, 3)))[0])
    np.testing.assert_array_equal(train.masks[0], arrays["masks"][first])
    assert train.labels[0] == arrays["labels"][first]
    assert train.mean == test.mean  # one normalisation for both splits


def test_npz_directory_with_train_and_test_files(tmp_path):
    np.savez(tmp_path / "test.npz", images=np.ones((2, 8, 8), np.uint8), labels=np.array([1, 0]))
    test = load_split(f"npz:{tmp_path}", "test")  # test.npz alone is enough to analyse
    assert test.images.shape == (2, 8, 8, 1) and test.class_names == ["0", "1"] and test.masks is None
    with pytest.raises(KdcamError, match="train.npz not found .*and train.npz too to train"):
        load_split(f"npz:{tmp_path}", "train")
    np.savez(tmp_path / "train.npz", images=np.zeros((5, 8, 8), np.uint8), labels=np.array([0, 1, 1, 0, 1]))
    assert len(load_split(f"npz:{tmp_path}", "train")) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"images": None}, "no 'images' array (found: labels"),
        ({"images": np.zeros((4, 16, 16, 3), np.float32)}, "images must be uint8 (0-255), got dtype float32"),
        ({"images": np.zeros((4, 3, 16, 16), np.uint8)}, "images must be N x H x W x C with C = 1 or 3"),
        ({"labels": np.array([0, 1, 2, 3])}, "labels out of range: found label 3 but there are only 3 classes"),
        ({"labels": np.array([0, -1, 2, 1])}, "labels out of range: found negative label -1"),
        ({"labels": np.array([0, 1, 2])}, "4 images but 3 labels"),
        ({"labels": np.array([0.0, 1.0, 2.0, 1.0])}, "labels must be a 1-D integer array"),
        ({"masks": np.zeros((4, 8, 8), bool)}, "masks must have shape (4, 16, 16)"),
        ({"masks": np.full((4, 16, 16), 0.5)}, "masks must be boolean"),
        ({"class_names": np.array(["a", "a", "b"])}, "class names are not unique"),
    ],
)
def test_bad_npz_contents_are_explained(tmp_path, change, message):
    arrays = {**_arrays(4), **change}
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(KdcamError) as info:
        load_split(f"npz:{tmp_path / 'bad.npz'}", "train")
    assert str(tmp_path / "bad.npz") in str(info.value) and message in str(info.value)


def test_npz_with_pickled_objects_is_not_loaded(tmp_path):
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object), labels=np.array([0]))
    with pytest.raises(KdcamError, match="object arrays are never loaded"):
        load_split(f"npz:{tmp_path / 'obj.npz'}", "train")


def test_not_an_npz_file(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(KdcamError, match="junk.npz: not a readable .npz file"):
        load_split(f"npz:{tmp_path / 'junk.npz'}", "train")


def _save(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_imagefolder_round_trip_resizes_every_image(tmp_path):
    for k in range(5):
        _save(tmp_path / "train" / "red" / f"{k}.png", (40, 20), (255, 0, 0))
        _save(tmp_path / "train" / "blue" / f"{k}.jpg", (32, 32), (0, 0, 255))
    _save(tmp_path / "test" / "blue" / "a.png", (64, 48), (0, 0, 255))
    (tmp_path / "train" / "red" / "notes.txt").write_text("not an image")
    train = load_split(f"imagefolder:{tmp_path}?size=16", "train")
    test = load_split(f"imagefolder:{tmp_path}?size=16", "test")
    assert train.class_names == ["blue", "red"] and train.images.shape == (10, 16, 16, 3)
    assert train.labels.tolist() == [0] * 5 + [1] * 5
    assert (train.images[train.labels == 1][..., 0] > 240).all()  # red stays red after crop and resize
    assert test.labels.tolist() == [0] and test.images.shape == (1, 16, 16, 3)


def test_imagefolder_without_split_folders_holds_out_a_fifth(tmp_path):
    for k in range(10):
        _save(tmp_path / "a" / f"{k}.png", (8, 8), (k, k, k))
    train = load_split(f"imagefolder:{tmp_path}", "train")
    test = load_split(f"imagefolder:{tmp_path}", "test")
    assert (len(train), len(test)) == (8, 2) and train.images.shape[1:] == (32, 32, 3)


def test_imagefolder_errors(tmp_path):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(KdcamError, match="no images found under"):
        load_split(f"imagefolder:{tmp_path}", "train")
    _save(tmp_path / "ok" / "a.png", (8, 8), (1, 2, 3))
    (tmp_path / "ok" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(KdcamError, match="cannot read image .*broken.png"):
        load_split(f"imagefolder:{tmp_path}", "train")
    with pytest.raises(KdcamError, match="is not a directory"):
        load_split(f"imagefolder:{tmp_path / 'nowhere'}", "train")
