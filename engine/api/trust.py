"""Which model-definition sources the user has trusted to run (like direnv's ``allow``).

A checkpoint imported with ``--model-def`` carries Python code, and workspaces are copied
between people and machines. kdcam runs that code only when the user has trusted that
exact content: the record is a sha256, kept in the user's config directory (never in a
workspace, which a stranger may have written), so trusting one file's content never
trusts an edited copy of it. Torch-free: the CLI's ``trust`` command and the TUI read it.

The file (``trusted.json``) maps each trusted sha256 to where it was trusted from and when:
``{"version": 1, "trusted": {"<sha256>": {"source": "...", "trusted_at": "..."}}}``.
Writes are atomic and serialised by a lock file, so two ``trust`` commands never lose one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from engine.api import atomic
from engine.errors import KdcamError

TRUST_FILE = "trusted.json"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
#: a trust file larger than this is not one kdcam wrote (about 10^5 entries)
MAX_TRUST_BYTES = 32 * 1024 * 1024
_MAX_SOURCE_CHARS = 4096


def config_dir() -> Path:
    """``$KDCAM_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/kdcam``, else ``~/.config/kdcam``."""
    explicit = os.environ.get("KDCAM_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "kdcam"


def trust_path() -> Path:
    return config_dir() / TRUST_FILE


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and SHA256_PATTERN.fullmatch(text) is not None


def trusted_digests() -> dict[str, dict[str, str]]:
    """Every trusted sha256 with its record; entries that are not well-formed are ignored."""
    path = trust_path()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise KdcamError(f"cannot read the trust file {path}: {exc.strerror}") from None
    if size > MAX_TRUST_BYTES:
        raise KdcamError(f"the trust file {path} is {size} bytes, more than kdcam writes; remove or fix it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KdcamError(f"the trust file {path} is not valid JSON ({exc}); remove or fix it") from None
    entries = data.get("trusted") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {
        digest: {k: str(v)[:_MAX_SOURCE_CHARS] for k, v in record.items() if isinstance(v, str)}
        for digest, record in entries.items()
        if is_sha256(digest) and isinstance(record, dict)
    }


def is_trusted(digest: str) -> bool:
    return is_sha256(digest) and digest in trusted_digests()


def trust(digest: str, source: str) -> None:
    """Record ``digest`` as trusted (``source`` says where the content came from, for people)."""
    if not is_sha256(digest):
        raise KdcamError(f"not a sha256 digest: {digest!r}")
    with _locked():
        entries = trusted_digests()
        entries[digest] = {"source": source[:_MAX_SOURCE_CHARS],
                           "trusted_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
        _write(entries)


def revoke(digest: str) -> bool:
    """Forget ``digest``; False when it was not trusted."""
    with _locked():
        entries = trusted_digests()
        if entries.pop(digest, None) is None:
            return False
        _write(entries)
        return True


def _write(entries: dict[str, dict[str, str]]) -> None:
    path = trust_path()
    try:
        atomic.write_json(path, {"version": 1, "trusted": entries})
    except OSError as exc:
        raise KdcamError(f"cannot write the trust file {path}: {exc.strerror}") from None


@contextmanager
def _locked() -> Iterator[None]:
    """An exclusive lock on ``trusted.json.lock`` for one read-modify-write."""
    directory = config_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / f"{TRUST_FILE}.lock", "a")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise KdcamError(f"cannot use the kdcam config directory {directory}: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield

