"""Where a scan's tracks are analysed: in this process, in worker processes here, or on Dask.

Both backends run the scan's per-track work through joblib and hand each TrackOutcome back as it
finishes, in any order; the scan alone writes the index.

- local (the default): joblib's loky worker processes on this machine; each one decodes,
  extracts, classifies and writes the track's tags.
- dask (`--backend dask --scheduler ADDRESS`): joblib's Dask backend sends each track to a
  dask.distributed worker, which decodes, extracts and classifies it; the client (the process
  running `mertag scan`) writes the tags and the index. So workers need mertag installed and
  read access to the library at the same absolute paths as the client, and nothing else: the
  model travels with the tasks, and a track re-run because its worker died has no write to
  repeat.

A worker process is prepared once, on its first track: BLAS is held to one thread (the pipeline
multiplies small matrices, where BLAS threads only fight the other workers for the cores: with
two threads on a busy machine a 40x1025 mel product took 10 ms instead of 0.1 ms), the
constant-Q filter banks are kept (`mertag.tagger.features.cache_filters`), and glibc's allocator
gets
fixed thresholds (see `_steady_malloc`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mertag.tagger.scan import ScanOptions, TrackOutcome
    from mertag.tagger.tags import TagOptions

BACKENDS = ("local", "dask")
CONNECT_TIMEOUT_S = 30.0
"""How long the client tries to reach the scheduler, and waits for a first worker."""


class BackendError(Exception):
    """The chosen backend cannot run the scan (dask missing, scheduler unreachable)."""


_WARM = False


def _steady_malloc() -> None:
    """Give glibc's allocator the thresholds it settles on by itself in a long-lived process.

    dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins the mmap
    threshold at 128 kB: every larger array (the constant-Q transforms make many) is then a fresh
    mmap, page-faulted in and unmapped again, and a track costs ~40 % more CPU. 32 MB / 64 MB is
    where glibc's dynamic thresholds end up; set explicitly, every worker behaves the same.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return  # not glibc (e.g. musl)
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 64 << 20)


def warm_process() -> None:
    """Prepare a worker process once, before its first track (see the module docstring)."""
    global _WARM
    if _WARM:
        return
    _steady_malloc()
    from threadpoolctl import threadpool_limits

    from mertag.tagger.features import cache_filters

    threadpool_limits(1)
    cache_filters()
    _WARM = True


def analyse(
    path: Path,
    size: int,
    mtime_ns: int,
    model_path: Path,
    moods: Mapping[str, str] | None,
    write: bool,
    tag_options: TagOptions,
) -> TrackOutcome:
    """`mertag.tagger.scan.process_track` in a local worker process."""
    from mertag.tagger.scan import process_track

    warm_process()
    return process_track(path, size, mtime_ns, model_path, moods, write, tag_options)


def analyse_here(
    todo: Iterable[tuple[Path, int, int]],
    model_path: Path,
    moods: Mapping[str, str] | None,
    write: bool,
    tag_options: TagOptions,
) -> Iterator[TrackOutcome]:
    """`process_track` for each track in this process, BLAS held to one thread meanwhile.

    Nothing is imported or set before the first track, so a scan with nothing to do stays fast.
    """
    from mertag.tagger.scan import process_track

    with ExitStack() as stack:
        first = True
        for path, size, mtime_ns in todo:
            if first:
                from threadpoolctl import threadpool_limits

                from mertag.tagger.features import cache_filters

                stack.enter_context(threadpool_limits(1))
                cache_filters()
                first = False
            yield process_track(path, size, mtime_ns, model_path, moods, write, tag_options)


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A mood model's bytes, sent once to each Dask worker and saved there in its temp folder."""

    name: str
    digest: str
    data: bytes

    @classmethod
    def read(cls, path: Path) -> ModelFile:
        data = Path(path).read_bytes()
        return cls(Path(path).name, hashlib.sha256(data).hexdigest(), data)

    def local_path(self) -> Path:
        """The model as a file on this machine (written once per machine and content)."""
        path = Path(tempfile.gettempdir()) / f"mertag-{self.digest[:16]}-{self.name}"
        if not path.is_file():
            part = path.with_name(f"{path.name}.{os.getpid()}.part")
            part.write_bytes(self.data)
            part.replace(path)
        return path


def analyse_remote(
    path: Path, size: int, mtime_ns: int, model: ModelFile, moods: Mapping[str, str] | None
) -> TrackOutcome:
    """Decode, extract and classify one track on a Dask worker; the client writes the tags."""
    from mertag.tagger.scan import process_track
    from mertag.tagger.tags import TagOptions

    warm_process()
    return process_track(path, size, mtime_ns, model.local_path(), moods, False, TagOptions())


def dask_outcomes(
    todo: Iterable[tuple[Path, int, int]], options: ScanOptions
) -> Iterator[TrackOutcome]:
    """Analyse `todo` on the Dask cluster at `options.scheduler`, writing tags here as results
    arrive. Connects only when there is a track to analyse."""
    from mertag.tagger.scan import write_outcome_tags
    from mertag.tagger.tags import TagOptions

    tracks = iter(todo)
    first = next(tracks, None)
    if first is None:
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise BackendError(
            "the dask backend needs dask.distributed: pip install 'mertag[dask]'"
        ) from exc
    from joblib import Parallel, delayed, parallel_config

    model = ModelFile.read(options.model_path)
    write = options.write and not options.dry_run
    try:
        client = Client(options.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BackendError(
            f"cannot reach the Dask scheduler at {options.scheduler}: {exc}"
        ) from exc
    with (
        client,
        parallel_config(
            backend=_register_dask_backend(),
            client=client,
            scatter=[model],
            wait_for_workers_timeout=CONNECT_TIMEOUT_S,
        ),
    ):
        parallel = Parallel(
            n_jobs=-1, return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs"
        )
        tasks = (
            delayed(analyse_remote)(path, size, mtime_ns, model, options.moods)
            for path, size, mtime_ns in _prepend(first, tracks)
        )
        try:
            outcomes = parallel(tasks)
        except TimeoutError as exc:
            raise BackendError(
                f"no Dask worker joined the scheduler at {options.scheduler} "
                f"within {CONNECT_TIMEOUT_S:.0f} s"
            ) from exc
        for outcome in outcomes:
            if write and outcome.prediction is not None:
                write_outcome_tags(outcome, TagOptions(options.id3_version, options.overwrite_mood))
            yield outcome


def _register_dask_backend() -> str:
    """joblib's Dask backend, except that a cluster of one worker thread still gets the work.

    joblib runs a call in the calling process when its backend counts a single worker, so on a
    one-thread cluster the client would decode and analyse every track itself.
    """
    from joblib import register_parallel_backend
    from joblib._dask import DaskDistributedBackend

    class RemoteOnly(DaskDistributedBackend):  # type: ignore[misc]
        def effective_n_jobs(self, n_jobs: int) -> int:
            return max(2, int(super().effective_n_jobs(n_jobs)))

    register_parallel_backend("mertag-dask", RemoteOnly)
    return "mertag-dask"


def _prepend(
    first: tuple[Path, int, int], rest: Iterator[tuple[Path, int, int]]
) -> Iterator[tuple[Path, int, int]]:
    yield first
    yield from rest
