"""The paths a command was given to walk (scan, untag): which of them are not there.

A path that does not exist is the user's typo or a drive that is not mounted, not a track: it is
one failure line naming it, the other paths are still walked, and it never becomes an index row
(a row would claim a track there). Only when every path is missing is there nothing to do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mertag.tagger.display import display


def split_roots(roots: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the roots that are there, as given; the missing ones, each with a one-line reason).

    A root that exists but cannot be checked (permission denied on a folder above it, a symlink
    loop) counts as there: the walk reports it, as it reports any path it cannot read.
    """
    present: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for root in roots:
        try:
            os.stat(root)
        except (FileNotFoundError, NotADirectoryError):
            reason = "a broken symlink" if os.path.islink(root) else "no such file or folder"
            missing.append((root, reason))
            continue
        except OSError:
            pass
        present.append(root)
    return present, missing


def nothing_there(missing: Sequence[tuple[Path, str]]) -> str:
    """The one line for a command none of whose paths exist."""
    return "; ".join(f"{display(path)}: {reason}" for path, reason in missing)
