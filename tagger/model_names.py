"""The shipped models' names (`default`, `fast`) and the model ids the index holds for them, read
from the ONNX files' metadata without starting an onnxruntime session (a query such as
`model:fast` should not cost a model load).

An ONNX file is a protobuf `ModelProto`; its `metadata_props` (field 14) are key/value pairs
(`StringStringEntryProto`: key 1, value 2). Reading them needs only protobuf's wire format: the
other fields (the graph and its weights) are skipped by their lengths.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mertag.models import MODELS_DIR, PACKAGED_MODELS

_METADATA_PROPS = 14
_KEY, _VALUE = 1, 2


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes | memoryview) -> list[tuple[int, bytes | memoryview | int]]:
    """The top-level (field number, value) pairs of one protobuf message."""
    out: list[tuple[int, bytes | memoryview | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX")
    return out


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata_props; ValueError when the file is not a protobuf message."""
    data = memoryview(path.read_bytes())
    meta: dict[str, str] = {}
    for number, value in _fields(data):
        if number != _METADATA_PROPS or isinstance(value, int):
            continue
        entry = {n: v for n, v in _fields(value) if not isinstance(v, int)}
        key = bytes(entry.get(_KEY, b"")).decode("utf-8", "replace")
        meta[key] = bytes(entry.get(_VALUE, b"")).decode("utf-8", "replace")
    return meta


@functools.lru_cache(maxsize=8)
def _model_id(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        return onnx_metadata(Path(path)).get("model_id") or None
    except (OSError, ValueError):
        return None  # a missing or broken shipped model: `model:` falls back to text matching


def packaged_model_id(name: str) -> str | None:
    """The model id of the shipped model `name` (a `PACKAGED_MODELS` key, any case), or None
    when `name` is not one or its file cannot be read."""
    file = PACKAGED_MODELS.get(name.strip().casefold())
    if file is None:
        return None
    path = MODELS_DIR / file
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _model_id(str(path), st.st_size, st.st_mtime_ns)
