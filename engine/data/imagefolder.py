"""``imagefolder:PATH`` datasets: one subfolder of images per class.

PATH holds either ``train/`` and ``test/`` (each with the class subfolders) or the class
subfolders directly, in which case a fixed 80/20 holdout makes the test split. Class names
are the subfolder names, sorted; a class's index is its position in that order.

Images of differing sizes are made uniform without distortion: each is converted to RGB,
centre-cropped to a square on its shorter side and resized to ``size`` x ``size`` (option
``?size=N``, default 32) with bilinear filtering. ImageNet models expect torchvision's
evaluation preprocessing instead, resize the shorter side then centre-crop:
``?resize=256&size=224`` scales each image so its shorter side is 256 pixels (bilinear)
and keeps the centre 224 x 224. The spec, and so these options, is recorded in the
metadata of a checkpoint imported or trained with it (``dataset``, ``input_size``,
``resize``, ``mean``/``std``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from engine.data import ImageSet
from engine.data.arrays import checked_imageset, holdout_split
from engine.errors import KdcamError
from engine.limits import MAX_DATA_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGES

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_SIZE = 32


def load_imagefolder(path: Path, split: str, size: int = DEFAULT_SIZE, resize: int | None = None) -> ImageSet:
    """``split`` of the folder at ``path``, every image made ``size`` x ``size`` (see the module doc)."""
    if resize is not None and resize < size:
        raise KdcamError(f"imagefolder: ?resize={resize} must be at least ?size={size} (the centre crop)")
    if not path.is_dir():
        raise KdcamError(f"imagefolder: {path} is not a directory (expected {path}/<class name>/<images>)")
    has_splits = (path / "train").is_dir() and (path / "test").is_dir()
    class_names = _class_names(path / "train" if has_splits else path)
    files, labels = _listing(path / split if has_splits else path, class_names)
    if not has_splits:
        chosen = holdout_split(len(files), split)
        files, labels = [files[k] for k in chosen], labels[chosen]
    MAX_IMAGES.check(str(path), len(files), f"the {split} split's image count")
    MAX_IMAGE_PIXELS.check(str(path), size * size, f"?size={size} (pixels per resized image)")
    MAX_DATA_BYTES.check(str(path), len(files) * size * size * 3, f"{len(files)} images of {size}x{size}x3 bytes")
    images = np.stack([_read_image(f, size, resize) for f in files])
    return checked_imageset(str(path), split, images, labels, class_names)


def _class_names(folder: Path) -> list[str]:
    names = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".") and _images_in(d))
    if not names:
        raise KdcamError(
            f"imagefolder: no images found under {folder} (expected {folder}/<class name>/*.png|jpg|...; "
            f"image types: {', '.join(sorted(EXTENSIONS))})"
        )
    return names


def _listing(folder: Path, class_names: list[str]) -> tuple[list[Path], np.ndarray]:
    if not folder.is_dir():
        raise KdcamError(f"imagefolder: {folder} is missing")
    extra = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name not in class_names and _images_in(d))
    if extra:
        raise KdcamError(f"imagefolder: {folder} has classes the train split lacks: {', '.join(extra)}")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        found = _images_in(folder / name) if (folder / name).is_dir() else []
        files += found
        labels += [index] * len(found)
    if not files:
        raise KdcamError(f"imagefolder: no images found under {folder}")
    return files, np.asarray(labels, dtype=np.int64)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())


def _read_image(path: Path, size: int, resize: int | None = None) -> np.ndarray:
    """Decode one image, after checking the pixel count its header claims (a 20000x20000 PNG
    of a few kilobytes would otherwise decode to over a gigabyte)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # kdcam's own limit below replaces PIL's warning; PIL's hard limit still raises
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                MAX_IMAGE_PIXELS.check(f"imagefolder: {path}", width * height, f"a {width}x{height} image")
                image = opened.convert("RGB")
    except Image.DecompressionBombError:
        raise KdcamError(
            f"imagefolder: {path}: the image claims more pixels than PIL will decode (a decompression bomb?); "
            f"kdcam's limit is {MAX_IMAGE_PIXELS.value():,} pixels per image ({MAX_IMAGE_PIXELS.env})"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise KdcamError(f"imagefolder: cannot read image {path} ({exc})") from None
    width, height = image.size
    if resize is not None:
        scale = resize / min(width, height)
        scaled = (max(size, round(width * scale)), max(size, round(height * scale)))
        MAX_IMAGE_PIXELS.check(f"imagefolder: {path}", scaled[0] * scaled[1], f"?resize={resize} ({scaled[0]}x"
                               f"{scaled[1]} pixels)")
        image = image.resize(scaled, Image.Resampling.BILINEAR)
        left, top = (scaled[0] - size) // 2, (scaled[1] - size) // 2
        return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
