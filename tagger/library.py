"""Walk a music library: find the audio files under some folders, deterministically.

The walk is the first stage of a scan. It only lists folders and stats entries, so it stays
fast on large libraries; the one file it opens is one named on the command line without an audio
suffix, whose first bytes then decide. Anything it cannot list or stat is reported as a
problem with a one-line reason instead of stopping the walk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".spx",
        ".m4a",
        ".mp4",
        ".m4b",
        ".wav",
        ".aif",
        ".aiff",
    }
)
"""File name suffixes (matched case-insensitively) that the tagger treats as audio."""
HEAD_BYTES = 12
"""Bytes read from a file named on the command line without an audio suffix (`is_audio_head`)."""


@dataclass(frozen=True)
class Walk:
    """What a walk found.

    `tracks` are absolute paths, in walk order (roots in the order given, then names sorted, depth
    first), each file at most once. `passed_over` counts regular files that are not audio (and
    other non-folder entries such as sockets); `excluded` counts files and folders matched by an
    exclude pattern (an excluded folder counts once); `problems` are paths that could not be
    listed or stat'ed, each with a one-line reason.
    """

    tracks: list[Path] = field(default_factory=list)
    passed_over: int = 0
    excluded: int = 0
    problems: list[tuple[Path, str]] = field(default_factory=list)
    outward_links: list[Path] = field(default_factory=list)
    """Folder symlinks that lead to a folder holding a root (`..`, `/`, the home folder...):
    not followed, or the walk would leave the library for everything above it."""


def is_audio_name(name: str) -> bool:
    """Whether a file name has one of the AUDIO_EXTENSIONS (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def is_audio_head(head: bytes) -> bool:
    """Whether a file's first HEAD_BYTES bytes begin one of the containers of AUDIO_EXTENSIONS:
    FLAC, Ogg, an ID3 tag (MP3, or FLAC behind one), an MPEG audio frame, RIFF/RF64 WAVE,
    AIFF/AIFC, or an MP4 `ftyp` box."""
    if head[:4] in (b"fLaC", b"OggS") or head[:3] == b"ID3" or head[4:8] == b"ftyp":
        return True
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def _reason(exc: OSError) -> str:
    """A one-line reason for an OSError, without the path (the caller reports the path)."""
    if isinstance(exc, FileNotFoundError):
        return "not found (a broken symlink or removed during the walk)"
    text = exc.strerror or str(exc) or type(exc).__name__
    return " ".join(text.split())


def _is_excluded(rel: str, name: str, exclude: Sequence[str]) -> bool:
    """Whether an entry matches a pattern, by its root-relative path or by its bare name."""
    return any(fnmatch(rel, pat) or fnmatch(name, pat) for pat in exclude)


def walk(roots: Iterable[Path], exclude: Sequence[str] = ()) -> Walk:
    """Find the audio files under `roots` (folders or single files), recursively.

    Hidden entries (names starting with '.') are skipped below a root, which also skips the
    tagger's own temp files. `exclude` holds fnmatch patterns matched against both the path
    relative to its root ('/'-separated) and the entry's name, so '*.wav', 'Podcasts/*' and
    'Podcasts' all work; roots themselves are never hidden or excluded, since the user named them.
    A file given as a root is a track when its name has an audio suffix or, failing that, when
    its first bytes begin an audio container (`is_audio_head`). Symlinks are followed (music on
    another disk, linked in), but a folder (by device and inode) is entered only once, so symlink
    loops end, and a file reachable twice is listed once; a folder symlink that leads to a folder
    holding a root (an ancestor of it, such as `..`) is not followed and is listed in
    `outward_links`. Paths are absolute but not resolved through symlinks.
    """
    tracks: list[Path] = []
    problems: list[tuple[Path, str]] = []
    passed_over = 0
    excluded = 0
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    outward: list[Path] = []
    roots = [Path(root).absolute() for root in roots]
    real_roots = [root.resolve() for root in roots]

    def leads_outward(path: Path) -> bool:
        """Whether `path` is a folder symlink to a root's folder or one above it."""
        if not path.is_symlink():
            return False
        target = path.resolve()
        return any(real == target or real.is_relative_to(target) for real in real_roots)

    def visit_file(path: Path, st: os.stat_result, named: bool = False) -> None:
        nonlocal passed_over
        if not stat.S_ISREG(st.st_mode):
            passed_over += 1
            return
        if not is_audio_name(path.name):
            # A file the user named is audio when its content says so, whatever its name.
            try:
                audio = named and is_audio_head(_read_head(path))
            except OSError as exc:
                problems.append((path, _reason(exc)))
                return
            if not audio:
                passed_over += 1
                return
        key = (st.st_dev, st.st_ino)
        if key not in seen_files:
            seen_files.add(key)
            tracks.append(path)

    def list_dir(path: Path, rel: str) -> list[tuple[Path, str, str]]:
        """The entries of a folder as (path, relative path, name), sorted by name."""
        try:
            with os.scandir(path) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            problems.append((path, f"cannot list folder: {_reason(exc)}"))
            return []
        return [(path / name, f"{rel}/{name}" if rel else name, name) for name in names]

    for root in roots:
        try:
            st = root.stat()
        except OSError as exc:
            problems.append((root, _reason(exc)))
            continue
        if not stat.S_ISDIR(st.st_mode):
            visit_file(root, st, named=True)
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        # An explicit stack (entries pushed in reverse) keeps name order without recursion, so a
        # very deep tree cannot hit the recursion limit.
        stack = list(reversed(list_dir(root, "")))
        while stack:
            path, rel, name = stack.pop()
            if name.startswith("."):
                continue
            if _is_excluded(rel, name, exclude):
                excluded += 1
                continue
            try:
                st = path.stat()
            except OSError as exc:
                problems.append((path, _reason(exc)))
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if leads_outward(path):
                    outward.append(path)
                elif key not in seen_dirs:
                    seen_dirs.add(key)
                    stack.extend(reversed(list_dir(path, rel)))
            else:
                visit_file(path, st)

    return Walk(
        tracks=tracks,
        passed_over=passed_over,
        excluded=excluded,
        problems=problems,
        outward_links=outward,
    )
