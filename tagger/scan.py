"""The scan: walk -> plan (incremental) -> analyse and tag in worker processes -> index.

Workers (joblib/loky) each hold one musicnn session and one mood-model session for their whole
life, analyse a track, write its tags, and send back a TrackOutcome; the parent process is the
only writer of the index and commits each outcome as it arrives, so an interrupted scan keeps
every finished track.

Faults: a tag write replaces the file in one rename (mertag.tagger.safe_write), so a scan killed at
any
moment leaves each file as it was or fully tagged, and the next scan deletes the killed writer's
temp copy and picks up the tracks without a row. Ctrl-C reaches only this process (workers start
with SIGINT ignored), which stops the workers and returns the summary so far. One scan at a time
uses an index: a second one waits for the first, then skips what it finished.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mertag.tagger.audio import AudioError
from mertag.tagger.display import display
from mertag.tagger.index import Index, IndexRow, needs_analysis
from mertag.tagger.library import walk
from mertag.tagger.mood import Prediction
from mertag.tagger.safe_write import remove_stale_temps

STAGES = ("decode", "features", "model", "tags", "index")


@dataclass(frozen=True)
class ScanOptions:
    """Everything a scan needs to know, as plain values (the CLI fills it)."""

    roots: tuple[Path, ...]
    index_path: Path
    model_path: Path
    model_id: str
    feature_schema: str
    exclude: tuple[str, ...] = ()
    moods: Mapping[str, str] | None = None
    write: bool = True
    id3v23: bool = False
    dry_run: bool = False
    force: bool = False
    retry_failed: bool = False
    jobs: int = 1
    backend: str = "local"  # or "dask": see mertag.tagger.workers
    scheduler: str | None = None  # the Dask scheduler's address, for backend "dask"


@dataclass
class TrackOutcome:
    """What happened to one track in a worker: its mood, or why it failed."""

    path: Path
    size: int
    mtime_ns: int
    prediction: Prediction | None = None
    error: str | None = None
    tagged: bool | None = None  # True: mertag's tags are in the file now
    tag_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.tag_error is not None


@dataclass
class ScanSummary:
    """Counts and failures of a finished (or interrupted) scan."""

    found: int = 0
    passed_over: int = 0
    excluded: int = 0
    unchanged: int = 0
    analysed: int = 0
    moods: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    temps_removed: int = 0  # temp copies left by a killed earlier scan, now deleted

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted


class ScanRefused(Exception):
    """The scan cannot run as asked and nothing was touched; the message says why and what to do."""


def tag_values(prediction: Prediction) -> dict[str, str]:
    """The fields mertag writes into a file for a prediction (no MOOD when its mood word is
    empty: an uncertain prediction given the uncertain word "")."""
    values = {
        "MOOD": prediction.mood,
        "MERTAG_QUADRANT": prediction.quadrant,
        "MERTAG_VALENCE": f"{prediction.valence:.3f}",
        "MERTAG_AROUSAL": f"{prediction.arousal:.3f}",
        "MERTAG_CONFIDENCE": f"{prediction.confidence:.3f}",
        "MERTAG_MODEL": prediction.model_id,
    }
    if not prediction.mood:
        del values["MOOD"]
    return values


def process_track(
    path: Path,
    size: int,
    mtime_ns: int,
    model_path: Path,
    moods: Mapping[str, str] | None,
    write: bool,
    id3v23: bool,
) -> TrackOutcome:
    """Analyse one track and (if `write`) tag it; runs in a worker, never raises for bad input."""
    from mertag.tagger.analyse import track_features
    from mertag.tagger.model import shared_model

    outcome = TrackOutcome(path=path, size=size, mtime_ns=mtime_ns)
    model = shared_model(model_path)
    try:
        features, chosen = track_features(path, model)
        t1 = time.perf_counter()
        outcome.prediction = chosen.predict(features.sequences, moods)
        t2 = time.perf_counter()
        outcome.timings = {
            "decode": features.decode_seconds,
            "features": features.features_seconds,
            "model": t2 - t1,
        }
    except AudioError as exc:
        outcome.error = str(exc)
        return outcome
    except MemoryError:
        outcome.error = "out of memory while analysing"
        return outcome
    if not write:
        outcome.tagged = False
        return outcome
    write_outcome_tags(outcome, id3v23)
    return outcome


def write_outcome_tags(outcome: TrackOutcome, id3v23: bool) -> None:
    """Write an analysed track's tags, unless the file changed since it was stat'ed for
    analysis; a failure is recorded in the outcome, never raised."""
    from mertag.tagger.tags import TagError, write_tags

    assert outcome.prediction is not None
    t0 = time.perf_counter()
    try:
        write_tags(
            outcome.path,
            tag_values(outcome.prediction),
            id3v23=id3v23,
            expect=(outcome.size, outcome.mtime_ns),
        )
        outcome.tagged = True
        st = outcome.path.stat()
        outcome.size, outcome.mtime_ns = st.st_size, st.st_mtime_ns
    except TagError as exc:
        outcome.tagged = False
        outcome.tag_error = f"tag write failed: {exc}"
    except OSError as exc:
        outcome.tagged = False
        outcome.tag_error = f"tag write failed: {exc.strerror or exc}"
    outcome.timings["tags"] = time.perf_counter() - t0


def plan(
    options: ScanOptions, snapshot: Mapping[str, tuple[int, int, str, str | None]]
) -> tuple[list[tuple[Path, int, int]], list[TrackOutcome], ScanSummary]:
    """Walk the roots and split tracks into work to do, failures found while walking, skips.

    When tags are to be written, temp copies left beside the tracks by a killed scan go too.
    """
    found = walk(options.roots, options.exclude)
    summary = ScanSummary(
        found=len(found.tracks), passed_over=found.passed_over, excluded=found.excluded
    )
    if options.write and not options.dry_run:
        for folder in dict.fromkeys(path.parent for path in found.tracks):
            summary.temps_removed += len(remove_stale_temps(folder))
    from mertag.tagger.model import accepted_model_ids

    accepted = accepted_model_ids(options.model_id)
    todo: list[tuple[Path, int, int]] = []
    early: list[TrackOutcome] = [
        TrackOutcome(path=p, size=0, mtime_ns=0, error=reason) for p, reason in found.problems
    ]
    for path in found.tracks:
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
    return todo, early, summary


def index_row(outcome: TrackOutcome, feature_schema: str) -> IndexRow:
    """The index row recording an outcome."""
    p = outcome.prediction
    probs = p.probabilities if p else (None, None, None, None)
    return IndexRow(
        path=str(outcome.path),
        size=outcome.size,
        mtime_ns=outcome.mtime_ns,
        status="error" if outcome.error else "ok",
        error=outcome.error,
        quadrant=p.quadrant if p else None,
        mood=p.mood if p else None,
        p_q1=probs[0],
        p_q2=probs[1],
        p_q3=probs[2],
        p_q4=probs[3],
        valence=p.valence if p else None,
        arousal=p.arousal if p else None,
        confidence=p.confidence if p else None,
        model_id=p.model_id if p else None,
        feature_schema=feature_schema if p else None,
        analysed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tagged=None if outcome.tagged is None else int(outcome.tagged),
        tag_error=outcome.tag_error,
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


def _outcomes(
    todo: Sequence[tuple[Path, int, int]], options: ScanOptions
) -> Iterator[TrackOutcome]:
    from mertag.tagger import workers

    if options.backend == "dask":
        yield from workers.dask_outcomes(_current(todo), options)
        return
    write = options.write and not options.dry_run
    args = (options.model_path, options.moods, write, options.id3v23)
    if options.jobs <= 1 or len(todo) <= 1:
        with _sigint_between_tracks() as check:
            for outcome in workers.analyse_here(_current(todo), *args):
                yield outcome
                check()
        return
    from joblib import Parallel, delayed

    parallel = Parallel(
        n_jobs=min(options.jobs, len(todo)),
        return_as="generator_unordered",
        batch_size=1,
        pre_dispatch="2*n_jobs",
    )
    with _workers_ignore_sigint():
        outcomes = parallel(delayed(workers.analyse)(p, s, m, *args) for p, s, m in _current(todo))
    yield from outcomes


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
def _scan_lock(index_path: Path, on_wait: Callable[[Path], None] | None) -> Iterator[None]:
    """Hold the index's scan lock (an flock on '<index>.lock'), waiting while another scan does.

    Two scans planning from the same snapshot would analyse and tag the same tracks twice, and the
    second one's writes would fail as 'file changed'; one after the other, the second skips what
    the first finished. The kernel drops the lock of a killed scan.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent scans then rely on SQLite alone
        yield
        return
    lock_path = index_path.with_name(index_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(index_path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_scan(
    options: ScanOptions,
    on_start: Callable[[int, ScanSummary], None] | None = None,
    on_outcome: Callable[[TrackOutcome], None] | None = None,
    on_wait: Callable[[Path], None] | None = None,
) -> ScanSummary:
    """Run a whole scan; `on_start(total)` and `on_outcome` feed the progress display, and
    `on_wait(index_path)` says that another scan holds the index and this one waits for it.

    Raises ScanRefused, before any work, when tags are to be written to a read-only library. A
    Ctrl-C ends the scan early with `interrupted` set and every finished track kept.
    """
    if options.write and not options.dry_run:
        refuse_read_only(options.roots)
    summary = ScanSummary()
    with ExitStack() as stack:
        try:
            if options.dry_run:
                index = None
                snapshot = _read_only_snapshot(options)
            else:
                stack.enter_context(_scan_lock(options.index_path, on_wait))
                index = stack.enter_context(Index(options.index_path))
                snapshot = index.snapshot()
            todo, early, summary = plan(options, snapshot)
            if on_start is not None:
                on_start(len(todo) + len(early), summary)
            for outcome in _chain(early, _outcomes(todo, options)):
                _record(outcome, summary, index, options)
                if on_outcome is not None:
                    on_outcome(outcome)
        except KeyboardInterrupt:
            summary.interrupted = True
    return summary


def _read_only_snapshot(options: ScanOptions) -> dict[str, tuple[int, int, str, str | None]]:
    """A dry run still skips what is up to date, but never creates an index."""
    if not options.index_path.is_file():
        return {}
    with Index(options.index_path) as index:
        return index.snapshot()


def _chain(first: Sequence[TrackOutcome], rest: Iterator[TrackOutcome]) -> Iterator[TrackOutcome]:
    yield from first
    yield from rest


def _record(
    outcome: TrackOutcome, summary: ScanSummary, index: Index | None, options: ScanOptions
) -> None:
    if index is not None:
        t0 = time.perf_counter()
        index.upsert(index_row(outcome, options.feature_schema))
        outcome.timings["index"] = time.perf_counter() - t0
    if outcome.error is not None:
        summary.failures.append((outcome.path, outcome.error))
        return
    summary.analysed += 1
    if outcome.prediction is not None:
        mood = outcome.prediction.mood
        summary.moods[mood] = summary.moods.get(mood, 0) + 1
    if outcome.tag_error is not None:
        summary.failures.append((outcome.path, outcome.tag_error))
    for stage, seconds in outcome.timings.items():
        summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
