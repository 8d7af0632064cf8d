"""Typed reading of untrusted JSON: every field is checked, every error names the file and the field.

Workspace files come from strangers and from other versions of kdcam. A reader asks a
``Fields`` view for each value with the type it needs; a wrong type, a value out of range
or a missing key raises one ``KdcamError`` saying which file, which field, what was found
and what was expected, so no front-end ever sees a ``KeyError`` or a ``TypeError``.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeVar

from engine.api.names import is_valid_id
from engine.errors import KdcamError

#: what a name read from a file must look like
NAME_RULE = "a name of letters, digits and . _ + - starting with a letter or digit"

T = TypeVar("T")


class _Missing(Enum):
    """The type of ``MISSING``: a required field has no default."""

    MISSING = 0


MISSING: Final = _Missing.MISSING

#: JSON files kdcam writes are small; a larger one is not ours (or is an attack on memory)
MAX_JSON_BYTES = int(os.environ.get("KDCAM_MAX_JSON_BYTES", 64 * 1024 * 1024))


def describe(value: object) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def read_json_file(path: Path, max_bytes: int = MAX_JSON_BYTES, follow_symlinks: bool = True) -> object:
    """Parse a JSON file that must exist; refuse non-files (a symbolic link too, unless followed),
    files over ``max_bytes`` and bad JSON clearly."""
    try:
        info = path.stat(follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        raise KdcamError(f"{path}: missing") from None
    except OSError as exc:
        raise KdcamError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise KdcamError(f"{path}: not a regular file")
    if info.st_size > max_bytes:
        raise KdcamError(f"{path}: {info.st_size} bytes, more than the {max_bytes} a kdcam JSON file may have")
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise KdcamError(f"{path}: cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:
        raise KdcamError(f"{path}: not valid JSON ({exc})") from None


class Fields:
    """A JSON object read field by field; ``where`` is the file and the path inside it."""

    def __init__(self, data: object, where: str):
        if not isinstance(data, dict):
            raise KdcamError(f"{where}: expected a JSON object, found {describe(data)}")
        self.data: dict[str, Any] = data
        self.where = where

    @classmethod
    def of_file(cls, path: Path) -> Fields:
        return cls(read_json_file(path), str(path))

    def error(self, key: str, expected: str, value: object = MISSING) -> KdcamError:
        found = "missing" if value is MISSING else f"found {describe(value)}"
        return KdcamError(f"{self.where}: field {key!r}: expected {expected}, {found}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _value(self, key: str, expected: str) -> object:
        if key not in self.data:
            raise self.error(key, expected)
        return self.data[key]

    def obj(self, key: str) -> Fields:
        """A required nested object."""
        return Fields(self._value(key, "an object"), f"{self.where}.{key}")

    def opt_obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def text(self, key: str, default: str | _Missing = MISSING, choices: Sequence[str] | None = None) -> str:
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self._value(key, "a string")
        if not isinstance(value, str):
            raise self.error(key, "a string", value)
        if choices is not None and value not in choices:
            raise self.error(key, f"one of {', '.join(choices)}", value)
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def name(self, key: str, default: str | _Missing = MISSING) -> str:
        """A model, method or tap name: held to the one name rule (``engine.api.names``), because every
        front-end shows it and brackets or control characters there would be read as markup or
        terminal escapes. An absent key gives ``default``, which is not checked."""
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self.text(key)
        if not is_valid_id("name", value):
            raise self.error(key, NAME_RULE, value)
        return value

    def opt_name(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.name(key)

    def key_names(self) -> list[str]:
        """This object's keys, each a name under the same rule (e.g. a map from model to tap)."""
        for key in self.data:
            if not is_valid_id("name", key):
                raise KdcamError(f"{self.where}: key {key!r}: expected {NAME_RULE}")
        return list(self.data)

    def integer(self, key: str, default: int | _Missing = MISSING, minimum: int | None = None,
                maximum: int | None = None) -> int:
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self._value(key, "an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "an integer", value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(key, f"an integer in [{minimum}, {maximum}]", value)
        return value

    def opt_integer(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
        return None if self.data.get(key) is None else self.integer(key, minimum=minimum, maximum=maximum)

    def number(self, key: str, default: float | _Missing = MISSING, minimum: float | None = None,
               maximum: float | None = None) -> float:
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self._value(key, "a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, "a number", value)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(key, "a finite number", value)
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise self.error(key, f"a number in [{minimum}, {maximum}]", value)
        return number

    def opt_number(self, key: str, minimum: float | None = None, maximum: float | None = None) -> float | None:
        return None if self.data.get(key) is None else self.number(key, minimum=minimum, maximum=maximum)

    def flag(self, key: str, default: bool | _Missing = MISSING) -> bool:
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self._value(key, "true or false")
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value

    def opt_flag(self, key: str) -> bool | None:
        return None if self.data.get(key) is None else self.flag(key)

    def array(self, key: str, default: list[Any] | _Missing = MISSING, max_len: int | None = None) -> list[Any]:
        if key not in self.data and not isinstance(default, _Missing):
            return default
        value = self._value(key, "a list")
        if not isinstance(value, list):
            raise self.error(key, "a list", value)
        if max_len is not None and len(value) > max_len:
            raise self.error(key, f"a list of at most {max_len} items", f"{len(value)} items")
        return value

    def list_of(self, key: str, kind: type[T], default: list[T] | _Missing = MISSING,
                max_len: int | None = None) -> list[T]:
        """A list whose items all have one plain JSON type (str, int or float; bools are not numbers)."""
        if key not in self.data and not isinstance(default, _Missing):
            return default
        out: list[T] = []
        for i, item in enumerate(self.array(key, max_len=max_len)):
            if kind is float and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            bad = not isinstance(item, kind) or (kind is not bool and isinstance(item, bool))
            if bad or (isinstance(item, float) and not math.isfinite(item)):
                raise self.error(f"{key}[{i}]", f"a {kind.__name__}", item)
            out.append(item)
        return out

    def objects(self, key: str, default: list[Fields] | _Missing = MISSING) -> list[Fields]:
        """A list of JSON objects, each as ``Fields``."""
        if key not in self.data and not isinstance(default, _Missing):
            return default
        return [Fields(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(self.array(key))]

    def mapping(self, key: str, default: dict[str, Fields] | _Missing = MISSING) -> dict[str, Fields]:
        """An object whose values are objects: name -> ``Fields``."""
        if key not in self.data and not isinstance(default, _Missing):
            return default
        return self.obj(key).children()

    def children(self) -> dict[str, Fields]:
        """This object's values, each of which must itself be an object."""
        return {name: Fields(item, f"{self.where}.{name}") for name, item in self.data.items()}

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.data.items())
