"""Reader for dlib's binary serialisation format (``dlib/serialize.h``, ``dlib/dnn/tensor.h``).

dlib writes values back to back with no type tags, so a reader must know the schema; this module reads
the primitives and the DNN tensors, and ``stages.metrics.dlib_resnet`` walks the face-recognition net.

* integers (``pack_int``): one control byte -- low 4 bits = number of magnitude bytes that follow
  (little endian), bit 7 = negative -- then those bytes;
* bool: one byte, ``'1'`` or ``'0'`` (dlib writes a character);
* float/double (``float_details``): int64 mantissa then int16 exponent, value = mantissa * 2**exponent,
  with exponents 32000/32001/32002 for +inf/-inf/nan;
* std::string: its length as an integer, then the bytes;
* resizable_tensor: version 2, num_samples, k, nr, nc, then little-endian IEEE float32 values;
* alias_tensor: version 1, num_samples, k, nr, nc (a view, no data).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stages.errors import DataError

_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002


class DlibReader:
    """Cursor over the bytes of one dlib-serialised file; every read error names the file and offset."""

    def __init__(self, data: bytes, source: str | Path, expected: str = "file", fix: str = ""):
        self.data = memoryview(data)
        self.source = str(source)
        self.expected = expected  # what the file should be, e.g. "dlib face-recognition ResNet"
        self.fix = fix
        self.pos = 0

    @classmethod
    def open(cls, path: str | Path, expected: str = "file", fix: str = "") -> "DlibReader":
        try:
            return cls(Path(path).read_bytes(), path, expected, fix)
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc}") from exc

    def fail(self, what: str) -> DataError:
        fix = f"; {self.fix}" if self.fix else ""
        return DataError(f"{self.source} is not a {self.expected} in dlib's binary serialisation format: {what} "
                         f"(at byte {self.pos} of {len(self.data)}){fix}")

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file ends while reading {n} bytes (truncated?)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def boolean(self) -> bool:
        byte = self._take(1)[0]
        if byte not in (ord("0"), ord("1")):
            raise self.fail(f"bad bool byte 0x{byte:02x}")
        return byte == ord("1")

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def string(self, max_len: int = 1 << 16) -> str:
        size = self.integer()
        if not 0 <= size <= max_len:
            raise self.fail(f"implausible string length {size}")
        try:
            return bytes(self._take(size)).decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail("non-ASCII layer name") from exc

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        name = self.string()
        if name not in allowed:
            self.pos = start
            raise self.fail(f"expected {' or '.join(repr(a) for a in allowed)}, found {name!r}")
        return name

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        version = self.integer()
        if version not in allowed:
            raise self.fail(f"unsupported {what} version {version} (expected {allowed})")
        return version

    def _dims(self) -> tuple[int, int, int, int]:
        dims = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dimension {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        """A resizable_tensor as float32 ``[num_samples, k, nr, nc]``."""
        self.expect_version((2,), "resizable_tensor")
        dims = self._dims()
        count = int(np.prod(dims))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.expect_version((1,), "alias_tensor")
        return self._dims()
