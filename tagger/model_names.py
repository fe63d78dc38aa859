"""The shipped models' names (`default`, `fast`) and the model ids the index holds for them, read
from the ONNX files' metadata without starting an onnxruntime session (a query such as
`model:fast` should not cost a model load).

An ONNX file is a protobuf `ModelProto`; its `metadata_props` (field 14) are key/value pairs
(`StringStringEntryProto`: key 1, value 2). Reading them needs only protobuf's wire format
(`protobuf_wire`): the other fields (the graph and its weights) are skipped by their lengths.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mertag.models import MODELS_DIR, PACKAGED_MODELS
from mertag.tagger.protobuf_wire import fields

MODEL_FORMAT_KEY = "mertag_model_format"
"""The metadata key that makes an ONNX file a mertag model (its value: the model format)."""

_METADATA_PROPS = 14
_KEY, _VALUE = 1, 2


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata_props; ValueError when the file is not a protobuf message."""
    meta: dict[str, str] = {}
    for number, value in fields(path.read_bytes()):
        if number != _METADATA_PROPS or isinstance(value, int):
            continue
        entry = {n: v for n, v in fields(value) if not isinstance(v, int)}
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
