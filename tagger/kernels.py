"""librosa's numba kernels: compiled once, by one process, into mertag's own cache folder.

librosa compiles numba kernels when it is imported and on first use, and caches them beside
itself. Two scan workers compiling at once after a fresh install race on that cache (numba
issue #10128): a worker could die with SIGSEGV, and the damaged cache then crashed every later
scan. So every mertag process points numba at a cache of mertag's own (`use_kernel_cache`, run
when `mertag.tagger` is imported), one per Python, numba and librosa version, and before any
worker starts a scan has the kernels compiled and checked by a single child process, under a
file lock that other mertag processes wait on (`prepare_kernels`). A cache whose check fails
(the child dies, or raises) is wiped and built again once.

librosa also declares some of its numba ufuncs with every dtype they may take (`_localmax` five,
`__peak_pick` four, ...), and numba compiles, or loads from the cache, every one of those loops
when librosa's module is imported: ~13 s of CPU after an install and a few tenths of a second
in every later process, though a scan calls three of them, on float32 only. In a scan's processes
(`prepare_kernels` marks them with LAZY_ENV) each such ufunc is built on its first call instead,
with the one loop its arguments select as numpy would (`_DeferredUfunc`); the loop is the same
compiled code, so every value is the same.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"
LAZY_ENV = "MERTAG_LAZY_KERNELS"
"""Set (to "1") in a scan's processes: librosa's ufunc kernels are built on first call."""
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
    already imported (then it is too late, and numba keeps its own choice). In a scan's
    processes (LAZY_ENV), also defer librosa's ufunc kernels (`defer_librosa_kernels`)."""
    if os.environ.get(LAZY_ENV) == "1":
        defer_librosa_kernels()
    if NUMBA_CACHE_ENV in os.environ or "numba" in sys.modules:
        return
    os.environ[NUMBA_CACHE_ENV] = str(kernel_cache_dir())


def defer_librosa_kernels() -> None:
    """Have numba build each of librosa's eagerly typed ufuncs on its first call, with only the
    loop that call needs, from now on in this process (and, through LAZY_ENV, in the processes
    it starts). Too late once librosa's modules are imported: then nothing changes."""
    os.environ[LAZY_ENV] = "1"
    numba = sys.modules.get("numba")
    if numba is not None:
        _patch_numba(numba)
    elif not any(isinstance(finder, _NumbaHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NumbaHook())


class _NumbaHook(importlib.abc.MetaPathFinder):
    """Patches numba's ufunc decorators as soon as numba is imported (`_patch_numba`), so that
    importing mertag costs no numba import."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "numba":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("numba")
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch_numba(module)


def _patch_numba(numba: ModuleType) -> None:
    if getattr(numba.guvectorize, "mertag_deferred", False):
        return
    numba.guvectorize = _deferring(numba.guvectorize, gufunc=True)  # type: ignore[attr-defined]
    numba.vectorize = _deferring(numba.vectorize, gufunc=False)  # type: ignore[attr-defined]


def _deferring(decorator: Callable[..., Any], gufunc: bool) -> Callable[..., Any]:
    """numba's `guvectorize` or `vectorize`, but a librosa function given a list of signatures
    becomes a `_DeferredUfunc`; anything else is decorated as numba would."""

    @functools.wraps(decorator)
    def deferred(*args: Any, **kwargs: Any) -> Any:
        signatures = args[0] if args else None
        typed = len(args) == (2 if gufunc else 1) and isinstance(signatures, list | tuple)
        if not typed or not signatures or kwargs.get("target", "cpu") != "cpu":
            return decorator(*args, **kwargs)

        def wrap(func: Callable[..., Any]) -> Any:
            if not getattr(func, "__module__", "").startswith("librosa."):
                return decorator(*args, **kwargs)(func)
            return _DeferredUfunc(func, decorator, list(signatures), args[1:], kwargs)

        return wrap

    deferred.mertag_deferred = True  # type: ignore[attr-defined]
    return deferred


class _DeferredUfunc:
    """A numba ufunc built on first call. A call whose positional inputs pick one of the typed
    loops exactly (arrays of that loop's dtypes, Python scalars of its kinds), and which numpy
    could not give to an earlier loop, gets a ufunc of that loop alone; any other call, or
    attribute, the ufunc of every loop, as numba would have built it at import."""

    def __init__(
        self,
        func: Callable[..., Any],
        decorator: Callable[..., Any],
        signatures: list[Any],
        rest: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        functools.update_wrapper(self, func)
        self._func, self._decorator = func, decorator
        self._signatures, self._rest, self._kwargs = signatures, rest, kwargs
        self._loops: list[tuple[Any, ...]] | None = None
        self._built: dict[int | None, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ufunc(self._loop(args))(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name.startswith("_DeferredUfunc"):
            raise AttributeError(name)
        return getattr(self._ufunc(None), name)

    def _ufunc(self, loop: int | None) -> Any:
        if loop not in self._built:
            chosen = self._signatures if loop is None else [self._signatures[loop]]
            self._built[loop] = self._decorator(chosen, *self._rest, **self._kwargs)(self._func)
        return self._built[loop]

    def _loop(self, args: tuple[Any, ...]) -> int | None:
        """The index of the one loop these inputs select, or None when not sure."""
        loops = self._input_dtypes()
        inputs = args[: len(loops[0])]
        if len(inputs) < len(loops[0]):
            return None
        for k, dtypes in enumerate(loops):
            if all(map(_exact, inputs, dtypes)):
                earlier = any(all(map(_may_cast, inputs, loops[j])) for j in range(k))
                return None if earlier else k
        return None

    def _input_dtypes(self) -> list[tuple[Any, ...]]:
        if self._loops is None:
            from numba.core import sigutils
            from numba.np.numpy_support import as_dtype

            if self._rest:  # a gufunc: its layout says how many of the arguments are inputs
                count = self._rest[0].split("->")[0].count("(")
            else:
                count = None
            loops = []
            for signature in self._signatures:
                types, _ = sigutils.normalize_signature(signature)
                types = types[:count] if count is not None else types
                loops.append(tuple(as_dtype(getattr(t, "dtype", t)) for t in types))
            self._loops = loops
        return self._loops


def _exact(value: Any, dtype: Any) -> bool:
    """Whether numpy gives `value` to a loop taking `dtype` without any doubt."""
    import numpy as np

    if isinstance(value, np.ndarray | np.generic):
        return bool(value.dtype == dtype)
    if isinstance(value, bool):
        return bool(dtype.kind == "b")
    if isinstance(value, int):
        return bool(dtype.kind in "iu")
    if isinstance(value, float):
        return bool(dtype.kind == "f")
    if isinstance(value, complex):
        return bool(dtype.kind == "c")
    return False


def _may_cast(value: Any, dtype: Any) -> bool:
    """Whether numpy might give `value` to a loop taking `dtype` (Python scalars: maybe)."""
    import numpy as np

    if isinstance(value, np.ndarray | np.generic):
        return bool(np.can_cast(value.dtype, dtype, "safe"))
    return True


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
    defer_librosa_kernels()
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
