"""Crash-safe rewrite of one file: edit a private copy, then swap it in with one rename.

A tag save done in place can leave a half-written music file behind if the process is killed or
the disk fills up. Here the original is never opened for writing: a copy is edited, synced to disk
and renamed over it, so at every instant the path holds either the old file or the new one.

A writer killed mid-way leaves only its hidden temp copy, which the walker skips. The writer holds
an flock on the copy while it works, so `remove_stale_temps` can tell a dead writer's copy from a
live one and delete only the former. The replaced file gets a new mtime, as after any tag editor;
its owner, group and permission bits are kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temp files are left for the user to delete
    fcntl = None  # type: ignore[assignment]

#: Every temp file ends with this; the library walker skips names starting with '.' or ending so.
TEMP_SUFFIX = ".mertag-tmp"

_COPY_CHUNK = 1 << 20

_SPACE_MARGIN = 1 << 20
"""Free space wanted beyond the copy itself (the new tags), so a write never fills the disk."""

_REASONS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "file not found",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
    errno.ENAMETOOLONG: "file name too long",
}


class SafeWriteError(Exception):
    """The file could not be rewritten; it is untouched. The message is a one-line reason."""


def describe_os_error(error: OSError) -> str:
    """A short, stable one-line reason for an OS error (no path: the caller adds it)."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    return (error.strerror or str(error)).lower()


def file_state(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of `path`: what must not change between reading a file and replacing it."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _is_read_only(st: os.stat_result, path: Path) -> bool:
    # Renaming over the file would bypass its permission bits, so honour them explicitly. The
    # mode check matters when running as root, where os.access() answers yes regardless.
    no_write_bits = not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    return no_write_bits or not os.access(path, os.W_OK)


def _temp_prefix(path: Path) -> str:
    # Keep the name recognisable but short enough for a 255-byte file name limit.
    stem = os.fsdecode(os.fsencode(path.name)[:60])
    return f".{stem}."


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems cannot sync a directory; the rename itself has already happened.
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _check_space(folder: Path, size: int) -> None:
    """Refuse before copying when the folder's file system cannot hold a copy of `size` bytes."""
    st = os.statvfs(folder)
    if st.f_bavail * st.f_frsize < size + _SPACE_MARGIN:
        mb = -(-(size + _SPACE_MARGIN) // (1 << 20))
        raise SafeWriteError(f"no space left on device (the tag write needs {mb} MB free)")


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp copies in `folder` left by writers that were killed; returns them.

    A live writer holds an flock on its copy, so its copy is left alone. A copy that cannot be
    checked or removed stays too: it is hidden and skipped by the walker, and the next call tries
    again.
    """
    if fcntl is None:
        return []
    try:
        with os.scandir(folder) as it:
            names = [
                e.name for e in it if _is_temp_name(e.name) and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []  # the walk has already reported a folder it could not list
    removed: list[Path] = []
    for name in names:
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue  # gone already (another scan cleaned it) or unreadable: leave it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue  # locked by a live writer, or not ours to delete
        finally:
            os.close(fd)
    return removed


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    now = os.stat(path)
    same = (now.st_size, now.st_mtime_ns, now.st_ino, now.st_dev) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
        before.st_dev,
    )
    if not same:
        raise SafeWriteError("file changed during tag write")


def rewrite_file(
    path: Path, edit: Callable[[BinaryIO], None], *, expect: tuple[int, int] | None = None
) -> None:
    """Apply `edit` to a copy of `path` and atomically replace `path` with the edited copy.

    `edit` gets the copy opened read-write at offset 0 and edits it in place. `expect` is the
    (size, mtime_ns) the caller saw when it read the file; if the file differs from it (or changes
    while we work) nothing is written. Symlinks are followed, so the link stays a link. On any
    failure the temp file is removed, the original is untouched and SafeWriteError (for OS-level
    problems) or the exception `edit` raised propagates.
    """
    real = Path(os.path.realpath(path))
    try:
        before = os.stat(real)
    except OSError as e:
        raise SafeWriteError(describe_os_error(e)) from e
    if not stat.S_ISREG(before.st_mode):
        raise SafeWriteError("not a regular file")
    if expect is not None and (before.st_size, before.st_mtime_ns) != tuple(expect):
        raise SafeWriteError("file changed during tag write")
    if _is_read_only(before, real):
        raise SafeWriteError("read-only file (no write permission)")

    tmp_name: str | None = None
    lock_fd: int | None = None
    try:
        _check_space(real.parent, before.st_size)
        lock_fd, tmp_name = tempfile.mkstemp(
            prefix=_temp_prefix(real), suffix=TEMP_SUFFIX, dir=real.parent
        )
        if fcntl is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # held until the end: this copy is in use
        # Reopened by name so the file object carries it (mutagen and errors show it).
        with open(tmp_name, "w+b") as tmp:
            with open(real, "rb") as src:
                shutil.copyfileobj(src, tmp, _COPY_CHUNK)
            _check_unchanged(real, before)
            tmp.flush()
            tmp.seek(0)
            edit(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        if (before.st_uid, before.st_gid) != (os.stat(tmp_name).st_uid, os.stat(tmp_name).st_gid):
            try:
                os.chown(tmp_name, before.st_uid, before.st_gid)
            except PermissionError as e:
                raise SafeWriteError("cannot keep the file's owner or group") from e
        # After chown, which may clear set-id bits.
        os.chmod(tmp_name, stat.S_IMODE(before.st_mode))
        _check_unchanged(real, before)
        os.replace(tmp_name, real)
        tmp_name = None
    except OSError as e:
        raise SafeWriteError(describe_os_error(e)) from e
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
        if lock_fd is not None:
            os.close(lock_fd)
    try:
        _fsync_dir(real.parent)
    except OSError as e:
        reason = describe_os_error(e)
        raise SafeWriteError(f"file written, but its folder could not be synced: {reason}") from e
