"""TFRecord files and ``tf.train.Example`` messages without TensorFlow (reader with CRC checks, and a writer).

A TFRecord file is a sequence of records::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

with ``masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32) and CRC-32C (Castagnoli). A record
is a serialised ``tf.train.Example``: ``Example{1: Features{1: map<string, Feature>}}`` with
``Feature{1: BytesList{1: repeated bytes} | 2: FloatList{1: packed float} | 3: Int64List{1: packed int64}}``.
Only the protobuf wire format is needed to read and write those, so it is decoded here directly.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import crc32c as _crc32c
import numpy as np

from stages.errors import DataError

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: str | Path, *, check_crc: bool = True) -> Iterator[bytes]:
    """Yield the records of ``path``; a bad CRC or a truncated record raises DataError naming the file and offset."""
    path = Path(path)
    with open(path, "rb") as fh:
        offset = 0
        while True:
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DataError(f"{path}: truncated record header at byte {offset}; delete the file and fetch it again.")
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if check_crc and masked_crc(length_bytes) != length_crc:
                raise DataError(f"{path}: CRC mismatch in the length of the record at byte {offset}: the file is "
                                "corrupt; delete it and fetch it again.")
            (length,) = struct.unpack("<Q", length_bytes)
            data = fh.read(length)
            footer = fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataError(f"{path}: truncated record at byte {offset}; delete the file and fetch it again.")
            if check_crc and masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise DataError(f"{path}: CRC mismatch in the data of the record at byte {offset}: the file is "
                                "corrupt; delete it and fetch it again.")
            offset += 16 + length
            yield data


def write_records(path: str | Path, records) -> None:
    with open(path, "wb") as fh:
        for data in records:
            length = struct.pack("<Q", len(data))
            fh.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))


# ------------------------------------------------------------------------------------------ protobuf wire format
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a message: bytes for length-delimited fields, int for varints."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def parse_example(data: bytes) -> dict[str, list]:
    """Serialised tf.train.Example -> {feature name: list of bytes | float | int}."""
    out: dict[str, list] = {}
    for n, _, features in _fields(data):
        if n != 1:
            continue
        for m, _, entry in _fields(features):
            if m != 1:
                continue
            key, feature = None, b""
            for k, _, v in _fields(entry):
                if k == 1:
                    key = v.decode("utf-8")
                elif k == 2:
                    feature = v
            values: list = []
            for kind, wire, lst in _fields(feature):
                for f, w, v in _fields(lst):
                    if kind == 1:
                        values.append(bytes(v))
                    elif kind == 2:
                        values.extend(np.frombuffer(v, "<f4").tolist() if w == 2 else [struct.unpack("<f", v)[0]])
                    elif kind == 3:
                        if w == 2:
                            pos = 0
                            while pos < len(v):
                                x, pos = _varint(v, pos)
                                values.append(x - (1 << 64) if x >= 1 << 63 else x)
                        else:
                            values.append(v - (1 << 64) if v >= 1 << 63 else v)
            out[key] = values
    return out


def _key(number: int, wire: int) -> bytes:
    return _encode_varint((number << 3) | wire)


def _encode_varint(x: int) -> bytes:
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def encode_example(features: dict[str, list]) -> bytes:
    """{name: list of bytes | float | int} -> serialised tf.train.Example (bytes, packed floats, packed int64)."""
    entries = b""
    for name, values in features.items():
        if all(isinstance(v, (bytes, bytearray)) for v in values):
            feature = _delimited(1, b"".join(_delimited(1, bytes(v)) for v in values))
        elif all(isinstance(v, float) for v in values):
            feature = _delimited(2, _delimited(1, np.asarray(values, "<f4").tobytes()))
        else:
            packed = b"".join(_encode_varint(int(v) & ((1 << 64) - 1)) for v in values)
            feature = _delimited(3, _delimited(1, packed))
        entries += _delimited(1, _delimited(1, name.encode("utf-8")) + _delimited(2, feature))
    return _delimited(1, entries)
