"""On-disk cache of feature sequences, so a second training run does not decode again.

An entry is keyed by the audio file's content (SHA-256, so renaming or moving files keeps the
cache valid and editing one invalidates it), the tagger's FEATURE_SCHEMA, and the variant: 'clean'
or an augmentation's spec (name and parameters). Entries are .npz files written atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA

CLEAN = "clean"


def default_cache_dir() -> Path:
    """platformdirs' per-user cache folder for mertag, subfolder 'features'."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mertag")) / "features"


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(digest: str, variant: str = CLEAN) -> str:
    """The entry name for one file's features under the current schema and one variant."""
    return hashlib.sha256(f"{FEATURE_SCHEMA}\0{digest}\0{variant}".encode()).hexdigest()


class FeatureCache:
    """A folder of entries, two hex digits of fan-out; safe for parallel writers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def load(self, key: str) -> list[np.ndarray] | None:
        """The cached sequences, or None when absent or unreadable (then it is recomputed)."""
        path = self.path_for(key)
        try:
            with np.load(path) as data:
                n = int(data["count"])
                seqs = [data[f"seq{i}"] for i in range(n)]
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None  # a torn or foreign file: treat as a miss and overwrite it
        if any(s.ndim != 2 or s.shape[1] != FEATURE_DIM for s in seqs):
            return None
        return seqs

    def save(self, key: str, sequences: list[np.ndarray]) -> None:
        """Write an entry atomically (temp file, then rename)."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            f"seq{i}": np.asarray(s, dtype=np.float32) for i, s in enumerate(sequences)
        }
        arrays.update(count=np.int64(len(sequences)), schema=FEATURE_SCHEMA)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
