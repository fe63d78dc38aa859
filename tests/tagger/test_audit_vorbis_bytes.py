"""Vorbis comments that are not valid UTF-8 (Latin-1 from old rippers) survive a tag write.

Found by the red-team audit: mutagen decodes Vorbis comments with errors="replace" and writes
back what it decoded, so a FLAC, Ogg Vorbis or Opus file's "ALBUM=Caf\\xe9 del Mar" came out of
`mertag scan` as "Caf\\ufffd del Mar", and a Latin-1 MOOD replaced with --overwrite-mood could
not be restored by untag. Real files, the CLI, the raw comment bytes checked.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.ogg import OggPage

from mertag.tagger.tags import read_tags, write_tags
from tests.tagger.scanned_library import invoke
from tests.tagger.test_audit_exfat import audio_packets

NAMES = ("egypt.flac", "farm.ogg", "garden.opus")
ALBUM = b"ALBUM=Caf\xe9 del Mar_"  # Latin-1: not valid UTF-8
MOOD = b"MOOD=R\xeaveur\xe9______"
OWN_MOOD = struct.pack("<I", len(MOOD)) + MOOD  # the MOOD comment itself, length first


def checksummed(data: bytes) -> bytes:
    """An Ogg file's pages written anew, so each checksum fits the bytes edited in it."""
    stream, pages = io.BytesIO(data), []
    while True:
        try:
            pages.append(OggPage(stream))
        except EOFError:
            return b"".join(page.write() for page in pages)


def with_latin1_comments(path: Path) -> None:
    """Give the file an ALBUM and a MOOD in Latin-1, as an old ripper wrote them: placeholders
    of the same length written by mutagen, then their bytes replaced (Ogg pages re-checksummed)."""
    audio: Any = mutagen.File(path)
    audio.tags["ALBUM"], audio.tags["MOOD"] = ["PLACEHOLDER_Z"], ["PLACEHOLDER_M"]
    audio.save()
    data = path.read_bytes()
    data = data.replace(b"ALBUM=PLACEHOLDER_Z", ALBUM).replace(b"MOOD=PLACEHOLDER_M", MOOD)
    path.write_bytes(data if path.suffix == ".flac" else checksummed(data))
    assert ALBUM in path.read_bytes() and MOOD in path.read_bytes()


@pytest.fixture
def lib(corpus: Path) -> Path:
    for f in corpus.iterdir():
        if f.name not in NAMES:
            f.unlink()
    for name in NAMES:
        with_latin1_comments(corpus / name)
    return corpus


def test_latin1_comments_are_kept_and_a_latin1_mood_comes_back(lib: Path, tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    audio = {n: audio_packets(lib / n) for n in NAMES}
    result = invoke(["scan", lib, "--index", index, "-j", "1", "--overwrite-mood"])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        data = (lib / name).read_bytes()
        assert ALBUM in data, name  # a comment mertag did not write: its bytes as they were
        assert OWN_MOOD not in data and b"MERTAG_PREVIOUS_MOOD=R\xeaveur\xe9______" in data, name
        assert audio_packets(lib / name) == audio[name], name

    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        data = (lib / name).read_bytes()
        assert ALBUM in data and OWN_MOOD in data and b"MERTAG_" not in data, name
        assert audio_packets(lib / name) == audio[name], name


def test_a_comment_key_that_is_not_ascii_is_read_as_mutagen_reads_it(corpus: Path) -> None:
    # The fuzz trial found it: a key byte 0x80 made the surrogateescape read raise; such a block
    # is read by mutagen's repairing read instead, as before, and the write goes on.
    path = corpus / "garden.opus"
    audio: Any = mutagen.File(path)
    audio.tags["TITLE"] = ["Garden"]
    audio.save()
    data = path.read_bytes().replace(b"TITLE=Garden", b"T\x80TLE=Garden", 1)
    path.write_bytes(checksummed(data))
    assert write_tags(path, {"MOOD": "Happy", "MERTAG_QUADRANT": "Q1"}) is True
    assert read_tags(path)["MERTAG_QUADRANT"] == "Q1"
