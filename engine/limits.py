"""Explicit limits on what a data file may claim, checked before anything is allocated.

A downloaded dataset can claim four billion images, a label of 2**62 (that many class
names) or a 20000x20000 picture; honouring the claim exhausts memory long before the
first error. Every reader compares what a file *claims* with these limits first and fails
with a message naming the file, the claim and the environment variable that raises the
limit. Defaults fit real datasets (ImageNet-1k has 1.3 million images) on one machine.

The same module refuses files that are not regular files (a directory, FIFO or device
named ``data.npz`` or ``model.pth``): a FIFO would block the reader forever.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import KdcamError


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable, default, and what it counts (for messages)."""

    env: str
    default: int
    unit: str
    meaning: str

    def value(self) -> int:
        """The limit in force: the environment variable when set to a positive integer, else the default."""
        raw = os.environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise KdcamError(f"{self.env}={raw!r} is not an integer") from None
        if value <= 0:
            raise KdcamError(f"{self.env}={raw!r} must be a positive integer")
        return value

    def check(self, source: str, claimed: int, what: str) -> None:
        """Refuse ``claimed`` (what ``source`` says it holds) when it exceeds the limit."""
        limit = self.value()
        if claimed > limit:
            raise KdcamError(
                f"{source}: {what} ({claimed:,} {self.unit}) exceeds kdcam's limit of {limit:,} {self.unit} "
                f"({self.meaning}); if the file is genuine, raise the limit with {self.env}=N"
            )


MAX_IMAGES = Limit("KDCAM_MAX_IMAGES", 5_000_000, "images", "images in one dataset split or file")
MAX_DATA_BYTES = Limit(
    "KDCAM_MAX_DATA_BYTES", 16 * 2**30, "bytes", "decoded size of one dataset array or file"
)
MAX_CLASSES = Limit("KDCAM_MAX_CLASSES", 100_000, "classes", "classes in one dataset")
MAX_IMAGE_PIXELS = Limit(
    "KDCAM_MAX_IMAGE_PIXELS", 40_000_000, "pixels", "pixels of one image file in an image folder"
)

ALL_LIMITS = (MAX_IMAGES, MAX_DATA_BYTES, MAX_CLASSES, MAX_IMAGE_PIXELS)


def describe_file(mode: int) -> str:
    """What kind of thing a non-regular path is, in words a user recognises."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def regular_file(path: Path, kind: str) -> os.stat_result:
    """``stat`` ``path`` (following symlinks) and refuse anything but a regular file.

    Messages name ``path`` as the user gave it, never a symlink's target. ``kind`` says what
    the file should have been (``"PyTorch checkpoint"``), so the refusal says why it matters.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise KdcamError(f"{path}: a symbolic link whose target does not exist") from None
        raise KdcamError(f"{path}: no such file") from None
    except OSError as exc:
        raise KdcamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise KdcamError(f"{path}: is {describe_file(info.st_mode)}, not a {kind} file; kdcam reads only regular files")
    return info


def open_regular(path: Path, kind: str) -> BinaryIO:
    """Open ``path`` for reading without ever blocking on a FIFO, and only if it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once; ``fstat`` on the opened descriptor
    then checks the very file that will be read (no race with a swap after ``stat``).
    """
    regular_file(path, kind)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KdcamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise KdcamError(f"{path}: is {describe_file(info.st_mode)}, not a {kind} file; kdcam reads only regular files")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
