"""Read a TensorFlow checkpoint (a "tensor bundle") into numpy arrays, without TensorFlow.

The musicnn wheel on PyPI ships its pretrained networks only as TF1 checkpoints: an ``.index``
file (a LevelDB-format table mapping each variable name to a ``BundleEntryProto``: dtype, shape,
shard, offset, size) beside ``.data-NNNNN-of-NNNNN`` shards holding the raw little-endian tensor
bytes. This reads exactly that, so that converting a checkpoint to the ``.npz`` that
``mertag.trainer.musicnn_port`` loads needs no TensorFlow install. Only what those checkpoints use
is
supported: uncompressed blocks, whole (unsliced) tensors of numeric dtypes.

    python -m mertag.trainer.tf_checkpoint CHECKPOINT_PREFIX OUT.npz [--skip Adam --skip power]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

from mertag.tagger.protobuf_wire import WireError, varint
from mertag.tagger.protobuf_wire import fields as wire_fields

_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8", 10: "?"}
"""TensorFlow DataType enum -> numpy dtype, for the types checkpoints of weights hold."""


class CheckpointError(Exception):
    """The files are not a tensor bundle this reader understands."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    try:
        return varint(buf, pos)
    except WireError as exc:
        raise CheckpointError(str(exc)) from exc


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a serialised protobuf message, in order."""
    try:
        return [(n, bytes(v) if isinstance(v, memoryview) else v) for n, v in wire_fields(buf)]
    except WireError as exc:
        raise CheckpointError(str(exc)) from exc


def _block(table: bytes, handle: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of the table block a BlockHandle points at."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    block = table[offset : offset + size]
    if table[offset + size : offset + size + 1] != b"\x00":
        raise CheckpointError("compressed table blocks are not supported")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def _entries(index: bytes) -> dict[str, bytes]:
    """Every key -> BundleEntryProto bytes of the `.index` table (the header entry left out)."""
    if len(index) < 48 or struct.unpack_from("<Q", index, len(index) - 8)[0] != _MAGIC:
        raise CheckpointError("not a TensorFlow checkpoint index (bad table magic)")
    footer = index[-48:]
    _, pos = _varint(footer, 0)  # metaindex offset and size: unused
    _, pos = _varint(footer, pos)
    out: dict[str, bytes] = {}
    for _, data_handle in _block(index, footer[pos:]):
        for key, value in _block(index, data_handle):
            if key:  # the empty key holds the BundleHeaderProto
                out[key.decode("utf-8")] = value
    return out


def read_checkpoint(prefix: Path | str) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint at `prefix` (the path before `.index`), by its name.

    A folder means a checkpoint saved with an empty file prefix in it (`FOLDER/.index`), as the
    musicnn wheel's are.
    """
    prefix_text = str(prefix) + ("/" if Path(prefix).is_dir() else "")
    index_path = Path(prefix_text + ".index")
    if not index_path.is_file():
        raise CheckpointError(f"{index_path}: no such checkpoint index")
    shards: dict[int, bytes] = {}
    tensors: dict[str, np.ndarray] = {}
    for name, proto in _entries(index_path.read_bytes()).items():
        fields = dict(_fields(proto))
        if 7 in fields:
            raise CheckpointError(f"{name}: sliced tensors are not supported")
        dtype = _DTYPES.get(int(fields.get(1, 0)))  # type: ignore[arg-type]
        if dtype is None:
            raise CheckpointError(f"{name}: unsupported dtype {fields.get(1)!r}")
        shape_msg = fields.get(2, b"")
        assert isinstance(shape_msg, bytes)
        shape = [
            int(dict(_fields(dim)).get(1, 0))  # type: ignore[arg-type]
            for number, dim in _fields(shape_msg)
            if number == 2 and isinstance(dim, bytes)
        ]
        shard, offset, size = (int(fields.get(k, 0)) for k in (3, 4, 5))  # type: ignore[arg-type]
        if shard not in shards:
            count = len(list(index_path.parent.glob(index_path.name[: -len(".index")] + ".data-*")))
            shard_path = Path(f"{prefix_text}.data-{shard:05d}-of-{count:05d}")
            shards[shard] = shard_path.read_bytes()
        raw = shards[shard][offset : offset + size]
        if len(raw) != size:
            raise CheckpointError(f"{name}: data shard {shard} is truncated")
        tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return tensors


def main(argv: list[str] | None = None) -> None:
    """CLI: write a checkpoint's variables to an .npz, dropping names that hold a --skip text."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="checkpoint path without .index, or its folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--strip", default="model/", help="prefix removed from variable names")
    parser.add_argument("--skip", action="append", default=[], help="drop names holding this")
    args = parser.parse_args(argv)
    tensors = {
        (name[len(args.strip) :] if name.startswith(args.strip) else name): value
        for name, value in read_checkpoint(args.prefix).items()
        if not any(s in name for s in args.skip)
    }
    np.savez(args.out, **tensors)  # type: ignore[arg-type]  # (numpy fears a key "allow_pickle")
    print(f"wrote {len(tensors)} tensors to {args.out}")


if __name__ == "__main__":
    main()
