"""The TensorFlow checkpoint reader, on a tensor bundle laid out byte by byte as TF writes one.

The real checkpoints (in the musicnn wheel) are not in the repository; this bundle follows the
same format (a LevelDB table of BundleEntryProtos beside a data shard), and the shipped MTT front
end's parity with TensorFlow's own outputs (test_musicnn_port.py) covers the real conversion.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from mertag.trainer.tf_checkpoint import CheckpointError, main, read_checkpoint

_MAGIC = 0xDB4775248B80FB57


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire)
    return key + (varint(len(payload)) + payload if wire == 2 else payload)


def entry_proto(dtype: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    dims = b"".join(field(2, 2, field(1, 0, varint(d))) for d in shape)
    return (
        field(1, 0, varint(dtype))
        + field(2, 2, dims)
        + field(4, 0, varint(offset))
        + field(5, 0, varint(size))
        + field(6, 5, struct.pack("<I", 0))
    )


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block with prefix-compressed keys, one restart point, no compression."""
    out, previous = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    return bytes(out + struct.pack("<II", 0, 1))


def write_bundle(prefix: Path | str, tensors: dict[str, np.ndarray]) -> None:
    data, entries = bytearray(), [(b"", field(1, 0, varint(1)))]  # the header entry first
    dtypes = {np.dtype("<f4"): 1, np.dtype("<i8"): 9}
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        proto = entry_proto(dtypes[tensors[name].dtype], tensors[name].shape, len(data), len(raw))
        entries.append((name.encode(), proto))
        data += raw
    table = bytearray()

    def put(payload: bytes) -> bytes:
        handle = varint(len(table)) + varint(len(payload))
        table.extend(payload + b"\x00" + b"\x00\x00\x00\x00")  # type byte + crc trailer
        return handle

    data_handle = put(block(entries))
    meta_handle = put(block([]))
    index_handle = put(block([(entries[-1][0], data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", _MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(table) + footer)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


def test_reads_every_tensor_with_its_shape_and_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "model/conv2d/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "model/conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "model/conv2d_1/kernel": rng.standard_normal((3, 2)).astype(np.float32),
        "global_step": np.array(1234, dtype=np.int64),
    }
    write_bundle(tmp_path / "ckpt", tensors)
    got = read_checkpoint(tmp_path / "ckpt")
    assert sorted(got) == sorted(tensors)
    for name, value in tensors.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
        np.testing.assert_array_equal(got[name], value)


def test_a_folder_is_a_checkpoint_saved_with_an_empty_prefix(tmp_path: Path) -> None:
    write_bundle(f"{tmp_path}/", {"w": np.ones((2, 2), dtype=np.float32)})
    assert (tmp_path / ".index").is_file()
    np.testing.assert_array_equal(read_checkpoint(tmp_path)["w"], np.ones((2, 2)))


def test_cli_writes_an_npz_without_skipped_names_and_prefix(tmp_path: Path) -> None:
    write_bundle(
        tmp_path / "ckpt",
        {
            "model/dense/kernel": np.eye(3, dtype=np.float32),
            "model/dense/kernel/Adam": np.zeros((3, 3), dtype=np.float32),
        },
    )
    main([str(tmp_path / "ckpt"), str(tmp_path / "w.npz"), "--skip", "Adam"])
    with np.load(tmp_path / "w.npz") as npz:
        assert npz.files == ["dense/kernel"]
        np.testing.assert_array_equal(npz["dense/kernel"], np.eye(3))


def test_other_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint index"):
        read_checkpoint(tmp_path / "missing")
    (tmp_path / "bad.index").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="bad table magic"):
        read_checkpoint(tmp_path / "bad")
