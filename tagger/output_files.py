"""The files mertag writes for the user (playlists, maps, exports) never replace one of theirs.

A file already at the target is replaced only when it carries mertag's mark, each format's own
place for one: a comment line after `#EXTM3U` in M3U8 (players skip comment lines), the comment
of a Navidrome .nsp, a generator meta of the HTML map, the Software or Creator of a picture map,
the column header of a CSV export, the columns of a JSON export; for the trainer's files, a
mertag model's own ONNX metadata, the title of a CV report and the mark key first in a JSON
report or in the folds.json of `train --fold-models`. So running a command again
replaces what it wrote before, and a playlist, page or sheet of the user's with the same name is
refused with one line before anything is written, unless the caller asks (`--overwrite`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import tempfile
from pathlib import Path

from mertag.tagger.file_locks import HAVE_FLOCK, delete_unless_locked, lock
from mertag.tagger.index import COLUMNS
from mertag.tagger.model_names import MODEL_FORMAT_KEY, onnx_metadata

CREATOR = "mertag"
"""The creator a picture map names in its metadata (PNG Software, SVG and PDF Creator)."""

M3U8_MARK = "# written by mertag: mertag replaces this file when it writes this playlist again"
"""The line after `#EXTM3U` in every M3U8 playlist mertag writes."""

NSP_MARK = "mertag:"
"""How the comment of every .nsp file mertag writes starts."""

HTML_MARK = '<meta name="generator" content="mertag">'
"""The generator line in the head of the HTML map."""

REPORT_TITLE = "# mertag model comparison"
"""The first line of every markdown CV report `mertag train --report` writes."""

REPORT_MARK = {"written_by": CREATOR}
"""The first key of every JSON report `mertag train` and `mertag evaluate` write, and of the
folds.json of `mertag train --fold-models`."""
_REPORT_MARK_LINE = json.dumps(REPORT_MARK)[1:-1] + ","  # its line under json.dumps(indent=2)
_REPORT_MARK_START = json.dumps(REPORT_MARK)[:-1] + ", "  # the start of json.dumps on one line

OVERWRITE_OPTION = "--overwrite"

_HEAD = 16384  # where a mark at the start of a file must be
_WHOLE = 64 << 20  # a PDF names its creator near its end: a map is far smaller than this
_PNG_TEXT = b"Software\x00" + CREATOR.encode()
_PNG_SOFTWARE = struct.pack(">I", len(_PNG_TEXT)) + b"tEXt" + _PNG_TEXT  # a whole tEXt chunk
_SVG_CREATOR = re.compile(
    rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>" + re.escape(CREATOR.encode()) + rb"</dc:title>"
)


class OutputExists(Exception):
    """A file mertag did not write is at the target: nothing was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"a file mertag did not write is there; {OVERWRITE_OPTION} replaces it")
        self.path = path


def _read(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def _json_export(text: str) -> bool:
    """Whether `text` starts as `export --format json` writes: '[]', or '[' and a first row
    object holding exactly the index's columns."""
    if text.startswith("[]"):
        return True
    lines = text.split("\n", 2)
    if len(lines) < 3 or lines[0] != "[":
        return False
    try:
        first = json.loads(lines[1].strip().removesuffix(","))
    except ValueError:
        return False
    return isinstance(first, dict) and list(first) == list(COLUMNS)


def _json_report(text: str) -> bool:
    """Whether `text` starts as a train or evaluate JSON report ('{' then the mark's line) or
    as a folds.json (one line, the mark first)."""
    if text.startswith(_REPORT_MARK_START):
        return True
    lines = text.split("\n", 2)
    return len(lines) >= 2 and lines[0] == "{" and lines[1].strip() == _REPORT_MARK_LINE


def written_by_mertag(path: Path) -> bool:
    """Whether the file at `path` carries mertag's mark for its kind (by suffix, as the writer
    chose its format); False for anything unreadable or unknown."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            data = _read(path, _WHOLE)
            return b"/Creator (" + CREATOR.encode() + b")" in data
        head = _read(path, _HEAD)
    except OSError:
        return False
    text = head.decode("utf-8", errors="replace")
    if suffix in (".m3u8", ".m3u"):
        return text.split("\n")[:2] == ["#EXTM3U", M3U8_MARK]
    if suffix == ".nsp":
        try:
            comment = json.loads(_read(path, _WHOLE)).get("comment")
        except (OSError, ValueError, AttributeError):
            return False
        return isinstance(comment, str) and comment.startswith(NSP_MARK)
    if suffix in (".html", ".htm"):
        return HTML_MARK in text
    if suffix == ".png":
        return _PNG_SOFTWARE in head
    if suffix == ".svg":
        return _SVG_CREATOR.search(head) is not None
    if suffix == ".csv":
        return text.split("\n", 1)[0].rstrip("\r") == ",".join(COLUMNS)
    if suffix == ".json":
        return _json_export(text) or _json_report(text)
    if suffix == ".md":
        return text.split("\n", 1)[0].rstrip("\r") == REPORT_TITLE
    if suffix == ".onnx":
        try:
            return MODEL_FORMAT_KEY in onnx_metadata(path)
        except (OSError, ValueError):
            return False
    return False


def check_replaceable(path: Path, overwrite: bool = False) -> None:
    """Raise OutputExists when a file that is not mertag's is at `path` and `overwrite` is not
    given; a missing target, or one mertag wrote, is fine (a folder is the caller's error)."""
    if overwrite or not path.is_file():
        return
    if not written_by_mertag(path):
        raise OutputExists(path)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


OUTPUT_TEMP_SUFFIX = ".tmp"
"""How the temp file of every `write_bytes_atomic` ends: `.NAME.XXXXXXXX.tmp` beside NAME."""

_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")
"""The random part of a temp file's name, as `tempfile.mkstemp` makes it."""


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` so that `path` is always either the old file or the whole new one, through
    a temp file of a name no other file has (mkstemp: nothing beside `path` is replaced).

    A file that is replaced keeps what the user gave it: its permission bits (and, where this
    process may set them, its owner and group), and a symlink stays a symlink: the file it
    points to is the one rewritten, beside itself. A new file gets the mode a new file gets
    (0644 under umask 022), not the private 0600 of a temp file, so a music server running as
    another user can read a playlist or a model. The data is fsynced before the rename and the
    folder after it, so a power cut leaves the old file or the new one. The writer holds an flock
    on its temp file until it is renamed, and the temp files of `path` that a killed writer left
    (`remove_stale_output_temps`) are deleted first. A failure is an OSError naming `path`.
    """
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_output_temps(target)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=OUTPUT_TEMP_SUFFIX
        )
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        lock(fd)  # a new file: nobody else holds it
        _take_identity(tmp, target)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.replace(tmp, target)  # still locked: no cleaner can take it away before this
        _sync_folder(target.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    finally:
        os.close(fd)


STALE_AFTER = 10.0
"""Seconds since its last change after which an unlocked temp file counts as a dead writer's
(a live writer locks its temp file the instant after creating it)."""


def remove_stale_output_temps(target: Path) -> list[Path]:
    """Delete the temp files `write_bytes_atomic` made for `target` (`.NAME.XXXXXXXX.tmp`
    beside it, regular files) that a killed writer left: unlocked and unchanged for
    STALE_AFTER seconds; returns them. A file of another name, a user's `.NAME.notes.tmp` say,
    is never one; a live writer's is locked. One that cannot be deleted stays, hidden, for the
    next write to try again; where flock is missing (Windows) none is deleted."""
    if not HAVE_FLOCK:
        return []
    prefix = f".{target.name}."
    try:
        with os.scandir(target.parent) as entries:
            names = sorted(
                e.name
                for e in entries
                if e.name.startswith(prefix)
                and e.name.endswith(OUTPUT_TEMP_SUFFIX)
                and _TEMP_RANDOM.fullmatch(e.name[len(prefix) : -len(OUTPUT_TEMP_SUFFIX)])
                and e.is_file(follow_symlinks=False)
            )
    except OSError:
        return []
    candidates = (target.parent / name for name in names)
    return [c for c in candidates if delete_unless_locked(c, STALE_AFTER)]


def _take_identity(tmp: str, target: Path) -> None:
    """Give the temp file the mode (and owner and group, where allowed) of the file it will
    replace, or a new file's mode when there is none."""
    try:
        old = os.stat(target)
    except FileNotFoundError:
        os.chmod(tmp, 0o666 & ~_umask())
        return
    if hasattr(os, "chown") and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
        try:
            os.chown(tmp, old.st_uid, old.st_gid)
        except PermissionError:  # not ours to give away: the replacement is the writer's
            pass
    os.chmod(tmp, stat.S_IMODE(old.st_mode))


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power cut (where folders can be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` as the same kind of error naming `path`: the file the user asked for, not the temp
    file (or no file, as a write cut short by a full disk says), so it makes one line."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
