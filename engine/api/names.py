"""One validator for every id and name that becomes a file or directory name. Torch-free.

Run ids, analysis ids, checkpoint names and export names are joined onto workspace paths;
a value like ``../../other/runs/ID``, ``/abs/path``, ``.hidden``, ``" "`` or ``a:b*?<>|``
would leave the workspace, hide a file, or be unportable. Everything is checked here, so
one rule holds everywhere: a letter or digit first, then letters, digits and ``. _ + -``.
"""

from __future__ import annotations

import re

from engine.errors import KdcamError

_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

#: the longest value accepted per kind (checkpoint names get ``-last``/``-N`` suffixes and
#: prefix run ids, so they are kept shorter than the file-system limit of 255 bytes)
MAX_LENGTH = {"checkpoint name": 120}
DEFAULT_MAX_LENGTH = 160


def check_id(kind: str, value: object) -> str:
    """``value`` if it is a safe single path component for ``kind``; else a KdcamError saying why."""
    limit = MAX_LENGTH.get(kind, DEFAULT_MAX_LENGTH)
    if not isinstance(value, str) or not value:
        problem = "it is empty" if value == "" else f"it is a {type(value).__name__}, not text"
    elif len(value) > limit:
        problem = f"it has {len(value)} characters (at most {limit})"
    elif value in (".", "..") or "/" in value or "\\" in value:
        problem = "it is a path, not a name"
    elif value.startswith("."):
        problem = "it starts with a dot"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "it contains control characters"
    elif not _PATTERN.fullmatch(value):
        bad = "".join(dict.fromkeys(c for c in value if not re.fullmatch(r"[A-Za-z0-9._+-]", c)))
        problem = f"it contains {bad!r}" if bad else "it must start with a letter or digit"
    else:
        return value
    raise KdcamError(f"invalid {kind} {value!r}: {problem}; use letters, digits and . _ + - "
                     f"(starting with a letter or digit, at most {limit} characters)")


def is_valid_id(kind: str, value: object) -> bool:
    """Whether ``value`` passes ``check_id`` (for ids read from files, skipped rather than reported)."""
    try:
        check_id(kind, value)
    except KdcamError:
        return False
    return True
