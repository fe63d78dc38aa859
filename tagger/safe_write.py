"""Crash-safe rewrite of one file in its own inode: edit a private copy, then write it back.

A tag save done in place can leave a half-written music file behind if the process is killed or
the disk fills up; a save that renames a copy over the file gives it a new inode, which splits hard
links (the other names keep the old, untagged file) and drops extended attributes and ACLs. Here a
copy is edited, verified and synced first; then a recovery journal is made durable
(mertag.tagger.write_journal) and the copy is written back into the original inode. A kill at any
moment leaves the old file, or a journal that the next run replays (finish_interrupted_writes)
before it touches the file, giving the fully tagged file. Owner, mode, xattrs, ACLs and every hard
link are kept because the inode is; the file gets a new mtime, as after any tag editor.

A writer killed before its journal exists leaves only its hidden temp copy, which the walker
skips. The writer holds an flock on the copy and on the file while it works, so
`remove_stale_temps` can tell a dead writer's copy from a live one and delete only the former, and
two writers (through two hard links, say) never interleave.
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

from mertag.tagger.file_locks import HAVE_FLOCK, delete_unless_locked, lock
from mertag.tagger.write_journal import (
    TEMP_SUFFIX,
    JournalError,
    JournalRecord,
    create,
    discard,
    file_digest,
    finish_interrupted_writes,
    journal_path,
    mark,
    marked_journal,
    referenced_copies,
    replay,
    reserve,
    temp_prefix,
    unmark,
    write_back,
    writer_gone,
)

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temp files are left for the user to delete
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "TEMP_SUFFIX",
    "finish_interrupted_writes",
    "finish_own_journal",
    "interrupted_write",
    "left_in_dry_run",
    "remove_stale_temps",
    "rewrite_file",
    "settle_interrupted_write",
]

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


class FileChangedError(SafeWriteError):
    """The file is not the one the caller read (or it changed while the copy was made)."""

    def __init__(self) -> None:
        super().__init__("file changed during tag write")


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


def _check_space(folder: Path, size: int) -> None:
    """Refuse before copying when the folder's file system cannot hold a copy of `size` bytes."""
    st = os.statvfs(folder)
    if st.f_bavail * st.f_frsize < size + _SPACE_MARGIN:
        mb = -(-(size + _SPACE_MARGIN) // (1 << 20))
        raise SafeWriteError(f"no space left on device (the tag write needs {mb} MB free)")


_FOLDER_NOT_WRITABLE = "the folder is not writable (mertag writes a temporary copy beside the file)"
"""Why a file that is writable itself cannot be tagged: its folder refuses the copy."""


def _make_copy_file(real: Path) -> tuple[int, str]:
    """Create the hidden temp copy's file beside `real` (its fd and name); a folder that refuses
    it (permissions, a read-only mount inside the library) says so, since the file looks fine."""
    try:
        return tempfile.mkstemp(prefix=temp_prefix(real), suffix=TEMP_SUFFIX, dir=real.parent)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise SafeWriteError(f"{_FOLDER_NOT_WRITABLE}: {describe_os_error(e)}") from e
        raise


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp copies in `folder` left by writers that were killed; returns them.

    Interrupted write-backs are finished first (finish_interrupted_writes), and a copy that a
    journal still needs is never deleted. A live writer holds an flock on its copy, so its copy is
    left alone. A copy that cannot be checked or removed stays too: it is hidden and skipped by the
    walker, and the next call tries again.
    """
    if not HAVE_FLOCK:
        return []
    finish_interrupted_writes(folder)
    needed = referenced_copies(folder)
    try:
        with os.scandir(folder) as it:
            names = [
                e.name
                for e in it
                if _is_temp_name(e.name)
                and e.name not in needed
                and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []  # the walk has already reported a folder it could not list
    # gone already (another scan cleaned it), unreadable, or locked by a live writer: left
    return [folder / name for name in names if delete_unless_locked(folder / name)]


def _check_unchanged(fd: int, before: os.stat_result) -> None:
    now = os.fstat(fd)
    same = (now.st_size, now.st_mtime_ns, now.st_ino, now.st_dev) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
        before.st_dev,
    )
    if not same:
        raise FileChangedError


def _own_journals(real: Path) -> tuple[list[Path], Path | None]:
    """Where a journal of a write to the file at `real` (its real path) can be: beside it under
    its name, and where the note on its inode points (a write through another hard link); and
    that note."""
    marked = marked_journal(real)
    return list(dict.fromkeys(j for j in (journal_path(real), marked) if j is not None)), marked


def interrupted_write(path: Path) -> Path | None:
    """The journal of an earlier write to this file whose writer was killed half-way (through
    this name or another hard link), or None. Nothing is changed: this is for the runs that must
    not write (a dry run, --no-write), which leave the file as it is and say so; any write to
    the file, or the next scan that writes tags, finishes it."""
    # A folder link leads to the same folder, so only a file link needs its real name (a whole
    # realpath costs about as much as the rest for every track of a scan).
    journals, _ = _own_journals(Path(os.path.realpath(path)) if os.path.islink(path) else path)
    for journal in journals:
        if os.path.lexists(journal) and writer_gone(journal):
            return journal
    return None


def settle_interrupted_write(path: Path, may_write: bool) -> bool:
    """Whether `path` can be worked on as it is: no earlier write of it was interrupted, or a run
    that may write has just finished that write (SafeWriteError when it cannot). False for a run
    that must not write (a dry run, --no-write), which leaves such a file alone: its bytes are
    part old, part new. For a write made through any name: a folder's own journals are finished
    by `finish_interrupted_writes`, but one made through a hard link or symlink elsewhere only
    here."""
    if interrupted_write(path) is None:
        return True
    if not may_write:
        return False
    finish_own_journal(path)
    return True


def left_in_dry_run(command: str) -> str:
    """Why a dry run of `command` leaves a file with an interrupted write alone: its tags are
    part old, part new, so what would change cannot be told; the real run finishes it first."""
    return (
        "an interrupted mertag tag write is pending (left as it is in a dry run; "
        f"`{command}` without --dry-run finishes it first)"
    )


def finish_own_journal(path: Path) -> None:
    """A killed earlier write of this very file (through this name, or through another hard link:
    the inode carries a note of its journal) is finished before anything else touches it;
    SafeWriteError when it cannot be (or another writer holds it)."""
    real = Path(os.path.realpath(path))
    journals, marked = _own_journals(real)
    for journal in journals:
        if not os.path.lexists(journal):
            if journal == marked:
                unmark(real)  # its write-back finished before the note could be taken off
            continue
        try:
            replay(journal)
        except JournalError as e:
            raise SafeWriteError(str(e)) from e
        if os.path.lexists(journal):
            raise SafeWriteError("another mertag process is writing this file")


def _lock_target(fd: int) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        raise SafeWriteError("another mertag process is writing this file") from e


def rewrite_file(
    path: Path, edit: Callable[[BinaryIO], None], *, expect: tuple[int, int] | None = None
) -> None:
    """Apply `edit` to a copy of `path`, then write the edited copy back into `path`'s inode.

    `edit` gets the copy opened read-write at offset 0 and edits it in place (and may check its
    result: it is read back before the original is touched). `expect` is the (size, mtime_ns) the
    caller saw when it read the file; if the file differs from it (or changes while we work)
    nothing is written. Symlinks are followed, so the link stays a link. On any failure before the
    write-back the temp file is removed, the original is untouched and SafeWriteError (for
    OS-level problems) or the exception `edit` raised propagates.
    """
    real = Path(os.path.realpath(path))
    finish_own_journal(real)
    try:
        before = os.stat(real)
    except OSError as e:
        raise SafeWriteError(describe_os_error(e)) from e
    if not stat.S_ISREG(before.st_mode):
        raise SafeWriteError("not a regular file")
    if expect is not None and (before.st_size, before.st_mtime_ns) != tuple(expect):
        raise FileChangedError
    if _is_read_only(before, real):
        raise SafeWriteError("read-only file (no write permission)")

    tmp_name: str | None = None
    journaled = False  # a journal needs the copy: it must stay
    fds: list[int] = []
    try:
        target_fd = os.open(real, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        fds.append(target_fd)
        _lock_target(target_fd)  # held to the end: no other writer, through any hard link
        _check_unchanged(target_fd, before)
        _check_space(real.parent, before.st_size)
        lock_fd, tmp_name = _make_copy_file(real)
        fds.append(lock_fd)
        lock(lock_fd)  # held until the end: this copy is in use
        # Reopened by name so the file object carries it (mutagen and errors show it).
        with open(tmp_name, "w+b") as tmp:
            with open(target_fd, "rb", closefd=False) as src:
                src.seek(0)
                shutil.copyfileobj(src, tmp, _COPY_CHUNK)
            _check_unchanged(target_fd, before)
            tmp.flush()
            tmp.seek(0)
            edit(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
            size = os.fstat(tmp.fileno()).st_size
            record = JournalRecord(
                target=real.name,
                copy=os.path.basename(tmp_name),
                size=size,
                sha256=file_digest(tmp),
                dev=before.st_dev,
                ino=before.st_ino,
                old_size=before.st_size,
                old_mtime_ns=before.st_mtime_ns,
            )
            _check_unchanged(target_fd, before)
            fds.append(create(record, real.parent))
            journaled = True
            mark(target_fd, journal_path(real))
            # From here on the journal finishes the write if we are killed.
            try:
                reserve(target_fd, size, before)
            except OSError:
                discard(real, Path(tmp_name))  # nothing was written: the file is as it was
                unmark(target_fd)
                journaled = False
                raise
            try:
                write_back(tmp, target_fd, size)
            except OSError as e:
                reason = describe_os_error(e)
                raise SafeWriteError(
                    f"tag write interrupted ({reason}); the next scan finishes it from its copy"
                ) from e
        discard(real, Path(tmp_name))
        unmark(target_fd)
        journaled = False
    except FileExistsError as e:
        raise SafeWriteError("another mertag process is writing this file") from e
    except OSError as e:
        raise SafeWriteError(describe_os_error(e)) from e
    finally:
        if tmp_name is not None and not journaled:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
        for fd in reversed(fds):
            os.close(fd)
