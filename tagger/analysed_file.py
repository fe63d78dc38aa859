"""What the index keeps about the file an analysis was made of, besides the analysis: its names
(artist, album, title, duration) and the hash of its audio stream; and whether a file on disk is
still that file, which `mertag write` asks before it puts the index's mood into it.

A file is the one analysed when its size and mtime are the ones the index recorded, or, when
only those changed (another tool rewrote or stripped its tags), when its audio stream still
hashes to the recorded `audio_sha256`: tags live outside the audio packets in every format
mertag tags, so a tag edit keeps the hash and a change of one audio byte does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from mertag.tagger.index import IndexRow
from mertag.tagger.tags import TagError, audio_fingerprint
from mertag.tagger.trackinfo import read_names


def _state(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def stable_fingerprint(path: Path, size: int, mtime_ns: int) -> str | None:
    """The audio hash of the file at `path` if it is (size, mtime_ns) before and after hashing,
    else None (it changed meanwhile, or its audio cannot be read)."""
    if _state(path) != (size, mtime_ns):
        return None
    try:
        digest = audio_fingerprint(path)
    except TagError:
        return None
    return digest if _state(path) == (size, mtime_ns) else None


def with_file_facts(row: IndexRow) -> IndexRow:
    """An analysed track's row with the file's names and audio hash, read from the file as it is
    now (a scan calls this once its tags are written). A failed row is left as it is: the file
    may be anything (a device, a file that hangs a reader), and there is no analysis to guard."""
    if row.status != "ok":
        return row
    names = read_names(row.path)
    return replace(
        row,
        artist=names.artist,
        album=names.album,
        title=names.title,
        duration=names.duration,
        audio_sha256=stable_fingerprint(Path(row.path), row.size, row.mtime_ns),
    )


@dataclass(frozen=True)
class FileCheck:
    """Whether a file is still the one its row was analysed from.

    `same` is True when it is; `reason` says why not (one line). `tags_changed` is True when
    its size or mtime differ but its audio hash matches (only its tags were changed since).
    """

    same: bool
    reason: str | None = None
    tags_changed: bool = False
    state: tuple[int, int] | None = None  # the file's (size, mtime_ns) now


def check_analysed_file(row: IndexRow) -> FileCheck:
    """Compare the file at `row.path` with what the index recorded (see the module doc)."""
    path = Path(row.path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return FileCheck(False, "file is gone (`mertag prune` drops its row)")
    except OSError as exc:
        return FileCheck(False, f"cannot check the file: {exc.strerror or exc}")
    state = (st.st_size, st.st_mtime_ns)
    if state == (row.size, row.mtime_ns):
        return FileCheck(True, state=state)
    changed = "changed since it was analysed (run `mertag scan` to analyse it again)"
    if row.audio_sha256 is None:
        return FileCheck(False, changed, state=state)
    if stable_fingerprint(path, *state) != row.audio_sha256:
        return FileCheck(False, f"audio {changed}", state=state)
    return FileCheck(True, tags_changed=True, state=state)
