"""Playlists from the index: one per mood, or one of a query's tracks, as extended M3U (UTF-8,
`.m3u8`) or as Navidrome smart playlists (`.nsp`, see `nsp`).

Each M3U8 entry is an `#EXTINF:<seconds>,<artist> - <title>` line (from the index when it holds
the names, else the file's own tags, the file name when it has none) and the file's location:
absolute by default, or relative to the folder the playlist will live in (`relative_to`), which
is what players resolve relative entries against. Rows whose file is gone, or whose name an M3U8
line cannot hold, are left out and reported, never silently. A mood with no track gets no file.
Files are written atomically with the mode the umask gives a new file (0644 under 022), so a
music server running as another user can read them; a file at a target that mertag did not write
(the user's own playlist of that name) is never replaced unless asked (`output_files`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mertag.tagger.index import IndexRow
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS
from mertag.tagger.nsp import SUFFIX as NSP_SUFFIX
from mertag.tagger.nsp import mood_rule, query_rules, render_nsp
from mertag.tagger.output_files import M3U8_MARK, NSP_MARK, check_replaceable, write_bytes_atomic
from mertag.tagger.query import check_file
from mertag.tagger.querylang import MOOD_FIELDS, Query, sort_rows
from mertag.tagger.trackinfo import read_track_info, track_info

SUFFIX = ".m3u8"
FORMATS = ("m3u8", "nsp")


@dataclass(frozen=True)
class Entry:
    """One playlist entry: the file and what `#EXTINF` says about it."""

    path: str
    seconds: int  # -1 when unknown, as the M3U convention has it
    title: str


@dataclass
class PlaylistResult:
    """The playlists written (file -> number of tracks), the rows left out with reasons, and the
    moods that had no tracks (no file is written for those)."""

    written: dict[Path, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty: list[tuple[str, str, Path | None]] = field(default_factory=list)
    """(mood word, quadrant, an earlier run's file for it, left as it was) with no tracks."""
    uncertain: int = 0
    """Tracks left out of the mood playlists because their mood is uncertain."""


def track_entry(path: str) -> Entry:
    """A file's entry from its own tags (title falls back to the file name)."""
    info = read_track_info(path)
    return Entry(path, info.seconds, info.label)


def row_entry(row: IndexRow) -> Entry:
    """A row's entry: from the index's names when it holds them, else from the file's tags."""
    info = track_info(row)
    return Entry(row.path, info.seconds, info.label)


def unwritable_reason(path: str) -> str | None:
    """Why a path cannot be a line of an M3U8 file, or None when it can."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which an M3U8 playlist cannot hold"
    if "\n" in path or "\r" in path:
        return "file name holds a line break, which an M3U playlist cannot hold"
    return None


def location(path: str, relative_to: Path | None) -> str:
    """The entry line for `path`: absolute, or relative to `relative_to` with '/' separators."""
    if relative_to is None:
        return path
    try:
        rel = os.path.relpath(path, relative_to)
    except ValueError:  # Windows: another drive has no relative path
        return path
    rel = rel.replace(os.sep, "/")
    # A line starting with '#' would be read as a comment.
    return f"./{rel}" if rel.startswith("#") else rel


def render_m3u8(entries: Iterable[Entry], *, relative_to: Path | None = None) -> str:
    """The text of an extended M3U playlist.

    Only #EXTM3U and #EXTINF lines, and mertag's mark as a comment line (players skip comments):
    a playlist is named by its file, and a title directive such as '#PLAYLIST:' is unknown to
    strict parsers.
    """
    lines = ["#EXTM3U", M3U8_MARK]
    for e in entries:
        lines.append(f"#EXTINF:{e.seconds},{e.title}")
        lines.append(location(e.path, relative_to))
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8, lines ending in '\\n') as output_files.write_bytes_atomic does: `path`
    is always either the old file or the whole new one, readable by a music server."""
    write_bytes_atomic(path, text.encode("utf-8"))


def playable(rows: Iterable[IndexRow], skipped: list[tuple[str, str]]) -> list[IndexRow]:
    """The rows that can go into a playlist: analysed, with a mood, the file there and its name
    writable; every other row with a mood is added to `skipped` with the reason."""
    out: list[IndexRow] = []
    for row in rows:
        if row.status != "ok" or not row.quadrant:
            continue
        reason = unwritable_reason(row.path) or check_file(row.path)
        if reason is not None:
            skipped.append((row.path, reason))
            continue
        out.append(row)
    return out


def safe_file_name(word: str) -> str:
    """A mood word as a file name: no separators, no leading dot."""
    name = "".join("_" if c in '/\\:*?"<>|\x00' or not c.isprintable() else c for c in word)
    name = name.strip().lstrip(".")
    return name or "mood"


def by_confidence(rows: Sequence[IndexRow]) -> list[IndexRow]:
    """Most confident first; ties by path so the order is stable from run to run."""
    return sorted(rows, key=lambda r: (-(r.confidence or 0.0), os.fsencode(r.path)))


def ordered(rows: Sequence[IndexRow], query: Query | None) -> list[IndexRow]:
    """The query's order when it has sort keys, else most confident first."""
    if query is not None and query.sorts:
        return sort_rows(list(rows), query.sorts)
    return by_confidence(rows)


def mood_words(
    rows: Iterable[IndexRow], moods: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """quadrant -> its configured word, then every other word the index holds for it."""
    configured = {**DEFAULT_MOODS, **(moods or {})}
    words: dict[str, list[str]] = {q: [configured[q]] for q in QUADRANTS}
    for row in rows:
        if row.uncertain:
            continue  # its word, if any, is the uncertain word, not its quadrant's
        if row.quadrant in words and row.mood and row.mood not in words[row.quadrant]:
            words[row.quadrant].append(row.mood)
    return words


def render(
    fmt: str,
    name: str,
    rows: Sequence[IndexRow],
    *,
    rules: list[dict[str, object]] | None = None,
    query: Query | None = None,
    relative_to: Path | None = None,
) -> str:
    """One playlist's text: M3U8 entries for `rows`, or an .nsp file of `rules`."""
    if fmt == "nsp":
        comment = f"{NSP_MARK} {len(rows)} track{'' if len(rows) == 1 else 's'} when written"
        return render_nsp(name, comment, rules or [], query.sorts if query else ())
    return render_m3u8([row_entry(r) for r in rows], relative_to=relative_to)


def mood_playlists(
    rows: Iterable[IndexRow],
    out_dir: Path,
    *,
    moods: Mapping[str, str] | None = None,
    relative_to: Path | None = None,
    fmt: str = "m3u8",
    query: Query | None = None,
    overwrite: bool = False,
) -> PlaylistResult:
    """Write one `<Mood>.m3u8` (or `.nsp`) per mood into `out_dir`, best match first (or in the
    query's order). A file there that mertag did not write raises OutputExists before any
    playlist is written, unless `overwrite`.

    Tracks are grouped by the mood word the index holds (the one in their tags); an uncertain
    track is in none (counted in `result.uncertain`). A mood with no track gets no file (it is
    named in `result.empty`); an .nsp file holds the mood's rule and the
    query's, for Navidrome to evaluate.
    """
    result = PlaylistResult()
    rows = list(rows)
    configured = {**DEFAULT_MOODS, **(moods or {})}
    known = mood_words(rows, moods)
    base = query_rules(query, known) if fmt == "nsp" and query is not None else []
    # Keyed by file name, casefolded, so 'Happy' and 'happy' from two scans share one file.
    groups: dict[str, tuple[str, str, list[IndexRow]]] = {}
    for q in QUADRANTS:
        groups[safe_file_name(configured[q]).casefold()] = (q, configured[q], [])
    for row in playable(rows, result.skipped):
        if row.uncertain:
            result.uncertain += 1
            continue
        quadrant = row.quadrant or ""
        word = row.mood or configured.get(quadrant, quadrant)
        key = safe_file_name(word).casefold()
        groups.setdefault(key, (quadrant, word, []))[2].append(row)
    suffix = NSP_SUFFIX if fmt == "nsp" else SUFFIX
    texts: dict[Path, tuple[str, int]] = {}
    for quadrant, word, members in sorted(groups.values(), key=lambda g: (g[0], g[1])):
        target = out_dir / f"{safe_file_name(word)}{suffix}"
        if not members:
            result.empty.append((word, quadrant, target if target.exists() else None))
            continue
        rules = [mood_rule([word]), *base]
        text = render(
            fmt, word, ordered(members, query), rules=rules, query=query, relative_to=relative_to
        )
        check_replaceable(target, overwrite)
        texts[target] = (text, len(members))
    for target, (text, n) in texts.items():
        write_text_atomic(target, text)
        result.written[target] = n
    return result


def one_playlist(
    rows: Iterable[IndexRow],
    target: Path,
    *,
    moods: Mapping[str, str] | None = None,
    relative_to: Path | None = None,
    fmt: str = "m3u8",
    query: Query | None = None,
    overwrite: bool = False,
) -> PlaylistResult:
    """Write every playable row into one playlist `target` (nothing when there is none); an .nsp
    file holds the query's rules, limited to tracks with a mertag mood. A file at `target` that
    mertag did not write raises OutputExists, unless `overwrite`."""
    result = PlaylistResult()
    rows = list(rows)
    rules: list[dict[str, object]] = []
    if fmt == "nsp":  # before looking at the tracks: a query nsp cannot hold is an error
        known = mood_words(rows, moods)
        rules = query_rules(query or Query(), known)
        if not any(t.field in MOOD_FIELDS and not t.negate for t in (query or Query()).terms):
            words = [w for q in QUADRANTS for w in known[q]]
            rules.insert(0, mood_rule(words))
            # What Navidrome will select: tracks whose MOOD holds a mood word (an uncertain one
            # has none), so the count written into the file is the count it will show.
            rows = [r for r in rows if r.mood in words and not r.uncertain]
    members = playable(rows, result.skipped)
    if not members:
        result.empty.append((target.stem, "", target if target.exists() else None))
        return result
    text = render(
        fmt, target.stem, ordered(members, query), rules=rules, query=query, relative_to=relative_to
    )
    check_replaceable(target, overwrite)
    write_text_atomic(target, text)
    result.written[target] = len(members)
    return result
