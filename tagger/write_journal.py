"""The recovery journal of an in-place tag write: a complete, verified copy of the tagged file plus
a record saying which inode it belongs in, so a write killed half-way is finished by the next run.

A tag write (mertag.tagger.safe_write) writes the finished copy back into the file's own inode, so
every hard link sees the new tags and the extended attributes, ACLs, owner and mode stay where they
are. Before the first byte of the file is overwritten, a journal record naming the copy, its size
and sha256, and the file's (dev, ino) is made durable beside the file, under a name derived from
the file's own. Whoever finds a record whose writer is gone (the writer holds an flock on it while
it lives) copies the copy into the inode again, then removes the record and the copy; doing it
twice gives the same bytes, so a kill during the replay is replayed in turn.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock, so a journal is only ever replayed by its own writer
    fcntl = None  # type: ignore[assignment]

#: The journal record of a write in progress ends with this (hidden: the name starts with '.').
JOURNAL_SUFFIX = ".mertag-journal"

#: Temp copies end with this; the library walker skips names starting with '.' or ending so.
TEMP_SUFFIX = ".mertag-tmp"

_CHUNK = 1 << 20

#: Set on the file itself while its write-back is pending, naming the journal: an inode's
#: extended attribute, so a write through any of its hard links (in any folder) finds it.
MARK_XATTR = "user.mertag.journal"


#: What os.link fails with where the file system has no hard links (FAT and exFAT say EPERM).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


class JournalError(Exception):
    """An interrupted write could not be finished; the message is a one-line reason."""


@dataclass(frozen=True)
class JournalRecord:
    """What the replay needs: the copy to write back, how to check it, and where it belongs."""

    target: str  # the file's name in its folder (os.fsdecode form)
    copy: str  # the complete tagged copy's name in the same folder
    size: int
    sha256: str
    dev: int
    ino: int
    old_size: int  # the file as it was before the write-back began
    old_mtime_ns: int


def temp_prefix(path: Path) -> str:
    """The start of a temp name for `path`: recognisable, short enough for a 255-byte name limit."""
    stem = os.fsdecode(os.fsencode(path.name)[:60])
    return f".{stem}."


def journal_path(path: Path) -> Path:
    """Where the journal of a write to `path` lives: beside it, one fixed name per file name."""
    tag = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:12]
    return path.with_name(f"{temp_prefix(path)}{tag}{JOURNAL_SUFFIX}")


def file_digest(fileobj: BinaryIO) -> str:
    """sha256 (hex) of a whole open file."""
    fileobj.seek(0)
    digest = hashlib.sha256()
    while chunk := fileobj.read(_CHUNK):
        digest.update(chunk)
    fileobj.seek(0)
    return digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new or removed name) durable, where the file system can."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems cannot sync a directory; the entry change has happened all the same.
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def create(record: JournalRecord, folder: Path) -> int:
    """Make `record` durable under its journal name, locked; returns the lock's fd (close it
    after `discard`). OSError if another journal for the file already exists (FileExistsError).

    The record is written whole to a locked temp name first and then linked to the journal name,
    so a journal that exists is always complete, and its inode is locked from its first instant.
    A file system without hard links (FAT and exFAT: memory cards, USB drives, players) gets it
    renamed there instead, once no journal is there: just as whole, and no other writer can race
    for the name, since the caller holds the lock on the file the journal belongs to.
    """
    target = folder / record.target
    journal = journal_path(target)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=folder)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(asdict(record)).encode("ascii"))
        os.fsync(fd)
        try:
            os.link(tmp, journal)
            os.unlink(tmp)
        except OSError as e:
            if e.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(journal):
                raise FileExistsError(
                    errno.EEXIST, "a journal is there already", str(journal)
                ) from e
            os.rename(tmp, journal)
        fsync_dir(folder)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.close(fd)
        raise
    return fd


def discard(target: Path, copy: Path) -> None:
    """The write-back is complete: the journal goes first, then the copy it pointed to."""
    os.unlink(journal_path(target))
    fsync_dir(target.parent)
    try:
        os.unlink(copy)
    except FileNotFoundError:
        pass


def mark(fd: int, journal: Path) -> None:
    """Note `journal` on the open file's inode (skipped where the file system has no user
    extended attributes: then only a write through the same name finds the journal)."""
    if hasattr(os, "setxattr"):
        try:
            os.setxattr(fd, MARK_XATTR, os.fsencode(journal))
        except OSError:
            pass


def unmark(target: Path | int) -> None:
    """Take the note off the file again (the write-back is finished or was never begun)."""
    if hasattr(os, "removexattr"):
        try:
            os.removexattr(target, MARK_XATTR)
        except OSError:
            pass


def marked_journal(path: Path) -> Path | None:
    """The journal of a pending write-back into `path`'s inode, made through whichever name."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        return Path(os.fsdecode(os.getxattr(path, MARK_XATTR)))
    except OSError:
        return None


def reserve(fd: int, size: int, before: os.stat_result) -> None:
    """Reserve the blocks a file growing to `size` bytes needs, so a full disk is met before any
    byte of it changes; on failure the file is as it was (size and mtime) and OSError is raised.
    """
    if size <= before.st_size or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, before.st_size, size - before.st_size)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EINVAL, errno.EOPNOTSUPP):
            return  # this file system cannot reserve: the write meets the full disk itself
        os.ftruncate(fd, before.st_size)
        os.utime(fd, ns=(before.st_atime_ns, before.st_mtime_ns))
        raise


def write_back(src: BinaryIO, dst_fd: int, size: int) -> None:
    """Make the file open as `dst_fd` hold exactly the `size` bytes of `src`, in place.

    Only the 1 MB blocks that differ are written: a tag edit that fits the file's padding touches
    the first block alone.
    """
    src.seek(0)
    offset = 0
    while offset < size:
        new = src.read(min(_CHUNK, size - offset))
        if not new:
            raise OSError(errno.EIO, "input/output error")  # the copy is shorter than recorded
        if _read_at(dst_fd, len(new), offset) != new:
            view = memoryview(new)
            written = 0
            while written < len(new):
                os.lseek(dst_fd, offset + written, os.SEEK_SET)
                written += os.write(dst_fd, view[written:])
        offset += len(new)
    os.ftruncate(dst_fd, size)
    os.fsync(dst_fd)


def _read_at(fd: int, size: int, offset: int) -> bytes:
    """Up to `size` bytes at `offset` (os.pread where the OS has it; Windows has not)."""
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    while size > 0 and (chunk := os.read(fd, size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_record(path: Path) -> JournalRecord:
    try:
        data = json.loads(path.read_bytes())
        return JournalRecord(**data)
    except (ValueError, TypeError) as e:
        raise JournalError(f"unreadable journal {path.name}") from e


def pending(folder: Path) -> list[Path]:
    """The journal records in `folder` (live writers' included)."""
    try:
        with os.scandir(folder) as it:
            return sorted(
                folder / e.name
                for e in it
                if e.name.startswith(".") and e.name.endswith(JOURNAL_SUFFIX)
            )
    except OSError:
        return []  # the walk has already reported a folder it could not list


def writer_gone(journal: Path) -> bool:
    """Whether the writer of an existing `journal` is gone (its write was interrupted), without
    changing anything: its lock is free. Windows has no flock: every journal counts as one."""
    if fcntl is None:
        return True
    try:
        fd = os.open(journal, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # finished meanwhile (or not ours to read: the replay will say so)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its writer holds it: a write in progress
    except OSError:
        pass  # no locks on this file system: it cannot be told, so it counts
    finally:
        os.close(fd)  # drops the shared lock at once
    return True


def replay(journal: Path) -> Path | None:
    """Finish the write `journal` records if its writer is dead; returns the file it finished.

    None when the writer still runs (its lock is held). When the file at the recorded name is no
    longer the recorded inode, the journal is obsolete and goes with its copy, the file untouched;
    but where that file looks written to since the journal was made, it may be the very file, half
    written, under another inode number (a drive mounted again: FUSE's exFAT numbers inodes anew
    at each mount, and a USB drive may come back with another device number), so the journal and
    the complete copy stay and JournalError says so: nothing is written, and nothing is lost.
    """
    try:
        lock = os.open(journal, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None  # finished meanwhile by its writer or another replay
    try:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
        if not journal.exists():
            return None  # finished and removed between our open and our lock
        record = _read_record(journal)
        folder = journal.parent
        target, copy = folder / record.target, folder / record.copy
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        journal_ns = os.stat(journal).st_mtime_ns
        if not _written_since(st, record, journal_ns):
            if (
                st is not None
                and not _same_inode(st, record)
                and _looks_written(st, record, journal_ns)
            ):
                raise JournalError(
                    f"cannot finish the interrupted tag write of {target.name}: the file there is "
                    f"not the inode it was for (mounted again?), so it is left as it is; its "
                    f"complete tagged copy is {copy.name}, beside it"
                )
            discard(target, copy)
            if st is not None and _same_inode(st, record):
                unmark(target)
            return None
        with open(copy, "rb") as src:
            if os.fstat(src.fileno()).st_size != record.size or file_digest(src) != record.sha256:
                raise JournalError(f"the tagged copy {copy.name} does not match its journal")
            dst = os.open(target, os.O_RDWR)
            try:
                if fcntl is not None:
                    fcntl.flock(dst, fcntl.LOCK_EX)
                write_back(src, dst, record.size)
                discard(target, copy)
                unmark(dst)
            finally:
                os.close(dst)
        return target
    except OSError as e:
        raise JournalError(f"cannot finish an interrupted tag write: {e.strerror or e}") from e
    finally:
        os.close(lock)


def _written_since(st: os.stat_result | None, record: JournalRecord, journal_ns: int) -> bool:
    """Whether the file is the recorded one and its write-back had begun: same inode, changed
    since the journal was made, and of the old or the new size (the write-back changes the size
    only to the copy's). Anything else is the untouched original or a file put there since (a
    recycled inode number), which the replay must leave alone."""
    if st is None or not _same_inode(st, record):
        return False
    if (st.st_size, st.st_mtime_ns) == (record.old_size, record.old_mtime_ns):
        return False  # not a byte written yet: the original is whole
    return _looks_written(st, record, journal_ns)


def _same_inode(st: os.stat_result, record: JournalRecord) -> bool:
    return (st.st_dev, st.st_ino) == (record.dev, record.ino)


def _looks_written(st: os.stat_result, record: JournalRecord, journal_ns: int) -> bool:
    """Changed since the journal was made, and of a size the write-back leaves."""
    return st.st_mtime_ns >= journal_ns and st.st_size in (record.old_size, record.size)


def finish_interrupted_writes(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Replay every dead writer's journal in `folder`: (files finished, (journal, reason) for the
    ones that could not be finished and stay for the next try)."""
    done: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for journal in pending(folder):
        try:
            target = replay(journal)
        except JournalError as e:
            problems.append((journal, str(e)))
            continue
        if target is not None:
            done.append(target)
    return done, problems


def referenced_copies(folder: Path) -> set[str]:
    """Names of the copies that journals in `folder` still need (never delete those)."""
    names: set[str] = set()
    for journal in pending(folder):
        try:
            names.add(_read_record(journal).copy)
        except (JournalError, OSError):
            continue
    return names
