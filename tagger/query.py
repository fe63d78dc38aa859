"""Reading the index back: filtered rows (`mertag list`), library statistics (`mertag stats`), and
the rows whose files are gone (`mertag prune`, and what playlists leave out).

Nothing here opens an audio file; the only file-system access is stat-ing indexed paths.
"""

from __future__ import annotations

import os
import stat
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table
from rich.text import Text

from mertag.tagger.display import display
from mertag.tagger.index import Index, IndexRow
from mertag.tagger.libmap import COLOURS
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS
from mertag.tagger.querylang import (  # index_words, resolve_quadrant: importable from here too
    Query,
    common_folder,
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
    checked: int = 0
    dropped: int = 0


def prune(index: Index, *, path_glob: str | None = None, dry_run: bool = False) -> PruneResult:
    """Drop the rows of files that no longer exist; a file that cannot be checked is kept."""
    result = PruneResult()
    for row in index.rows(path_glob=path_glob):
        result.checked += 1
        if is_gone(row.path):
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
    gone: int
    mean_confidence: float | None
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
            "tagged": self.tagged,
            "not_tagged": self.not_tagged,
            "tag_failures": self.tag_failures,
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
    tracks = analysed = failed = tagged = not_tagged = tag_failures = gone = 0
    for row in index.rows():
        tracks += 1
        if is_gone(row.path):
            gone += 1
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
        if row.model_id:
            models[row.model_id] += 1
        if row.quadrant in per_q and row.confidence is not None:
            per_q[row.quadrant].append(row.confidence)
            confidences.append(row.confidence)
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
        gone=gone,
        mean_confidence=_mean(confidences),
        moods=mood_counts,
        models=dict(models.most_common()),
        errors=dict(errors.most_common()),
    )


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def rows_table(rows: Iterable[IndexRow]) -> Table:
    """A rich table of rows for the terminal: paths relative to the folder they share (named in
    the caption), an error column only when some row failed.

    Every cell is a Text, never markup, so a '[' in a file name prints as it is.
    """
    rows = list(rows)
    failed = any(r.status != "ok" or r.tag_error for r in rows)
    root = common_folder([r.path for r in rows])
    caption = f"{len(rows)} track{'' if len(rows) == 1 else 's'}"
    if root is not None:
        caption += f" under {display(root)}"
    table = Table(show_edge=False, pad_edge=False, caption=Text(caption))
    table.add_column("path", overflow="fold")
    table.add_column("mood")
    table.add_column("conf.", justify="right")
    table.add_column("valence", justify="right")
    table.add_column("arousal", justify="right")
    if failed:
        table.add_column("error", overflow="fold")
    for r in rows:
        mood = f"{r.mood} ({r.quadrant})" if r.mood else ""
        shown = r.path if root is None else os.path.relpath(r.path, root)
        cells = [
            Text(display(shown)),
            Text(mood, style=COLOURS.get(r.quadrant or "", "")),
            Text(_num(r.confidence, ".2f")),
            Text(_num(r.valence, "+.2f")),
            Text(_num(r.arousal, "+.2f")),
        ]
        if failed:
            cells.append(Text(r.error or r.tag_error or ""))
        table.add_row(*cells)
    return table


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def stats_tables(stats: LibraryStats) -> list[Table]:
    """`mertag stats` for the terminal: moods, then the library's state, then models."""
    moods = Table(title="tracks per mood", title_justify="left", show_edge=False)
    moods.add_column("mood")
    moods.add_column("tracks", justify="right")
    moods.add_column("share", justify="right")
    moods.add_column("mean conf.", justify="right")
    for m in stats.moods:
        share = f"{100 * m.tracks / stats.analysed:.0f}%" if stats.analysed else ""
        moods.add_row(
            Text(f"{'/'.join(m.words)} ({m.quadrant})"),
            str(m.tracks),
            share,
            _num(m.mean_confidence, ".2f"),
        )
    moods.add_row("all", str(stats.analysed), "", _num(stats.mean_confidence, ".2f"))
    state = Table(title="library", title_justify="left", show_edge=False, show_header=False)
    state.add_column("what")
    state.add_column("count", justify="right")
    state.add_row("indexed tracks", str(stats.tracks))
    state.add_row("analysed", str(stats.analysed))
    state.add_row("failed to analyse", str(stats.failed))
    for reason, n in stats.errors.items():
        state.add_row(Text(f"  {reason}"), str(n))
    state.add_row("mertag tags in the file", str(stats.tagged))
    state.add_row("not tagged", str(stats.not_tagged))
    state.add_row("  of which tag writes failed", str(stats.tag_failures))
    state.add_row("files gone (mertag prune)", str(stats.gone))
    state.add_row(Text(f"index {display(stats.index_path)}"), _size(stats.index_bytes))
    models = Table(title="models in use", title_justify="left", show_edge=False)
    models.add_column("model id")
    models.add_column("tracks", justify="right")
    for model, n in stats.models.items():
        models.add_row(Text(model), str(n))
    if not stats.models:
        models.add_row("(none)", "")
    return [moods, state, models]
