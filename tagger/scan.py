"""The scan: walk -> plan (incremental) -> each track through the pipeline on a backend -> index.

Each track goes through `mertag.tagger.pipeline` on a backend (`mertag.tagger.backends`: this
process, local worker processes, or Dask); this process is the only writer of the index and
commits each outcome as it arrives, so an interrupted scan keeps every finished track.

Faults: a tag write goes into the file's own inode through a verified copy and a recovery
journal (mertag.tagger.safe_write), so a scan killed at any moment leaves each file as it was or,
once the next scan has finished the journaled write, fully tagged; the next scan also deletes a
killed writer's temp copy and picks up the tracks without a row. Ctrl-C reaches only this process
(workers start with SIGINT ignored), which stops the workers and returns the summary so far. One
scan at a time uses an index: a second one waits for the first, then skips what it finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mertag.tagger.analysed_file import with_file_facts
from mertag.tagger.display import display
from mertag.tagger.index import (
    Index,
    IndexMissing,
    IndexRow,
    IndexUnavailable,
    IndexWriteError,
    Leftover,
    SnapshotEntry,
    inspect_index,
    needs_analysis,
)
from mertag.tagger.library import walk
from mertag.tagger.pipeline import TagPolicy, TrackOutcome, policy_values, track_work
from mertag.tagger.roots import split_roots
from mertag.tagger.safe_write import (
    SafeWriteError,
    remove_stale_temps,
    settle_interrupted_write,
)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

STAGES = ("decode", "features", "model", "tags", "index")


@dataclass(frozen=True)
class ScanOptions(TagPolicy):
    """Everything a scan needs to know, as plain values (the CLI fills it): what to scan, with
    which model, and how its tags are written (TagPolicy)."""

    roots: tuple[Path, ...]
    index_path: Path
    model_path: Path
    model_id: str
    feature_schema: str
    accepted_ids: frozenset[str] = frozenset()
    """The model ids whose rows count as finished (`model.accepted_model_ids`: the model's and
    its companion's); empty: worked out from `model_id`."""
    exclude: tuple[str, ...] = ()
    write: bool = True
    dry_run: bool = False
    force: bool = False
    retry_failed: bool = False
    jobs: int = 1
    backend: str = "local"  # or "dask": see mertag.tagger.backends
    scheduler: str | None = None  # the Dask scheduler's address, for backend "dask"


@dataclass
class ScanSummary:
    """Counts and failures of a finished (or interrupted) scan."""

    found: int = 0
    passed_over: int = 0
    excluded: int = 0
    outward_links: list[Path] = field(default_factory=list)  # folder links above a root
    unchanged: int = 0
    analysed: int = 0
    moods: dict[str, int] = field(default_factory=dict)  # confident tracks by mood word
    uncertain: int = 0  # analysed tracks below the confidence threshold
    silent: int = 0  # (near) silent tracks: no mood
    failures: list[tuple[Path, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    temps_removed: int = 0  # temp copies left by a killed earlier scan, now deleted
    index_error: str | None = None  # the index could not be written: why the scan stopped
    skipped: list[Path] = field(default_factory=list)  # the unchanged tracks, not analysed
    moved: int = 0  # new paths recognised as moved indexed tracks: their analysis is kept
    still_failing: list[tuple[Path, str]] = field(default_factory=list)
    """Unchanged tracks whose last result was a failure: an analysis, not tried again unless
    --retry-failed; or a tag write, tried again by every scan that writes (it costs no analysis)
    and listed here when it fails again."""
    tags_retried: int = 0
    """Unchanged tracks whose earlier tag write had failed (a read-only file since made
    writable, a full disk since cleared), written by this scan from their analysis."""
    untagged: int = 0
    """Tracks found that are analysed but carry no mertag tags (an earlier --no-write, or this
    one): `mertag write` tags them. Formats mertag cannot tag are not counted."""
    pending_writes: list[Path] = field(default_factory=list)
    """Tracks whose earlier tag write was interrupted (a killed scan or write left its journal),
    found by a scan that must not write (--dry-run, --no-write): left as they are and not
    analysed, since their bytes are part old, part new. The next scan that writes tags finishes
    the write first, then analyses them."""

    @property
    def ok(self) -> bool:
        """Nothing failed: not in this scan, and no earlier failure is left among the tracks."""
        return (
            not self.failures
            and not self.still_failing
            and not self.interrupted
            and self.index_error is None
            and not self.pending_writes
        )


class ScanRefused(Exception):
    """The scan cannot run as asked and nothing was touched; the message says why and what to do."""


def _accepted(options: ScanOptions) -> frozenset[str]:
    """The model ids whose rows this scan counts as finished."""
    from mertag.tagger.model import accepted_model_ids

    return options.accepted_ids or accepted_model_ids(options.model_id)


def plan(
    options: ScanOptions, snapshot: Mapping[str, tuple[int, int, str, str | None]]
) -> tuple[list[tuple[Path, int, int]], list[TrackOutcome], ScanSummary]:
    """Walk the roots and split tracks into work to do, failures found while walking, skips.

    When tags are to be written, temp copies left beside the tracks by a killed scan go too,
    and its interrupted tag writes are finished first; a scan that must not write leaves such
    tracks alone (`summary.pending_writes`). A root that does not exist is in `summary.failures`
    from the start, and in nothing else: it is neither walked nor an index row.
    """
    present, missing = split_roots(options.roots)
    found = walk(present, options.exclude)
    summary = ScanSummary(
        found=len(found.tracks),
        passed_over=found.passed_over,
        excluded=found.excluded,
        outward_links=found.outward_links,
        failures=list(missing),
    )
    writes = options.write and not options.dry_run
    if writes:
        for folder in dict.fromkeys(path.parent for path in found.tracks):
            summary.temps_removed += len(remove_stale_temps(folder))
    accepted = _accepted(options)
    todo: list[tuple[Path, int, int]] = []
    early: list[TrackOutcome] = [
        TrackOutcome(path=p, size=0, mtime_ns=0, error=reason) for p, reason in found.problems
    ]
    for path in found.tracks:
        try:  # finished before the analysis reads the file
            if not settle_interrupted_write(path, writes):
                summary.pending_writes.append(path)
                continue
        except SafeWriteError as exc:
            early.append(TrackOutcome(path, 0, 0, error=str(exc)))
            continue
        try:
            st = path.stat()
        except OSError as exc:
            early.append(TrackOutcome(path, 0, 0, error=exc.strerror or str(exc)))
            continue
        entry = snapshot.get(str(path))
        if needs_analysis(
            entry,
            st.st_size,
            st.st_mtime_ns,
            accepted,
            force=options.force,
            retry_failed=options.retry_failed,
        ):
            todo.append((path, st.st_size, st.st_mtime_ns))
        else:
            summary.unchanged += 1
            summary.skipped.append(path)
    return todo, early, summary


def _keep_moved(
    todo: list[tuple[Path, int, int]],
    snapshot: Mapping[str, SnapshotEntry],
    summary: ScanSummary,
    options: ScanOptions,
    index: Index,
) -> list[tuple[Path, int, int]]:
    """Move the rows of tracks moved or renamed since their scan to their new paths
    (`mertag.tagger.moves`); the tracks left to analyse."""
    from mertag.tagger.moves import recognise_moves

    walked = {str(p) for p, _, _ in todo} | {str(p) for p in summary.skipped}
    todo, moved = recognise_moves(todo, snapshot, walked, _accepted(options), index)
    for old_path, row in moved:
        index.move(old_path, row)
    summary.moved = len(moved)
    return todo


def index_row(outcome: TrackOutcome, feature_schema: str) -> IndexRow:
    """The index row recording an outcome."""
    p = outcome.prediction
    probs = p.probabilities if p else (None, None, None, None)
    return IndexRow(
        path=str(outcome.path),
        size=outcome.size,
        mtime_ns=outcome.mtime_ns,
        status="error" if outcome.error else "silent" if outcome.silent else "ok",
        error=outcome.error or outcome.silent,
        quadrant=p.quadrant if p else None,
        mood=(p.mood or None) if p else None,  # an uncertain track without a word: none
        p_q1=probs[0],
        p_q2=probs[1],
        p_q3=probs[2],
        p_q4=probs[3],
        valence=p.valence if p else None,
        arousal=p.arousal if p else None,
        confidence=p.confidence if p else None,
        uncertain=int(p.uncertain) if p else None,
        model_id=p.model_id if p else None,
        feature_schema=feature_schema if p else None,
        analysed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tagged=None if outcome.tagged is None else int(outcome.tagged),
        tag_error=outcome.tag_error,
        not_tagged=outcome.not_tagged,
    )


def _current(todo: Sequence[tuple[Path, int, int]]) -> Iterator[tuple[Path, int, int]]:
    """Each planned track with its state as it is now, just before it is analysed.

    A long scan reaches a track long after planning; its results must be checked against the
    file that was analysed, not the one that was planned.
    """
    for path, size, mtime_ns in todo:
        try:
            st = path.stat()
        except OSError:
            yield path, size, mtime_ns  # gone or unreadable: process_track says why
            continue
        yield path, st.st_size, st.st_mtime_ns


def _outcomes(
    todo: Sequence[tuple[Path, int, int]],
    options: ScanOptions,
) -> Iterator[TrackOutcome]:
    from mertag.tagger import backends

    work = track_work(options, options.model_path, write=options.write, dry_run=options.dry_run)
    jobs = options.jobs if len(todo) > 1 else 1
    yield from backends.outcomes(
        _current(todo),
        work,
        backend=options.backend,
        jobs=jobs,
        scheduler=options.scheduler,
    )


def refuse_read_only(roots: Sequence[Path]) -> None:
    """ScanRefused if a root is on a read-only file system (tags could not be written there)."""
    for root in roots:
        try:
            read_only = os.statvfs(root).f_flag & os.ST_RDONLY
        except OSError:
            continue  # the walk reports a root it cannot read
        if read_only:
            raise ScanRefused(
                f"{display(root)} is on a read-only file system, so no tags can be written: "
                "scan it with --no-write to analyse and index only"
            )


@contextmanager
def scan_lock(index_path: Path, on_wait: Callable[[Path], None] | None) -> Iterator[None]:
    """Hold the index's scan lock ('<index>.lock'), waiting while another scan does.

    Two scans planning from the same snapshot would analyse and tag the same tracks twice, and the
    second one's writes would fail as 'file changed'; one after the other, the second skips what
    the first finished. The lock is the OS's (flock, or a Windows file lock), so the lock of a
    killed scan is dropped with it. Only a lock another process holds means waiting: a lock file
    that cannot be created or locked (no such place, /proc, permission, no locks on that file
    system) raises IndexUnavailable naming the index and the reason.
    """
    lock_path = index_path.with_name(index_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _lock_error(index_path, lock_path, "cannot create", exc) from exc
    try:
        if fcntl is None:  # Windows: filelock's native lock on the file just made
            with _file_lock(lock_path, index_path, on_wait):
                yield
        else:
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # EWOULDBLOCK/EAGAIN: another scan holds it
                    if on_wait is not None:
                        on_wait(index_path)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise _lock_error(index_path, lock_path, "cannot lock", exc) from exc
            yield
    finally:
        os.close(fd)  # drops the flock


@contextmanager
def _file_lock(
    lock_path: Path, index_path: Path, on_wait: Callable[[Path], None] | None
) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(index_path)
            lock.acquire()
    except OSError as exc:
        raise _lock_error(index_path, lock_path, "cannot lock", exc) from exc
    try:
        yield
    finally:
        lock.release()


def _lock_error(index_path: Path, lock_path: Path, what: str, exc: OSError) -> IndexUnavailable:
    return IndexUnavailable(
        index_path, f"{what} its scan lock {display(lock_path)}: {exc.strerror or exc}"
    )


def run_scan(
    options: ScanOptions,
    on_start: Callable[[int, ScanSummary], None] | None = None,
    on_outcome: Callable[[TrackOutcome], None] | None = None,
    on_wait: Callable[[Path], None] | None = None,
) -> ScanSummary:
    """Run a whole scan; `on_start(total)` and `on_outcome` feed the progress display, and
    `on_wait(index_path)` says that another scan holds the index and this one waits for it.

    Raises ScanRefused, before any work, when tags are to be written to a read-only library, and
    mertag.tagger.index.IndexFileError when the index cannot be used (not mertag's, read-only, ...).
    A Ctrl-C ends the scan early with `interrupted` set and every finished track kept; an index
    write that fails (disk full, the file deleted) ends it with `index_error` set.
    """
    if options.write and not options.dry_run:
        refuse_read_only(options.roots)
    summary = ScanSummary()
    with ExitStack() as stack:
        try:
            if options.dry_run:
                index = None
                snapshot, leftovers = _read_only_state(options)
            else:
                inspect_index(options.index_path, write=True)  # refuse before the lock file
                stack.enter_context(scan_lock(options.index_path, on_wait))
                index = stack.enter_context(Index(options.index_path))
                snapshot, leftovers = index.scan_state()
            todo, early, summary = plan(options, snapshot)
            missing = list(summary.failures)  # roots that are not there: said, never indexed
            if index is not None and not options.force:
                todo = _keep_moved(todo, snapshot, summary, options, index)
            if on_start is not None:
                on_start(len(missing) + len(todo) + len(early), summary)
            if on_outcome is not None:
                for path, reason in missing:
                    on_outcome(TrackOutcome(path=path, size=0, mtime_ns=0, error=reason))
            for outcome in _chain(early, _outcomes(todo, options)):
                _record(outcome, summary, index, options)
                if on_outcome is not None:
                    on_outcome(outcome)
            if index is not None and options.write:
                leftovers = _retry_tag_writes(index, leftovers, summary, options)
            _leftovers(leftovers, summary)
        except KeyboardInterrupt:
            summary.interrupted = True
        except IndexWriteError as exc:
            summary.index_error = f"{exc}; the scan stopped"
    return summary


def _read_only_state(
    options: ScanOptions,
) -> tuple[dict[str, SnapshotEntry], dict[str, Leftover]]:
    """A dry run still skips what is up to date, but never creates or changes an index."""
    try:
        with Index(options.index_path, read_only=True) as index:
            return index.scan_state()
    except IndexMissing:
        return {}, {}


def _retry_tag_writes(
    index: Index, leftovers: Mapping[str, Leftover], summary: ScanSummary, options: ScanOptions
) -> dict[str, Leftover]:
    """Write again the tags of the unchanged tracks whose last tag write failed, from their
    analysis in the index, as `mertag write` does (`writeback.write_row`: the same checks, the
    crash-safe write, the row updated); the leftovers that remain, with the new reason of a
    write that failed again."""
    from mertag.tagger.writeback import WriteOptions, write_row

    remaining = dict(leftovers)
    policy = policy_values(options)
    for path in summary.skipped:
        if remaining.get(str(path), (None, False))[0] is None:
            continue
        row = index.get(str(path))
        if row is None or row.status != "ok" or not row.tag_error:
            continue  # a failed analysis: --retry-failed
        result = write_row(index, row, WriteOptions(**policy))
        if result.error is not None:
            remaining[str(path)] = (result.error, False)
        elif result.skipped is None:
            del remaining[str(path)]
            if result.not_tagged is None:  # else a format mertag cannot tag: no failure either
                summary.tags_retried += 1
    return remaining


def _leftovers(leftovers: Mapping[str, Leftover], summary: ScanSummary) -> None:
    """What the index said before this scan about the tracks it skipped: earlier failures that
    remain, and analysed tracks without tags (this scan's own untagged ones are counted already)."""
    for path in summary.skipped:
        reason, untagged = leftovers.get(str(path), (None, False))
        if reason is not None:
            summary.still_failing.append((path, reason))
        elif untagged:
            summary.untagged += 1


def _chain(first: Sequence[TrackOutcome], rest: Iterator[TrackOutcome]) -> Iterator[TrackOutcome]:
    yield from first
    yield from rest


def _record(
    outcome: TrackOutcome, summary: ScanSummary, index: Index | None, options: ScanOptions
) -> None:
    if index is not None:
        t0 = time.perf_counter()
        index.upsert(with_file_facts(index_row(outcome, options.feature_schema)))
        outcome.timings["index"] = time.perf_counter() - t0
    if outcome.error is not None:
        summary.failures.append((outcome.path, outcome.error))
        return
    summary.analysed += 1
    if outcome.silent is not None:
        summary.silent += 1
    elif outcome.prediction is not None and outcome.prediction.uncertain:
        summary.uncertain += 1
    elif outcome.prediction is not None:
        mood = outcome.prediction.mood
        summary.moods[mood] = summary.moods.get(mood, 0) + 1
    if outcome.tag_error is not None:
        summary.failures.append((outcome.path, outcome.tag_error))
    elif (
        outcome.tagged is False
        and outcome.not_tagged is None
        and outcome.silent is None  # a silent track gets no tags (earlier ones are taken back)
        and not options.dry_run
    ):
        summary.untagged += 1
    for stage, seconds in outcome.timings.items():
        summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds


WORKER_MEMORY = 400 << 20
"""What one scan worker may need at its peak (bytes), with headroom. Measured with the
librosa-free analysis (`/usr/bin/time -f %M mertag scan DIR --no-write --jobs 1`, the track
analysed in the scan process): 219 MB for a 45-s track analysed whole by the default model,
177 MB for a 19-minute FLAC whose header says 10 s; 181 MB per worker in bench/scan_bench.py
(it was 0.4-0.7 GB with librosa, scipy and numba loaded)."""


def usable_cores() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def job_ceiling() -> tuple[int, str]:
    """The most scan workers this machine can run, and what bounds it ('2 cores', ...)."""
    cores = usable_cores()
    memory = available_memory()
    if memory is not None and memory // WORKER_MEMORY < cores:
        return max(1, memory // WORKER_MEMORY), f"{memory / (1 << 30):.1f} GB of free memory"
    return cores, f"{cores} cores"
