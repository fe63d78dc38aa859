"""numba's cache for the processes that import librosa: a folder of mertag's own.

A scan imports neither librosa nor numba: its features are computed in numpy
(`mertag.tagger.spectral`, `mertag.tagger.constant_q`). The trainer's augmentations and the
seed-paper comparison still call librosa, whose numba kernels are compiled on first use and
cached beside librosa itself by default: a read-only install could not keep them, and two
processes compiling into that one folder at once race on it (numba issue #10128). So every
mertag process points numba at a cache of its own (`use_kernel_cache`, run when `mertag.tagger`
is imported, takes effect when numba is imported), one per Python, numba and librosa version, in
the user cache folder.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def kernel_cache_dir() -> Path:
    """mertag's numba cache for this Python, numba and librosa (in the user cache folder)."""
    from platformdirs import user_cache_dir

    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    tag += f"-numba{_version('numba')}-librosa{_version('librosa')}"
    return Path(user_cache_dir("mertag", appauthor=False)) / "kernels" / tag


def use_kernel_cache() -> None:
    """Point numba at mertag's cache when numba is imported, unless the user chose one
    (NUMBA_CACHE_DIR) or numba is already imported (then it is too late, and numba keeps its own
    choice). The folder is named only then: a process that never imports numba (a scan, `mertag
    --help`) does not pay for reading the packages' versions."""
    if NUMBA_CACHE_ENV in os.environ or "numba" in sys.modules:
        return
    if not any(isinstance(finder, _NumbaCacheHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NumbaCacheHook())


class _NumbaCacheHook(importlib.abc.MetaPathFinder):
    """Sets NUMBA_CACHE_DIR as numba's import starts (numba reads it when imported), then lets
    the usual finders import numba."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "numba":
            sys.meta_path.remove(self)
            if NUMBA_CACHE_ENV not in os.environ:
                os.environ[NUMBA_CACHE_ENV] = str(kernel_cache_dir())
        return None
