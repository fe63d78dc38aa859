"""`mertag show`: everything mertag knows about a track, from the index and from the file's tags.

For each file: its index row (analysis, status, names, what was written, the ENERGY its arousal
gives), the mertag fields, MOOD and the fields for other players (ENERGY, COMMENT, GROUPING) as
the file holds them now, whether the file is still the one analysed, and what `mertag untag`
would change in it. Nothing is written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mertag.tagger.analysed_file import FileCheck, check_analysed_file
from mertag.tagger.display import display
from mertag.tagger.index import Index, IndexRow
from mertag.tagger.safe_write import interrupted_write
from mertag.tagger.tags import ID3v22Kept, TagChange, TagError, read_tags
from mertag.tagger.untag import planned_removal

if TYPE_CHECKING:
    from rich.table import Table


class NotIndexed(Exception):
    """A path the index has no row for; the message is one line naming it."""


@dataclass
class TrackReport:
    """What `show` says about one indexed track."""

    row: IndexRow
    file_tags: dict[str, str] | None = None  # mertag's fields and MOOD in the file now
    tags_unreadable: str | None = None  # why the file's tags could not be read
    check: FileCheck = field(default_factory=lambda: FileCheck(True))
    untag: list[TagChange] = field(default_factory=list)  # what `mertag untag` would change
    untag_refused: str | None = None  # why `mertag untag` would leave mertag's fields in it

    @property
    def energy(self) -> int | None:
        """The ENERGY `--energy` writes for this analysis (mood.energy_level of its arousal)."""
        from mertag.tagger.mood import energy_level

        arousal = self.row.arousal
        return None if arousal is None or self.row.status != "ok" else energy_level(arousal)

    def as_dict(self) -> dict[str, object]:
        from mertag.tagger.export import printable

        index = {k: printable(v) if isinstance(v, str) else v for k, v in asdict(self.row).items()}
        return {
            "path": printable(self.row.path),
            "index": index,
            "energy": self.energy,
            "file": {
                "tags": self.file_tags,
                "tags_unreadable": self.tags_unreadable,
                "same_as_analysed": self.check.same,
                "only_tags_changed": self.check.tags_changed,
                "changed": self.check.reason,
            },
            "untag_would_change": [
                {"field": c.field, "old": c.old, "new": c.new} for c in self.untag
            ],
            "untag_refused": self.untag_refused,
        }


def find_rows(index: Index, path: Path) -> list[IndexRow]:
    """The rows a path names: the file itself (as given, or through its real path), or every
    indexed track under a folder; NotIndexed when there is none."""
    absolute = os.path.abspath(os.path.expanduser(path))
    candidates = dict.fromkeys([absolute, os.path.realpath(absolute)])
    for candidate in candidates:
        row = index.get(candidate)
        if row is not None:
            return [row]
    if os.path.isdir(absolute):
        from mertag.tagger.querylang import PathTerm

        under = PathTerm(prefixes=tuple(candidates))
        rows = [r for r in index.rows() if under.matches(r)]
        if rows:
            return rows
    what = "no such file or folder" if not os.path.lexists(absolute) else "not in the index"
    raise NotIndexed(f"{display(path)}: {what} (run `mertag scan` on it)")


def report_track(row: IndexRow, moods: Mapping[str, str] | None = None) -> TrackReport:
    """Read the file's side of one indexed track (never raises for a bad file)."""
    report = TrackReport(row=row, check=check_analysed_file(row))
    if not os.path.isfile(row.path):
        report.tags_unreadable = report.check.reason or "not a regular file"
        return report
    if interrupted_write(Path(row.path)) is not None:  # its tags are part old, part new
        report.tags_unreadable = (
            "an interrupted mertag tag write is pending (`mertag scan` or `mertag write` "
            "finishes it)"
        )
        return report
    try:
        report.file_tags = read_tags(Path(row.path))
        report.untag = planned_removal(Path(row.path), row, report.file_tags, moods)
    except ID3v22Kept as exc:  # its tags were read: only untag would not take them out
        report.untag_refused = str(exc)
    except TagError as exc:  # UnsupportedFormat too: a format mertag cannot tag
        report.tags_unreadable = str(exc)
    except OSError as exc:
        report.tags_unreadable = exc.strerror or str(exc)
    return report


def show_tracks(
    index: Index, paths: Sequence[Path], moods: Mapping[str, str] | None = None
) -> tuple[list[TrackReport], list[str]]:
    """A report for every indexed track the paths name, and one line for each path that names
    none."""
    reports: list[TrackReport] = []
    missing: list[str] = []
    seen: set[str] = set()
    for path in paths:
        try:
            rows = find_rows(index, path)
        except NotIndexed as exc:
            missing.append(str(exc))
            continue
        for row in rows:
            if row.path not in seen:
                seen.add(row.path)
                reports.append(report_track(row, moods))
    return reports, missing


def _number(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d} ({seconds:.1f} s)"


def _tagged(row: IndexRow) -> str:
    if row.tagged == 1:
        return "yes"
    if row.tagged == 0:
        return f"no: {row.tag_error}" if row.tag_error else "no"
    return "unknown"


def _file_state(report: TrackReport) -> str:
    if not report.check.same:
        return report.check.reason or "changed"
    if report.check.tags_changed:
        return "the analysed audio; its tags changed since (`mertag write` can put them back)"
    return "as analysed"


def report_table(report: TrackReport) -> Table:
    """One track as a two-column table for the terminal (every cell a Text, never markup)."""
    from rich.table import Table
    from rich.text import Text

    from mertag.tagger.mood import QUADRANTS

    r = report.row
    table = Table(title=Text(display(r.path)), title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")

    def add(name: str, value: str) -> None:
        table.add_row(Text(name), Text(value))

    for name in ("artist", "album", "title"):
        add(name, getattr(r, name) or "")
    add("duration", _minutes(r.duration))
    add("status", r.status + (f": {r.error}" if r.error else ""))
    if r.status == "ok":
        add("mood", f"{r.mood or '(no word)'} ({r.quadrant})")
        if r.uncertain:
            add("uncertain", "yes: below the confidence threshold")
        add("confidence", _number(r.confidence, ".3f"))
        add("valence / arousal", f"{_number(r.valence, '+.3f')} / {_number(r.arousal, '+.3f')}")
        add("energy (1-10)", "" if report.energy is None else str(report.energy))
        probabilities = zip(QUADRANTS, (r.p_q1, r.p_q2, r.p_q3, r.p_q4), strict=True)
        add("probabilities", "  ".join(f"{q} {_number(p, '.3f')}" for q, p in probabilities))
        add("model", r.model_id or "")
    add("analysed at", r.analysed_at)
    add("mertag's tags written", _tagged(r))
    add("file", _file_state(report))
    if report.tags_unreadable is not None:
        add("tags in the file", f"cannot be read: {report.tags_unreadable}")
    elif report.file_tags is not None:
        shown = [f"{k} = {v}" for k, v in report.file_tags.items()]
        add("tags in the file", "\n".join(shown) or "(none of mertag's, no MOOD)")
        untag = "\n".join(str(c) for c in report.untag) or "change nothing"
        if report.untag_refused is not None:
            untag += f": {report.untag_refused}"
        add("untag would", untag)
    return table
