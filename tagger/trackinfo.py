"""What a track is called: artist, album, title and duration, for the index, playlist entries,
`list`, `show` and the map.

A scan reads them from the file's tags into the index (`read_names`); later readers take them
from the index row, and from the file's own tags only for a row an older mertag indexed without
them. The title shown falls back to the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mutagen

if TYPE_CHECKING:
    from mertag.tagger.index import IndexRow


@dataclass(frozen=True)
class TrackInfo:
    """A track's names and length; `seconds` is -1 when unknown, as the M3U convention has it."""

    title: str
    artist: str | None = None
    album: str | None = None
    seconds: int = -1

    @property
    def label(self) -> str:
        """'Artist - Title', or the title alone."""
        return f"{self.artist} - {self.title}" if self.artist else self.title


def one_line(text: str) -> str:
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
        if values is not None and one_line(str(values)):
            return one_line(str(values))
    return None


def file_name_title(path: str) -> str:
    return one_line(Path(path).stem) or Path(path).name


@dataclass(frozen=True)
class FileNames:
    """What a file's own tags say it is; None where a tag is absent (no fallback)."""

    artist: str | None = None
    album: str | None = None
    title: str | None = None
    duration: float | None = None  # seconds, from the container's stream info


def read_names(path: str) -> FileNames:
    """Artist, album, title (one line each) and duration of a file from its tags.

    Easy mode gives 'artist'/'album'/'title' for ID3 in MP3, MP4 and Vorbis comments; WAV and
    AIFF have no easy mode, so their ID3 frames (TPE1, TALB, TIT2) are read directly. A file
    mutagen cannot read has no names (an empty FileNames).
    """
    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError):
        return FileNames()
    if audio is None:
        return FileNames()
    length = getattr(audio.info, "length", None)
    duration = float(length) if isinstance(length, (int, float)) and length > 0 else None
    tags = audio.tags
    if tags is None:
        return FileNames(duration=duration)
    return FileNames(
        artist=_first(tags, "artist", "TPE1"),
        album=_first(tags, "album", "TALB"),
        title=_first(tags, "title", "TIT2"),
        duration=duration,
    )


def _seconds(duration: float | None) -> int:
    return round(duration) if duration is not None and duration > 0 else -1


def read_track_info(path: str) -> TrackInfo:
    """A file's names from its own tags, the title falling back to the file name (a player may
    still play a file mutagen cannot read)."""
    names = read_names(path)
    return TrackInfo(
        names.title or file_name_title(path), names.artist, names.album, _seconds(names.duration)
    )


def _column(row: IndexRow, name: str) -> str | None:
    value = getattr(row, name, None)
    if value is None:
        return None
    return one_line(str(value)) or None


def has_names(row: IndexRow) -> bool:
    """Whether the index recorded the file's names (a scan since schema v3 did, even when the
    file has no tags: its duration is there)."""
    return any(getattr(row, f, None) is not None for f in ("artist", "album", "title", "duration"))


def track_info(row: IndexRow) -> TrackInfo:
    """The row's names when the index holds them (no file is opened), else the file's tags."""
    if not has_names(row):
        return read_track_info(row.path)
    return TrackInfo(
        title=_column(row, "title") or file_name_title(row.path),
        artist=_column(row, "artist"),
        album=_column(row, "album"),
        seconds=_seconds(row.duration),
    )
