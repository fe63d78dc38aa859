"""Reading the index back: filtered rows (`mertag list`), library statistics (`mertag stats`), and
the rows whose files are gone (`mertag prune`, and what playlists leave out).

Nothing here opens an audio file; the only file-system access is stat-ing indexed paths.
"""

from __future__ import annotations

import os
import stat
import statistics
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mertag.tagger.index import Index, IndexRow
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS
from mertag.tagger.querylang import (  # index_words, resolve_quadrant: importable from here too
    Query,
    index_words,  # noqa: F401
    option_terms,
    parse_query,
    resolve_quadrant,  # noqa: F401
)


@dataclass(frozen=True)
class RowFilter:
    """Which rows to keep, as the older filter options gave them; every condition set must hold.

    The query language (`querylang`) does the matching: this is a shorthand for its terms.
    """

    quadrants: frozenset[str] | None = None
    min_confidence: float | None = None
    path_glob: str | None = None
    status: str | None = None

    def query(self) -> Query:
        return parse_query(
            option_terms(
                moods=sorted(self.quadrants) if self.quadrants is not None else None,
                min_confidence=self.min_confidence,
                path_glob=self.path_glob,
                status=self.status,
            )
        )

    def keeps(self, row: IndexRow) -> bool:
        if self.quadrants is not None and not self.quadrants:
            return False
        return self.query().matches(row)


def select_rows(index: Index, flt: RowFilter | None = None) -> Iterator[IndexRow]:
    """The index rows that pass `flt`, ordered by path."""
    flt = flt or RowFilter()
    if flt.quadrants is not None and not flt.quadrants:
        return
    query = flt.query()
    for row in index.rows():
        if query.matches(row):
            yield row


def is_gone(path: str) -> bool:
    """Whether an indexed file no longer exists (not: cannot be checked, e.g. permission denied,
    which must never count as gone)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def check_file(path: str) -> str | None:
    """None when the file can be read, else a one-line reason ('file is gone', ...)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "file is gone (`mertag prune` drops its row)"
    except OSError as exc:
        return f"cannot check the file: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    return None


@dataclass
class PruneResult:
    """What `prune` found: rows of gone files (dropped unless a dry run)."""

    gone: list[str] = field(default_factory=list)
    """The rows dropped (or, in a dry run, to drop)."""
    checked: int = 0
    dropped: int = 0
    gone_folders: dict[str, int] = field(default_factory=dict)
    """Folders gone as a whole (a drive not mounted, a library moved away), each the highest
    such folder above some gone rows, with how many: the command says so."""
    kept_under_gone_folders: int = 0
    """Rows of gone files that stay because their folder is gone as a whole (no `gone_folders`)."""


def gone_folder(path: str, seen: dict[str, str | None]) -> str | None:
    """The highest folder above `path` that is gone too; None when its folder is there.
    `seen` caches the answer per folder, since a library's rows share few folders."""
    folder = os.path.dirname(path)
    if folder not in seen:
        parent = os.path.dirname(folder)
        if not is_gone(folder):
            seen[folder] = None
        elif parent == folder:
            seen[folder] = folder
        else:
            seen[folder] = gone_folder(folder, seen) or folder
    return seen[folder]


def prune(
    index: Index, *, path: str | None = None, dry_run: bool = False, gone_folders: bool = False
) -> PruneResult:
    """Drop the rows of files that no longer exist; a file that cannot be checked is kept.
    A folder gone as a whole (a drive or share not mounted, more often than a library deleted)
    is named in `gone_folders`, and its rows stay unless `gone_folders` is true: a NAS that was
    not mounted must not cost the analysis of every track on it.

    `path` limits it to the rows a query's `path:` term selects (a folder as the user sees it,
    relative to the library or absolute, or a glob); querylang.QueryError when it is empty.
    """
    result = PruneResult()
    seen: dict[str, str | None] = {}
    selected = parse_query(option_terms(path_glob=path)) if path is not None else None
    for row in index.rows():
        if selected is not None and not selected.matches(row):
            continue
        result.checked += 1
        if is_gone(row.path):
            folder = gone_folder(row.path, seen)
            if folder is not None:
                result.gone_folders[folder] = result.gone_folders.get(folder, 0) + 1
                if not gone_folders:
                    result.kept_under_gone_folders += 1
                    continue
            result.gone.append(row.path)
    if not dry_run and result.gone:
        result.dropped = index.delete(result.gone)
    return result


@dataclass(frozen=True)
class MoodCount:
    """One quadrant's share of the library."""

    quadrant: str
    words: tuple[str, ...]
    tracks: int
    mean_confidence: float | None


@dataclass
class LibraryStats:
    """What `mertag stats` reports about an index."""

    index_path: Path
    index_bytes: int
    tracks: int
    analysed: int
    failed: int
    tagged: int
    not_tagged: int
    tag_failures: int
    cannot_be_tagged: int  # analysed, in a format mertag cannot tag (RF64...): index only
    gone: int
    mean_confidence: float | None
    uncertain: int  # analysed, below the confidence threshold: in no mood's count
    silent: int  # (near) silent: no mood, not a failure
    moods: list[MoodCount]
    models: dict[str, int]
    errors: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "index": str(self.index_path),
            "index_bytes": self.index_bytes,
            "tracks": self.tracks,
            "analysed": self.analysed,
            "failed": self.failed,
            "uncertain": self.uncertain,
            "silent": self.silent,
            "tagged": self.tagged,
            "not_tagged": self.not_tagged,
            "tag_failures": self.tag_failures,
            "cannot_be_tagged": self.cannot_be_tagged,
            "gone": self.gone,
            "mean_confidence": self.mean_confidence,
            "moods": [
                {
                    "quadrant": m.quadrant,
                    "mood": "/".join(m.words),
                    "tracks": m.tracks,
                    "mean_confidence": m.mean_confidence,
                }
                for m in self.moods
            ],
            "models": self.models,
            "errors": self.errors,
        }


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _index_bytes(path: Path) -> int:
    """The index's size on disk, its write-ahead log included."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except OSError:
            pass  # no WAL file is normal after a clean close
    return total


def library_stats(index: Index, moods: Mapping[str, str] | None = None) -> LibraryStats:
    """Count tracks per mood, failures, tag state, models and gone files in one pass."""
    configured = {**DEFAULT_MOODS, **(moods or {})}
    per_q: dict[str, list[float]] = {q: [] for q in QUADRANTS}
    words: dict[str, Counter[str]] = {q: Counter() for q in QUADRANTS}
    confidences: list[float] = []
    models: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    tracks = analysed = failed = tagged = not_tagged = tag_failures = unsupported = gone = 0
    uncertain = silent = 0
    for row in index.rows():
        tracks += 1
        if is_gone(row.path):
            gone += 1
        if row.status == "silent":
            silent += 1
            continue
        if row.status != "ok":
            failed += 1
            errors[(row.error or "unknown").split(":")[0]] += 1
            continue
        analysed += 1
        if row.tagged == 1:
            tagged += 1
        else:
            not_tagged += 1
            if row.tag_error:
                tag_failures += 1
            elif row.not_tagged:
                unsupported += 1
        if row.model_id:
            models[row.model_id] += 1
        if row.confidence is not None:
            confidences.append(row.confidence)
        if row.uncertain:
            uncertain += 1
        elif row.quadrant in per_q and row.confidence is not None:
            per_q[row.quadrant].append(row.confidence)
            if row.mood:
                words[row.quadrant][row.mood] += 1
    mood_counts = [
        MoodCount(
            quadrant=q,
            words=tuple(w for w, _ in words[q].most_common()) or (configured[q],),
            tracks=len(per_q[q]),
            mean_confidence=_mean(per_q[q]),
        )
        for q in QUADRANTS
    ]
    return LibraryStats(
        index_path=index.path,
        index_bytes=_index_bytes(index.path),
        tracks=tracks,
        analysed=analysed,
        failed=failed,
        tagged=tagged,
        not_tagged=not_tagged,
        tag_failures=tag_failures,
        cannot_be_tagged=unsupported,
        gone=gone,
        mean_confidence=_mean(confidences),
        uncertain=uncertain,
        silent=silent,
        moods=mood_counts,
        models=dict(models.most_common()),
        errors=dict(errors.most_common()),
    )
