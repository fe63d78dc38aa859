"""Where a scan's tracks go through the pipeline: in this process, in worker processes here, or
on Dask. Each backend hands back one TrackOutcome per track as it finishes, in any order; the
scan alone writes the index.

- in this process (`--jobs 1`, or a single track);
- local (the default): joblib's loky worker processes on this machine; each one decodes,
  extracts, classifies and writes the track's tags. A worker that dies (SIGSEGV in a decoder,
  the kernel's OOM killer) takes only its track: the tracks it may have held are run again one
  at a time in a fresh worker, the one that kills it again gets an error row naming the signal,
  and the scan goes on;
- dask (`--backend dask --scheduler ADDRESS`): each track is a task for a dask.distributed
  worker, which decodes, extracts and classifies it; the client (the process
  running `mertag scan`) writes the tags. So workers need mertag installed and read access to
  the library at the same absolute paths as the client, and nothing else: the model travels
  with the tasks, and a track re-run because its worker died has no write to repeat.

A worker process is prepared once, on its first track: BLAS is held to one thread (the pipeline
multiplies small matrices, where BLAS threads only fight the other workers for the cores: with
two threads on a busy machine a 40x1025 mel product took 10 ms instead of 0.1 ms) and glibc's
allocator gets fixed thresholds (see `_steady_malloc`).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mertag.tagger.output_files import write_bytes_atomic
from mertag.tagger.pipeline import (
    TrackOutcome,
    TrackWork,
    process_track,
    withdraw_outcome_tags,
    write_outcome_tags,
)

Track = tuple[Path, int, int]
"""A track to analyse: its path, and its size and mtime as stat'ed just before."""

BACKENDS = ("local", "dask")
CONNECT_TIMEOUT_S = 30.0
"""How long the client tries to reach the scheduler, and waits for a first worker."""
IN_FLIGHT_PER_WORKER = 2
"""Tracks handed to the pool per worker ahead of the results (joblib's pre_dispatch 2*n_jobs)."""
MODEL_RESENDS = 3
"""How often a track is sent again after the cluster lost the model it needs (every worker
holding it died): the model is scattered anew each time; then the track is a failure."""


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

    threadpool_limits(1)
    _WARM = True


def analyse(path: Path, size: int, mtime_ns: int, work: TrackWork) -> TrackOutcome:
    """`process_track` in a local worker process."""
    warm_process()
    return process_track(path, size, mtime_ns, work)


def outcomes(
    todo: Iterable[Track],
    work: TrackWork,
    *,
    backend: str = "local",
    jobs: int = 1,
    scheduler: str | None = None,
) -> Iterator[TrackOutcome]:
    """Every track of `todo` through the pipeline on `backend`; `jobs` local workers (1: this
    process).

    Raises BackendError (Dask)."""
    tracks = iter(todo)
    first = next(tracks, None)
    if first is None:
        return
    tracks = _prepend(first, tracks)
    if backend == "dask":
        yield from dask_outcomes(tracks, work, scheduler)
        return
    if jobs <= 1:
        yield from _here(tracks, work)
    else:
        yield from _pool(tracks, work, jobs)


def _here(tracks: Iterator[Track], work: TrackWork) -> Iterator[TrackOutcome]:
    """`process_track` for each track in this process, BLAS held to one thread meanwhile; a
    Ctrl-C is raised between tracks (`_sigint_between_tracks`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), _sigint_between_tracks() as check:
        for path, size, mtime_ns in tracks:
            yield process_track(path, size, mtime_ns, work)
            check()


def _worker_env(jobs: int) -> dict[str, str]:
    """Thread counts for native libraries in workers, as joblib sets them: cores / workers."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {name: os.environ.get(name, threads) for name in names}


def _death(exc: BaseException) -> str:
    """'SIGKILL' (or whatever loky says of the exit codes) for a worker that died."""
    found = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    if found is None:
        return "killed"
    # Each worker's code reads 'SIGKILL(-9)' for a signal, or a plain exit code like '1'.
    names = [
        name or f"exit code {code}"
        for name, code in re.findall(r"(SIG[A-Z0-9]+)\(-?\d+\)|(-?\d+)", found.group(1))
    ]
    return ", ".join(dict.fromkeys(names)) or "killed"


def _pool(tracks: Iterator[Track], work: TrackWork, jobs: int) -> Iterator[TrackOutcome]:
    """Local worker processes; a dead worker costs only the track that killed it."""
    from concurrent.futures import FIRST_COMPLETED, Future, wait

    from joblib.externals.loky import ProcessPoolExecutor
    from joblib.externals.loky.process_executor import BrokenProcessPool

    def new_pool() -> Any:
        return ProcessPoolExecutor(max_workers=jobs, env=_worker_env(jobs))

    pool = new_pool()
    in_flight: dict[Future[TrackOutcome], Track] = {}

    def fill() -> None:
        while len(in_flight) < IN_FLIGHT_PER_WORKER * jobs:
            track = next(tracks, None)
            if track is None:
                return
            in_flight[pool.submit(analyse, *track, work)] = track

    try:
        with _workers_ignore_sigint():  # the pool starts its workers on the first submit
            fill()
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            suspects: list[Track] = []
            death = ""
            for future in done:
                track = in_flight.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool as exc:
                    suspects.append(track)
                    death = _death(exc)
            if suspects:
                # A dead worker breaks the whole pool: every track still in it is a suspect.
                suspects += in_flight.values()
                in_flight.clear()
                pool.shutdown(wait=True, kill_workers=True)
                yield from _isolated(suspects, work, death)
                pool = new_pool()
                with _workers_ignore_sigint():
                    fill()
                continue
            fill()
    finally:
        for future in in_flight:
            future.cancel()
        _quiet_pool_teardown()
        _stop_pool(pool)


def _stop_pool(pool: Any) -> None:
    """Shut the pool down and see that its workers are gone. loky kills them from its manager
    thread, which a process exiting right after a Ctrl-C may not let run; an idle worker then
    waits on the task queue forever, and so does multiprocessing's exit handler, which joins it
    (the scan hung after its summary). Killing a worker mid-write loses nothing: tag writes are
    journaled (mertag.tagger.safe_write)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, kill_workers=True)
    for process in processes:
        if process.is_alive():
            with suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(process.pid, signal.SIGKILL)  # loky's Popen has no kill()
    for process in processes:
        process.join(timeout=5)


def _quiet_pool_teardown() -> None:
    """Stopping a pool mid-scan (Ctrl-C) can make loky's manager thread trip over work items
    the shutdown already dropped (a KeyError raised in that thread): the scan is over and its
    summary is right, so that thread's exception is not printed at the user."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread
        if thread is not None and "ExecutorManager" in type(thread).__name__ + thread.name:
            return
        previous(args)

    threading.excepthook = hook


def _isolated(suspects: list[Track], work: TrackWork, death: str) -> Iterator[TrackOutcome]:
    """Each suspect of a worker's death alone in a fresh worker: the one that kills it again
    gets an error outcome, the others their results."""
    from joblib.externals.loky import ProcessPoolExecutor
    from joblib.externals.loky.process_executor import BrokenProcessPool

    for path, size, mtime_ns in _after_kill(suspects, work.write):
        with _workers_ignore_sigint():
            pool = ProcessPoolExecutor(max_workers=1, env=_worker_env(1))
            future = pool.submit(analyse, path, size, mtime_ns, work)
        try:
            yield future.result()
        except BrokenProcessPool as exc:
            died = _death(exc) if "exit codes" in str(exc) else death
            yield TrackOutcome(
                path,
                size,
                mtime_ns,
                error=f"the worker analysing it died ({died}): a crash or out of memory",
            )
        finally:
            pool.shutdown(wait=True, kill_workers=True)


def _after_kill(suspects: list[Track], writes: bool) -> Iterator[Track]:
    """The suspects as they are now: the broken pool's workers were killed, maybe in the middle
    of a tag write, so their interrupted write-backs are finished (as the next scan would) and
    each file is stat'ed again before it is re-run. A scan that does not write (--dry-run,
    --no-write) had no tag write to interrupt, and finishes none of an earlier run's."""
    from mertag.tagger.safe_write import remove_stale_temps

    for folder in dict.fromkeys(path.parent for path, _, _ in suspects if writes):
        try:
            remove_stale_temps(folder)
        except OSError:
            pass  # the re-run's tag write reports what is wrong with the folder
    for path, size, mtime_ns in suspects:
        try:
            st = path.stat()
        except OSError:
            yield path, size, mtime_ns  # gone or unreadable: the pipeline says why
            continue
        yield path, st.st_size, st.st_mtime_ns


@contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Ignore SIGINT while worker processes start: they inherit that, so a Ctrl-C reaches only
    this process, which then stops them (a worker hit while importing would print a traceback).

    A signal mask would not lose a Ctrl-C in this short window, but the standard library's
    resource tracker unblocks SIGINT when it starts, so only the ignored disposition survives.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigint_between_tracks() -> Iterator[Callable[[], None]]:
    """Analysing in this process, a Ctrl-C is noted and raised between tracks by the returned
    check: PyAV swallows an exception raised inside its read callbacks, so one landing there
    would otherwise be lost and the scan would run on."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))

    def check() -> None:
        if noted:
            raise KeyboardInterrupt

    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A mood model's bytes, sent once to each Dask worker and saved there, in a folder of the
    worker's user that no one else can write (`private_folder`)."""

    name: str
    digest: str
    data: bytes

    @classmethod
    def read(cls, path: Path) -> ModelFile:
        data = Path(path).read_bytes()
        return cls(Path(path).name, hashlib.sha256(data).hexdigest(), data)

    def local_path(self) -> Path:
        """The model as a file on this machine (written once per user, machine and content).

        A file already there is used only when its bytes have this model's digest (checked once
        per process): anything else there (a torn or foreign file) is replaced atomically."""
        path = private_folder() / f"{self.digest[:16]}-{self.name}"
        if path not in _VERIFIED:
            if not _has_digest(path, self.digest):
                write_bytes_atomic(path, self.data)
            _VERIFIED.add(path)
        return path


_VERIFIED: set[Path] = set()
"""The model files this process has checked (their folder is the user's alone, so they stay)."""


def _has_digest(path: Path, digest: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except FileNotFoundError:
        return False


def private_folder() -> Path:
    """`mertag-<uid>` in the temp folder, made mode 0700: the Dask workers' model files live
    there, where no other user can plant one. One that exists but is not a folder owned by
    this user that only it can write (a symlink, another user's, group- or world-writable) is
    refused with a BackendError naming it, as ssh and tmux refuse such a socket folder."""
    uid = os.getuid()
    folder = Path(tempfile.gettempdir()) / f"mertag-{uid}"
    with suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
        raise BackendError(
            f"{folder}: not a private folder of this user (owner uid {st.st_uid}, mode "
            f"{stat.filemode(st.st_mode)}): remove it, or give the workers another TMPDIR"
        )
    return folder


def analyse_remote(
    path: Path, size: int, mtime_ns: int, model: ModelFile, work: TrackWork
) -> TrackOutcome:
    """Decode, extract and classify one track on a Dask worker; the client writes the tags."""
    from dataclasses import replace

    warm_process()
    return process_track(path, size, mtime_ns, replace(work, model_path=model.local_path()))


def dask_outcomes(
    tracks: Iterator[Track], work: TrackWork, scheduler: str | None
) -> Iterator[TrackOutcome]:
    """Analyse `tracks` on the Dask cluster at `scheduler`, writing tags here as results
    arrive. A worker that dies mid-track has its task re-run by Dask elsewhere; a track that
    keeps killing workers (Dask's KilledWorker) gets an error outcome and the scan goes on.
    When the workers that held the scattered model all died, Dask cancels every task that
    needs it: the model is scattered again and those tracks sent again (MODEL_RESENDS)."""
    try:
        from distributed import CancelledError, Client, KilledWorker, as_completed
    except ImportError as exc:
        raise BackendError(
            "the dask backend needs dask.distributed: pip install 'mertag[dask]'"
        ) from exc

    remote_work = work.analysis_only()
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BackendError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise BackendError(
                f"no Dask worker joined the scheduler at {scheduler} "
                f"within {CONNECT_TIMEOUT_S:.0f} s"
            ) from exc
        model_file = ModelFile.read(work.model_path)
        model = client.scatter(model_file, broadcast=True, hash=False)
        slots = IN_FLIGHT_PER_WORKER * max(1, sum(client.nthreads().values()))
        pending: dict[Any, tuple[Track, int]] = {}

        def submit(track: Track, resends: int = 0) -> Any:
            future = client.submit(analyse_remote, *track, model, remote_work, pure=False)
            pending[future] = (track, resends)
            return future

        running = as_completed([submit(t) for t in _take(tracks, slots)], loop=client.loop)
        for future in running:
            track, resends = pending.pop(future)
            path, size, mtime_ns = track
            try:
                outcome = future.result()
            except KilledWorker:
                outcome = TrackOutcome(
                    path, size, mtime_ns, error="every Dask worker that analysed it died"
                )
            except CancelledError:
                if resends < MODEL_RESENDS:  # the model went with its workers: send both again
                    if model.status != "finished":
                        model = client.scatter(model_file, broadcast=True, hash=False)
                    running.add(submit(track, resends + 1))
                    continue
                outcome = TrackOutcome(
                    path, size, mtime_ns, error="the Dask workers kept dying before analysing it"
                )
            else:
                if work.write and outcome.prediction is not None:
                    write_outcome_tags(outcome, work)
                elif work.write and outcome.silent is not None:
                    withdraw_outcome_tags(outcome, work.convert_id3v22)
            yield outcome
            for track in _take(tracks, 1):
                running.add(submit(track))


def _take(tracks: Iterator[Track], count: int) -> list[Track]:
    out: list[Track] = []
    for track in tracks:
        out.append(track)
        if len(out) >= count:
            break
    return out


def _prepend(first: Track, rest: Iterator[Track]) -> Iterator[Track]:
    yield first
    yield from rest
