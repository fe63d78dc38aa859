"""A track moved or renamed since it was analysed keeps its analysis instead of being analysed
again.

A file the index has no row for is the same file as a row whose file is gone when both have the
same size and the new file's audio hashes to the row's `audio_sha256` (the hash of the audio
stream alone, which a move, a rename or a tag edit elsewhere does not change). The row then
moves to the new path with everything in it (mood, names, tag state), and the file, which
carries its tags with it, is left as it is. Only new files whose size is that of a vanished row
are hashed, so a first scan, or a scan where nothing moved, pays a stat per indexed track at most.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from mertag.tagger.analysed_file import stable_fingerprint
from mertag.tagger.index import Index, IndexRow, SnapshotEntry


def vanished_by_size(
    snapshot: Mapping[str, SnapshotEntry], found: Collection[str], model_ids: Collection[str]
) -> dict[int, list[str]]:
    """size -> paths of analysed rows (with one of `model_ids`) whose file is no longer there."""
    out: dict[int, list[str]] = {}
    for path, (size, _mtime, status, model_id) in snapshot.items():
        if status == "ok" and model_id in model_ids and path not in found:
            if not os.path.lexists(path):
                out.setdefault(size, []).append(path)
    return out


def recognise_moves(
    todo: Sequence[tuple[Path, int, int]],
    snapshot: Mapping[str, SnapshotEntry],
    found: Collection[str],
    model_ids: Collection[str],
    index: Index,
) -> tuple[list[tuple[Path, int, int]], list[tuple[str, IndexRow]]]:
    """Split the tracks to analyse into those still to analyse and those recognised as moved:
    (old path, the row for the new path). Nothing is written here."""
    new = [t for t in todo if str(t[0]) not in snapshot]
    if not new:
        return list(todo), []
    vanished = vanished_by_size(snapshot, found, model_ids)
    if not vanished:
        return list(todo), []
    moved: list[tuple[str, IndexRow]] = []
    recognised: set[Path] = set()
    for path, size, mtime_ns in new:
        candidates = vanished.get(size)
        if not candidates:
            continue
        digest = stable_fingerprint(path, size, mtime_ns)
        if digest is None:
            continue
        for old in candidates:
            row = index.get(old)
            if row is not None and row.audio_sha256 == digest:
                moved.append((old, replace(row, path=str(path), size=size, mtime_ns=mtime_ns)))
                candidates.remove(old)
                recognised.add(path)
                break
    return [t for t in todo if t[0] not in recognised], moved
