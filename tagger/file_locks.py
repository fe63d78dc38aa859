"""Telling a dead writer's temp file from a live one's, and deleting only the former.

Every writer of mertag's holds an flock on its temp file from the moment it creates it until the
file is renamed into place or deleted, so a temp file that can be locked belongs to a writer that
was killed. Where flock is missing (Windows), no temp file is ever taken for a dead writer's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

HAVE_FLOCK = fcntl is not None


def delete_unless_locked(path: Path, min_age: float = 0.0) -> bool:
    """Delete `path` if no live writer holds its flock and it has not changed for `min_age`
    seconds; whether it was deleted. A symlink, a file gone or one that cannot be opened or
    deleted is left alone (False)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while it is deleted
        if time.time() - os.fstat(fd).st_mtime < min_age:
            return False
        os.unlink(path)
        return True
    except OSError:
        return False  # a live writer's, or not ours to delete
    finally:
        os.close(fd)


def lock(fd: int) -> None:
    """Take the flock that marks the file open at `fd` as a live writer's (no-op without flock)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
