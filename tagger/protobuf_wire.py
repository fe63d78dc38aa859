"""Protobuf's wire format, read without a schema: enough to take a few fields out of a message
(an ONNX file's metadata, `model_names`) without the protobuf or onnx packages."""

from __future__ import annotations

import struct


class WireError(ValueError):
    """The bytes are not a protobuf message (truncated, or a wire type protobuf 3 never writes)."""


def varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at `pos`, and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes | memoryview) -> list[tuple[int, int | memoryview]]:
    """The (field number, value) pairs of one message, in order: numbers for varint and fixed
    fields, a view of the bytes for length-delimited ones (strings, sub-messages)."""
    view = memoryview(buf)
    out: list[tuple[int, int | memoryview]] = []
    pos = 0
    while pos < len(view):
        key, pos = varint(view, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = varint(view, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(view):
                raise WireError("truncated fixed field")
            value, pos = struct.unpack_from("<Q" if wire == 1 else "<I", view, pos)[0], pos + size
        elif wire == 2:
            length, pos = varint(view, pos)
            if pos + length > len(view):
                raise WireError("truncated field")
            value, pos = view[pos : pos + length], pos + length
        else:
            raise WireError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out
