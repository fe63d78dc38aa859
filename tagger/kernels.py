"""librosa's numba kernels: compiled once, by one process, into mertag's own cache folder.

librosa compiles numba kernels when it is imported and on first use, and caches them beside
itself. Two scan workers compiling at once after a fresh install race on that cache (numba
issue #10128): a worker could die with SIGSEGV, and the damaged cache then crashed every later
scan. So every mertag process points numba at a cache of mertag's own (`use_kernel_cache`, run
when `mertag.tagger` is imported), one per Python, numba and librosa version, and before any
worker starts a scan has the kernels compiled and checked by a single child process, under a
file lock that other mertag processes wait on (`prepare_kernels`). A cache whose check fails
(the child dies, or raises) is wiped and built again once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"
READY_FILE = "READY"
LOCK_FILE = ".lock"
CHECK_SECONDS = 3.0
"""Length of the synthetic signal the check runs through the librosa features."""


class KernelError(Exception):
    """The audio kernels could not be compiled: the message names the cache and the reason."""


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
    """Point numba at mertag's cache, unless the user chose one (NUMBA_CACHE_DIR) or numba is
    already imported (then it is too late, and numba keeps its own choice)."""
    if NUMBA_CACHE_ENV in os.environ or "numba" in sys.modules:
        return
    os.environ[NUMBA_CACHE_ENV] = str(kernel_cache_dir())


def compile_kernels() -> None:
    """Import librosa and run the seed features once, so that every kernel a scan uses is
    compiled and cached (run in the child process of `prepare_kernels`)."""
    import numpy as np

    from mertag.tagger.audio import SAMPLE_RATE
    from mertag.tagger.features import cache_filters, frame_features

    cache_filters()
    t = np.arange(int(CHECK_SECONDS * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
    y = (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    frame_features(y)


def _check_in_child() -> str | None:
    """Compile and check the kernels in a child process; None, or why it failed."""
    code = "from mertag.tagger.kernels import compile_kernels; compile_kernels()"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        import signal

        return f"the compiling process died ({signal.Signals(-done.returncode).name})"
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"the compiling process exited with {done.returncode}"


def _wipe(cache: Path) -> None:
    for entry in cache.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def kernels_ready() -> bool:
    """Whether the kernels in the cache numba uses were compiled and checked."""
    cache = os.environ.get(NUMBA_CACHE_ENV)
    return cache is not None and (Path(cache) / READY_FILE).is_file()


def distrust_kernels() -> None:
    """Have the next scan check the kernel cache again (a worker died: it may be the cache)."""
    cache = os.environ.get(NUMBA_CACHE_ENV)
    if cache is not None:
        (Path(cache) / READY_FILE).unlink(missing_ok=True)


def prepare_kernels(on_prepare: Callable[[], None] | None = None) -> None:
    """Make sure the kernel cache is compiled and sound before workers start; `on_prepare` is
    called when that takes real work (once after an install). Raises KernelError."""
    use_kernel_cache()
    if NUMBA_CACHE_ENV not in os.environ or kernels_ready():
        return
    from filelock import FileLock

    cache = Path(os.environ[NUMBA_CACHE_ENV])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache / LOCK_FILE)):
            if kernels_ready():
                return  # another mertag process prepared them while this one waited
            if on_prepare is not None:
                on_prepare()
            reason = _check_in_child()
            if reason is not None:
                _wipe(cache)  # a damaged cache: build it anew, once
                reason = _check_in_child()
            if reason is not None:
                raise KernelError(f"cannot prepare the audio kernels in {cache}: {reason}")
            (cache / READY_FILE).write_text("compiled and checked by mertag\n", encoding="utf-8")
    except OSError as exc:
        raise KernelError(
            f"cannot prepare the audio kernels in {cache}: {exc.strerror or exc}"
        ) from exc
