"""Atomic file writes: a temporary file in the same directory, flushed, fsynced, renamed.

Every artifact that matters (checkpoints, metadata, run state, results) goes through
here, so a crash or a kill leaves either the old file or the new one, never half of one.

Temporaries are named ``.NAME.kdtmp-<pid>-<host>-<random>.tmp`` (``kdold`` for an old
directory set aside by the two-rename fallback of :func:`replace_directory`): the writer's
pid and a short host id in the name let :mod:`engine.api.sweep` remove what a killed process left
behind, and only that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: what a kdcam temporary looks like: the target's name, kind, writer pid and host id
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>kdtmp|kdold)-(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{8})-"
                       r"[a-z0-9_]{6,16}\.tmp$")


def host_id() -> str:
    """Eight hex digits naming this machine: a pid means something only on the host that wrote it."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_prefix(name: str, kind: str = "kdtmp") -> str:
    """The prefix ``mkstemp``/``mkdtemp`` complete with a random part and ``.tmp``."""
    return f".{name}.{kind}-{os.getpid()}-{host_id()}-"


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path``; on clean exit fsync and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read from /proc where possible: ``os.umask`` can only read it by
    changing it, which would briefly give files created by another thread mode 0666."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: permissions of a normally created file/directory (the umask honoured): mkstemp's 0600 and
#: libraries that recreate the file (safetensors) would otherwise hide results from collaborators
FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically produce ``path`` with a library that insists on writing to a filename itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            writer(Path(tmp))
        except Exception as exc:
            _raise_if_disk_full(path, exc)
            raise
        with open(tmp, "rb+") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # after the writer: some delete and recreate the file
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _raise_if_disk_full(path: Path, exc: Exception) -> None:
    """Libraries report a full disk in their own words (torch: "file write failed"); say it as
    the OSError it is, so callers and users see "No space left on device" and the file."""
    if isinstance(exc, OSError):
        return
    try:
        full = os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return
    if full:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc


def make_directory_temp(path: Path, kind: str = "kdtmp") -> Path:
    """An empty temporary directory beside ``path`` (same file system, so it can be renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name, kind), suffix=".tmp", dir=path.parent))
    tmp.chmod(DIR_MODE)
    return tmp


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and rename it into place only on success.

    The destination must not exist (callers decide about overwriting and then use
    :func:`staging_directory` and :func:`replace_directory`).
    """
    path = Path(path)
    with staging_directory(path) as tmp:
        yield tmp
        os.replace(tmp, path)


@contextmanager
def staging_directory(path: str | Path) -> Iterator[Path]:
    """A temporary directory beside ``path``, removed when the block fails or once it has been
    renamed away (whatever is left at its name afterwards, e.g. an exchanged old copy, is removed)."""
    tmp = make_directory_temp(Path(path))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# renameat2(2) flag and syscall numbers (Linux); the libc wrapper is used when glibc has it
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "ppc64le": 357, "s390x": 347, "riscv64": 276}


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths atomically (``renameat2(RENAME_EXCHANGE)``); False where the
    system or file system cannot, so the caller falls back. Any other failure raises."""
    if platform.system() != "Linux":
        return False
    libc = _libc()
    if libc is None:
        return False
    args = (_AT_FDCWD, os.fsencode(os.fspath(a)), _AT_FDCWD, os.fsencode(os.fspath(b)), _RENAME_EXCHANGE)
    if hasattr(libc, "renameat2"):
        result = libc.renameat2(*(ctypes.c_int(args[0]), ctypes.c_char_p(args[1]), ctypes.c_int(args[2]),
                                  ctypes.c_char_p(args[3]), ctypes.c_uint(args[4])))
    elif platform.machine() in _SYS_RENAMEAT2:
        result = libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[platform.machine()]), ctypes.c_int(args[0]),
                              ctypes.c_char_p(args[1]), ctypes.c_int(args[2]), ctypes.c_char_p(args[3]),
                              ctypes.c_uint(args[4]))
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def replace_directory(new: Path, dest: Path) -> None:
    """Put the complete directory ``new`` at ``dest``, replacing the one there, so that at every
    instant ``dest`` holds either the old or the new complete directory.

    Where ``renameat2(RENAME_EXCHANGE)`` works the two are swapped in one step and the old one
    ends up at ``new`` (the caller's staging name, removed by :func:`staging_directory` or,
    after a kill, by the sweep). Elsewhere the old one is first renamed to a ``kdold``
    temporary; a kill between the two renames leaves ``dest`` missing for a moment, and
    :func:`engine.api.sweep.sweep_directory` renames the old one back when it next opens the folder.
    """
    if exchange(new, dest):
        return
    old = make_directory_temp(dest, "kdold")
    os.replace(dest, old)  # onto the empty directory just made
    try:
        os.rename(new, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
