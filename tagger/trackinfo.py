"""What a track is called: artist, album, title and duration, for playlist entries and the map.

Read from the index row when the index holds them (its artist, album, title and duration
columns), else from the file's own tags; the title falls back to the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen

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


def read_track_info(path: str) -> TrackInfo:
    """Duration, artist, album and title of a file from its tags.

    Easy mode gives 'artist'/'album'/'title' for ID3 in MP3, MP4 and Vorbis comments; WAV and
    AIFF have no easy mode, so their ID3 frames (TPE1, TALB, TIT2) are read directly. A file
    mutagen cannot read still gets its file name: a player may still play it.
    """
    stem = file_name_title(path)
    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError):
        return TrackInfo(stem)
    if audio is None:
        return TrackInfo(stem)
    length = getattr(audio.info, "length", None)
    seconds = round(length) if isinstance(length, (int, float)) and length > 0 else -1
    tags = audio.tags
    artist = album = title = None
    if tags is not None:
        artist = _first(tags, "artist", "TPE1")
        album = _first(tags, "album", "TALB")
        title = _first(tags, "title", "TIT2")
    return TrackInfo(title or stem, artist, album, seconds)


def _column(row: IndexRow, name: str) -> str | None:
    value = getattr(row, name, None)
    if value is None:
        return None
    return one_line(str(value)) or None


def track_info(row: IndexRow) -> TrackInfo:
    """The row's names when the index holds them (no file is opened), else the file's tags."""
    if not hasattr(row, "title"):
        return read_track_info(row.path)
    duration = getattr(row, "duration", None)
    return TrackInfo(
        title=_column(row, "title") or file_name_title(row.path),
        artist=_column(row, "artist"),
        album=_column(row, "album"),
        seconds=round(duration) if isinstance(duration, (int, float)) and duration > 0 else -1,
    )
