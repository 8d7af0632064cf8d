"""Inert stand-ins for the numpy globals a pickle names, so no numpy code runs on file data.

A pickled numpy array or scalar is a recipe: ``numpy.dtype(code)`` then BUILD with a state
tuple, ``_reconstruct(ndarray, ...)`` then BUILD with shape, dtype and raw bytes, or
``scalar(dtype, raw bytes)``. Letting numpy follow the recipe is unsafe even when only
these names are allowed: the dtype's state carries flags, and a dtype that says "object"
while its flags say "holds no objects" makes numpy read pointers from attacker bytes
(a segfault, then code execution).

Here the unpickler receives look-alikes instead. They only *record* their arguments and
state. A dtype must be a plain number type (bool, int, uint, float); its flags are never
used, numpy rebuilds it from its type code alone. Arrays are made with ``np.frombuffer``
from the recorded bytes once their size matches the claimed shape; scalars become plain
Python numbers. Anything else (object, string, structured or sub-array dtypes) raises
``NumpyRefused`` before numpy sees it.

The CIFAR reader uses these through its own ``pickle.Unpickler.find_class``; the checkpoint
reader registers them with torch's ``weights_only`` unpickler under numpy's names.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_NUMBER_CODE = re.compile(r"[<>|=]?(b1|i1|i2|i4|i8|u1|u2|u4|u8|f2|f4|f8)")
_BYTE_ORDERS = ("<", ">", "|", "=")


class NumpyRefused(Exception):
    """A pickle asked for a numpy object kdcam does not rebuild; the message says which."""


def _text(value: Any, what: str) -> str:
    """A pickle's str, or a Python-2 byte string read with ``encoding="bytes"``."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise NumpyRefused(f"{what} is a {type(value).__name__}, not a string")


class InertDType:
    """Stands in for ``numpy.dtype``: keeps the type code and byte order, nothing else."""

    code: str | None = None
    byteorder: str = "|"

    def __init__(self, code: Any = None, align: Any = False, copy: Any = True) -> None:
        text = _text(code, "a numpy dtype code")
        if not _NUMBER_CODE.fullmatch(text):
            raise NumpyRefused(
                f"a numpy dtype {text!r}; only bool, integer and float numbers are read "
                "(object, string and structured dtypes can carry code or pointers)"
            )
        self.code = text.lstrip("<>|=")
        if text[0] in _BYTE_ORDERS:
            self.byteorder = text[0]

    def __setstate__(self, state: Any) -> None:
        """numpy's dtype state is ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])``.

        Only the byte order is kept; the rest must say "a plain number" or the file is refused.
        """
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise NumpyRefused("a numpy dtype with an unknown state layout")
        order = _text(state[1], "a numpy byte order")
        if order not in _BYTE_ORDERS:
            raise NumpyRefused(f"a numpy dtype with byte order {order!r}")
        if any(part is not None for part in state[2:5]) or (len(state) == 9 and state[8]):
            raise NumpyRefused("a structured, sub-array or annotated numpy dtype (a forged dtype)")
        if state[5:8] != (-1, -1, 0):
            # a plain number's pickled size, alignment and flags are always -1, -1, 0; flags
            # that claim (or deny) Python objects inside are how a forged dtype corrupts memory
            raise NumpyRefused(f"a numpy dtype whose pickled sizes and flags {state[5:8]} are not a plain number's "
                               "(a forged dtype)")
        self.byteorder = order

    def to_numpy(self) -> np.dtype:
        """The real dtype, built from the type code (never from the pickled flags)."""
        if self.code is None:
            raise NumpyRefused("a numpy dtype that was never given a type code")
        order = self.byteorder if self.byteorder in ("<", ">") and self.code[1] != "1" else "="
        return np.dtype(order + self.code)


class InertArray:
    """Stands in for ``numpy.ndarray``: records shape, dtype, order and raw bytes."""

    shape: Any = None
    dtype: Any = None
    fortran: Any = False
    data: Any = None

    def __setstate__(self, state: Any) -> None:
        """numpy's array state is ``(version, shape, dtype, is_fortran, raw bytes)`` (older: without version)."""
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise NumpyRefused("a numpy array with an unknown state layout")
        self.shape, self.dtype, self.fortran, self.data = state

    def to_numpy(self) -> np.ndarray:
        """The array, read-only, made by ``np.frombuffer`` once the byte count matches the claim."""
        if not isinstance(self.dtype, InertDType):
            raise NumpyRefused("a numpy array without a plain number dtype")
        if not isinstance(self.data, (bytes, bytearray)):
            raise NumpyRefused(f"a numpy array whose data is a {type(self.data).__name__}, not raw bytes")
        shape = self.shape
        if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
            raise NumpyRefused(f"a numpy array with an invalid shape {shape!r}")
        if not isinstance(self.fortran, bool):
            raise NumpyRefused("a numpy array with an invalid memory-order flag")
        dtype = self.dtype.to_numpy()
        count = math.prod(shape)
        if count * dtype.itemsize != len(self.data):
            raise NumpyRefused(
                f"a numpy array claiming shape {shape} of {dtype} ({count * dtype.itemsize:,} bytes) "
                f"but holding {len(self.data):,} bytes"
            )
        flat = np.frombuffer(self.data, dtype=dtype, count=count)
        return flat.reshape(shape, order="F" if self.fortran else "C")


def inert_reconstruct(subtype: Any, shape: Any = None, typecode: Any = None) -> InertArray:
    """Stands in for ``numpy.core.multiarray._reconstruct``: an empty record BUILD fills."""
    if subtype is not InertArray:
        raise NumpyRefused(f"a numpy array of subclass {type(subtype).__name__}")
    return InertArray()


def inert_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> InertArray:
    """Stands in for ``numpy.core.numeric._frombuffer`` (pickle protocol 5 arrays)."""
    array = InertArray()
    array.shape, array.dtype, array.data = shape, dtype, buffer
    array.fortran = _text(order, "a numpy memory order") == "F"
    return array


def inert_scalar(dtype: Any, data: Any = None) -> bool | int | float:
    """Stands in for ``numpy.core.multiarray.scalar``: a plain Python number, never a numpy object."""
    if not isinstance(dtype, InertDType):
        raise NumpyRefused("a numpy scalar without a plain number dtype")
    real = dtype.to_numpy()
    if not isinstance(data, bytes) or len(data) != real.itemsize:
        raise NumpyRefused(f"a numpy {real} scalar whose data is not {real.itemsize} raw bytes")
    value: bool | int | float = np.frombuffer(data, dtype=real)[0].item()
    return value


def latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """Stands in for ``_codecs.encode``, which protocol-2 pickles use to spell bytes; only that use."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise NumpyRefused("a call to _codecs.encode other than the latin-1 spelling of bytes")
    return text.encode("latin-1")


#: numpy's pickle names (both the ``numpy.core`` and the numpy 2 ``numpy._core`` spellings) -> stand-ins
STAND_INS: dict[str, Any] = {
    "numpy.dtype": InertDType,
    "numpy.ndarray": InertArray,
    **{f"numpy.{core}.multiarray._reconstruct": inert_reconstruct for core in ("core", "_core")},
    **{f"numpy.{core}.multiarray.scalar": inert_scalar for core in ("core", "_core")},
    **{f"numpy.{core}.numeric._frombuffer": inert_frombuffer for core in ("core", "_core")},
}
