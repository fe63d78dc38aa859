"""What players that read tags through FFmpeg (ffprobe) see of mertag's fields: every format of
../shared/corpus, really tagged by a scan, read back through PyAV's FFmpeg beside mutagen. The
facts docs/PLAYERS.md states about FFmpeg are the assertions here."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import mutagen
import pytest
from mutagen.id3 import ID3

from mertag.tagger.tags import MERTAG_FIELDS, read_tags
from tests.tagger.scanned_library import CORPUS_NAMES, Library, invoke

# Where FFmpeg puts a file's tags, and the key it gives MOOD, per tag kind (docs/PLAYERS.md).
FFMPEG_MOOD_KEY = {"id3v24": "TMOO", "id3v23": "MOOD", "vorbis": "MOOD", "mp4": "MOOD"}
STREAM_TAGS = (".ogg", ".opus")  # Ogg: the Vorbis comment belongs to the stream


def _kind(path: Path) -> str:
    if path.suffix in (".mp3", ".wav"):
        return f"id3v2{mutagen.File(path).tags.version[1]}"
    return "mp4" if path.suffix == ".m4a" else "vorbis"


def ffmpeg_tags(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(container metadata, first audio stream's metadata) as FFmpeg demuxes them."""
    with av.open(str(path), metadata_errors="ignore") as container:
        return dict(container.metadata), dict(container.streams.audio[0].metadata)


def riff_chunks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    chunks, at = [], 12
    while at + 8 <= len(data):
        size = struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append(data[at : at + 4])
        at += 8 + size + (size & 1)
    return chunks


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_ffmpeg_reads_every_field_mertag_wrote(library: Library, name: str) -> None:
    path = library.path(name)
    written = read_tags(path)
    assert set(written) == set(MERTAG_FIELDS), name
    container, stream = ffmpeg_tags(path)
    seen, empty = (stream, container) if path.suffix in STREAM_TAGS else (container, stream)
    assert not {k for k in empty if "MERTAG" in k or "MOOD" in k.upper()}, (name, empty)
    assert seen[FFMPEG_MOOD_KEY[_kind(path)]] == written["MOOD"], (name, seen)
    for field in MERTAG_FIELDS[1:]:  # every MERTAG_* under its own name, in every format
        assert seen[field] == written[field], (name, field, seen)


def test_an_id3v24_mood_is_tmoo_to_ffmpeg_and_mood_once_written_as_v23(library: Library) -> None:
    mp3 = library.path("bay.mp3")
    container, _ = ffmpeg_tags(mp3)
    assert ID3(mp3).version[1] == 4 and "TMOO" in container and "MOOD" not in container
    result = invoke(["write", "--id3v23", "path:bay.mp3", "--index", library.index])
    assert result.exit_code == 0, result.output
    container, _ = ffmpeg_tags(mp3)
    assert "TMOO" not in container and container["MOOD"] == read_tags(mp3)["MOOD"]


def test_a_wav_with_a_list_info_chunk_shows_its_id3_mood_to_this_ffmpeg(library: Library) -> None:
    wav = library.path("lava.wav")
    chunks = riff_chunks(wav)
    assert b"LIST" in chunks and b"id3 " in chunks  # RIFF INFO before the data, ID3 after it
    container, _ = ffmpeg_tags(wav)
    assert container["encoder"].startswith("Lavf")  # from LIST/INFO ISFT
    assert container["TMOO"] == read_tags(wav)["MOOD"]  # and the ID3 chunk's fields beside it
