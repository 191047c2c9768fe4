"""Reader for dlib's binary serialisation format (the ``.dat`` model files).

dlib writes integers as a control byte (low nibble: byte count, bit 0x80: negative)
followed by that many little-endian bytes; floats as an (int64 mantissa, int16 exponent)
pair of such integers; matrices as ``-rows, -cols`` then their elements; DNN tensors as a
version, four dimensions and raw little-endian float32 data. This module reads those
primitives; the network and shape-predictor parsers build on it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from openlfr.errors import ModelError

# dlib's float_details marks special values with these exponents.
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan, 32003: math.nan}


class DlibReader:
    """Sequential reader over the bytes of a dlib-serialised object."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.name = name

    @classmethod
    def open(cls, path: str | Path) -> DlibReader:
        """Read a whole ``.dat`` file into memory (the bundled ones are at most 100 MB)."""
        path = Path(path)
        try:
            return cls(path.read_bytes(), str(path))
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc.strerror}") from exc

    def _fail(self, what: str) -> ModelError:
        return ModelError(f"{self.name}: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        """The next ``n`` raw bytes."""
        if self.pos + n > len(self.data):
            raise self._fail(f"unexpected end of file reading {n} bytes")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def read_int(self) -> int:
        """A dlib packed integer (any width, signed or not)."""
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self._fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        """A dlib float/double (mantissa and exponent, exact)."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self._fail("old ASCII float format is not supported")
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def read_bool(self) -> bool:
        """A dlib bool (one ASCII byte, ``'0'`` or ``'1'``)."""
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            raise self._fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def read_str(self) -> str:
        """A dlib std::string (length, then bytes)."""
        n = self.read_int()
        return self.take(n).decode("latin-1")

    def read_matrix(self) -> np.ndarray:
        """A ``dlib::matrix`` of floats (float64 array of its shape)."""
        rows, cols = self.read_int(), self.read_int()
        if rows < 0 or cols < 0:  # current format stores negated sizes
            rows, cols = -rows, -cols
        flat = [self.read_float() for _ in range(rows * cols)]
        return np.asarray(flat, dtype=np.float64).reshape(rows, cols)

    def read_tensor(self) -> np.ndarray:
        """A DNN ``tensor``: version 2, (n, k, nr, nc), raw little-endian float32."""
        version = self.read_int()
        if version != 2:
            raise self._fail(f"unsupported tensor version {version}")
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def expect_str(self, *allowed: str) -> str:
        """Read a version string and check it is one of ``allowed``."""
        s = self.read_str()
        if allowed and s not in allowed:
            raise self._fail(f"expected one of {allowed}, found {s!r}")
        return s
