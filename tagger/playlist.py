"""Mood playlists from the index: one extended M3U (UTF-8, `.m3u8`) per mood.

Each entry is an `#EXTINF:<seconds>,<artist> - <title>` line (read from the file's own tags, the
file name when it has none) and the file's location: absolute by default, or relative to the
folder the playlist will live in (`relative_to`), which is what players resolve relative entries
against. Rows whose file is gone, or whose name an M3U8 line cannot hold, are left out and
reported, never silently.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen

from mertag.tagger.index import IndexRow
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS
from mertag.tagger.query import check_file

SUFFIX = ".m3u8"


@dataclass(frozen=True)
class Entry:
    """One playlist entry: the file and what `#EXTINF` says about it."""

    path: str
    seconds: int  # -1 when unknown, as the M3U convention has it
    title: str


@dataclass
class PlaylistResult:
    """The playlists written (file -> number of tracks) and the rows left out, with reasons."""

    written: dict[Path, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _first(tags: Any, *keys: str) -> str | None:
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError):  # EasyID3 raises for keys it has no mapping for
            continue
        if value is None:
            continue
        values = getattr(value, "text", value)  # an ID3 frame holds its values in .text
        if isinstance(values, (list, tuple)):
            values = values[0] if values else None
        if values is not None and _one_line(str(values)):
            return _one_line(str(values))
    return None


def track_entry(path: str) -> Entry:
    """Duration, artist and title of a file from its tags (title falls back to the file name).

    Easy mode gives 'artist'/'title' for ID3 in MP3, MP4 and Vorbis comments; WAV and AIFF have
    no easy mode, so their ID3 frames (TPE1, TIT2) are read directly.
    """
    stem = _one_line(Path(path).stem) or Path(path).name
    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError):
        return Entry(path, -1, stem)  # the file is there; a player may still play it
    if audio is None:
        return Entry(path, -1, stem)
    length = getattr(audio.info, "length", None)
    seconds = round(length) if isinstance(length, (int, float)) and length > 0 else -1
    tags = audio.tags
    artist = title = None
    if tags is not None:
        artist = _first(tags, "artist", "TPE1")
        title = _first(tags, "title", "TIT2")
    title = title or stem
    return Entry(path, seconds, f"{artist} - {title}" if artist else title)


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

    Only #EXTM3U and #EXTINF lines: a playlist is named by its file, and a title directive such
    as '#PLAYLIST:' is unknown to strict parsers.
    """
    lines = ["#EXTM3U"]
    for e in entries:
        lines.append(f"#EXTINF:{e.seconds},{e.title}")
        lines.append(location(e.path, relative_to))
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) so that `path` is always either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def mood_playlists(
    rows: Iterable[IndexRow],
    out_dir: Path,
    *,
    moods: Mapping[str, str] | None = None,
    relative_to: Path | None = None,
) -> PlaylistResult:
    """Write one `<Mood>.m3u8` per mood into `out_dir`, tracks by confidence, best first.

    Tracks are grouped by the mood word the index holds (the one in their tags). Every configured
    mood gets a file, empty when no track has it, so an earlier run's playlist never lingers with
    stale tracks.
    """
    result = PlaylistResult()
    configured = {**DEFAULT_MOODS, **(moods or {})}
    # Keyed by file name, casefolded, so 'Happy' and 'happy' from two scans share one file.
    groups: dict[str, tuple[str, str, list[IndexRow]]] = {}
    for q in QUADRANTS:
        groups[safe_file_name(configured[q]).casefold()] = (q, configured[q], [])
    for row in playable(rows, result.skipped):
        quadrant = row.quadrant or ""
        word = row.mood or configured.get(quadrant, quadrant)
        key = safe_file_name(word).casefold()
        groups.setdefault(key, (quadrant, word, []))[2].append(row)
    for _quadrant, word, members in sorted(groups.values(), key=lambda g: (g[0], g[1])):
        target = out_dir / f"{safe_file_name(word)}{SUFFIX}"
        entries = [track_entry(r.path) for r in by_confidence(members)]
        write_text_atomic(target, render_m3u8(entries, relative_to=relative_to))
        result.written[target] = len(entries)
    return result
