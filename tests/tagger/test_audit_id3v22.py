"""An ID3v2.2 file keeps its ID3 version: mertag does not rewrite it unless asked to convert.

Found by the red-team audit: mutagen reads ID3v2.2 (old iTunes, early taggers) but cannot write
it, so every tag write turned the file's v2.2 tag into v2.4, the file's identity broken without
being asked. Now such a file is analysed and indexed, not tagged: one line names it and the
reason, its row records the write it did not get (not an error), and `--convert-id3v22` (scan,
write) converts it. Real v2.2 files (a v2.2 tag built here byte by byte before a corpus track's
own MP3 audio, an ID3v1 tag after it), the real model, the CLI, tags read back with mutagen.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.id3 import ID3

from mertag.tagger.index import Index
from mertag.tagger.tags import read_tags, remove_tags, write_tags
from tests.tagger.scanned_library import WRITTEN_FIELDS as VALUES
from tests.tagger.scanned_library import invoke

V22_REASON = "ID3v2.2 tags cannot be written without converting them to v2.4"


def frame22(frame_id: bytes, data: bytes) -> bytes:
    """One ID3v2.2 frame: a 3-byte id, a 3-byte big-endian size, no flags."""
    return frame_id + struct.pack(">I", len(data))[1:] + data


def text22(frame_id: bytes, text: str) -> bytes:
    return frame22(frame_id, b"\x00" + text.encode("latin-1"))


def synchsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3v22_tag() -> bytes:
    """A v2.2 tag as iTunes 4 wrote them: names, a comment, a user text, a MOOD, a picture."""
    body = b"".join(
        [
            text22(b"TT2", "Bay at dusk"),
            text22(b"TP1", "The Users"),
            text22(b"TAL", "Old Rips"),
            text22(b"TCO", "Ambient"),
            frame22(b"COM", b"\x00eng\x00ripped in 2004"),
            frame22(b"TXX", b"\x00MusicBrainz Album Id\x00" + b"0b4a8f1e-0000-4000-8000-1234"),
            frame22(b"TXX", b"\x00MOOD\x00Dreamy"),
            frame22(b"PIC", b"\x00JPG\x03cover\x00" + b"\xff\xd8\xff\xe0" + bytes(60)),
        ]
    )
    padding = bytes(256)
    return b"ID3\x02\x00\x00" + synchsafe(len(body) + len(padding)) + body + padding


def id3v1_tag() -> bytes:
    fields = [b"Bay at dusk".ljust(30, b"\0"), b"The Users".ljust(30, b"\0")]
    return b"TAG" + b"".join(fields) + b"Old Rips".ljust(30, b"\0") + b"2004" + bytes(30) + b"\x0d"


def mp3_audio(path: Path) -> bytes:
    """The MP3 frames of a corpus file: everything after its ID3v2 tag."""
    data = path.read_bytes()
    assert data[:3] == b"ID3"
    size = 0
    for byte in data[6:10]:
        size = size << 7 | (byte & 0x7F)
    return data[10 + size :]


def user_frames(path: Path) -> dict[str, str]:
    """Every frame of the file's ID3v2 tag but mertag's, as mutagen reads it (v2.2 in v2.4
    form), MOOD under its v2.4 name."""
    tags = ID3(path, load_v1=False)
    out = {}
    for key, frame in tags.items():
        if "MERTAG_" in key:
            continue
        if key in ("TMOO", "TXXX:MOOD"):  # v2.4's MOOD field is TMOO
            out["MOOD"] = "; ".join(map(str, frame.text))
        else:
            out[key] = frame.pprint()
    return out


def tail(path: Path) -> bytes:
    """The audio and the ID3v1 tag: everything after the ID3v2 tag."""
    return hashlib.sha256(mp3_audio(path)).digest()


@pytest.fixture
def old_rip(corpus: Path) -> Path:
    """bay.mp3's audio behind an ID3v2.2 tag, with an ID3v1 tag after it."""
    audio = mp3_audio(corpus / "bay.mp3")
    for f in corpus.iterdir():
        f.unlink()
    path = corpus / "old rip.mp3"
    path.write_bytes(id3v22_tag() + audio + id3v1_tag())
    tags: Any = mutagen.File(path).tags
    assert tags.version == (2, 2, 0) and str(tags["TIT2"]) == "Bay at dusk"
    return path


def only_row(index: Path) -> Any:
    with Index(index, read_only=True) as idx:
        (row,) = idx.rows()
    return row


def test_an_id3v22_file_is_analysed_and_indexed_but_not_rewritten(
    old_rip: Path, tmp_path: Path
) -> None:
    before = old_rip.read_bytes()
    index = tmp_path / "index.sqlite3"
    result = invoke(["scan", old_rip.parent, "--index", index, "-j", "1"])
    assert result.exit_code == 0, result.output  # not a failure: nothing was asked that failed
    assert old_rip.read_bytes() == before
    row = only_row(index)
    assert row.status == "ok" and row.quadrant and row.error is None
    assert row.tagged == 0 and row.tag_error is None
    assert row.not_tagged.startswith(V22_REASON), row.not_tagged
    lines = [line for line in result.stderr.splitlines() if V22_REASON in line]
    assert len(lines) == 1 and "old rip.mp3" in lines[0] and "--convert-id3v22" in lines[0], lines

    result = invoke(["write", "--index", index])  # neither does a write, nor a forced version
    assert result.exit_code == 0, result.output
    result = invoke(["write", "--index", index, "--id3v23"])
    assert result.exit_code == 0, result.output
    assert old_rip.read_bytes() == before
    lines = [line for line in result.stderr.splitlines() if V22_REASON[:20] in line]
    assert len(lines) == 1 and "old rip.mp3" in lines[0], result.stderr

    result = invoke(["scan", old_rip.parent, "--index", index, "-j", "1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert old_rip.read_bytes() == before


def test_asked_to_convert_the_tag_becomes_v24_and_untag_keeps_everything_else(
    old_rip: Path, tmp_path: Path
) -> None:
    frames, after_tag = user_frames(old_rip), tail(old_rip)
    v1 = old_rip.read_bytes()[-128:]
    inode = old_rip.stat().st_ino
    index = tmp_path / "index.sqlite3"
    assert invoke(["scan", old_rip.parent, "--index", index, "-j", "1"]).exit_code == 0

    result = invoke(["write", "--index", index, "--convert-id3v22"])
    assert result.exit_code == 0, result.output
    assert ID3(old_rip).version == (2, 4, 0)
    tags = read_tags(old_rip)
    assert tags["MOOD"] == "Dreamy"  # the user's, kept; mertag's word beside it
    assert tags["MERTAG_MOOD"] and tags["MERTAG_QUADRANT"] == only_row(index).quadrant
    assert user_frames(old_rip) == frames
    assert tail(old_rip) == after_tag and old_rip.read_bytes()[-128:] == v1
    assert old_rip.stat().st_ino == inode
    row = only_row(index)
    assert row.tagged == 1 and row.not_tagged is None

    result = invoke(["untag", old_rip.parent, "--index", index])
    assert result.exit_code == 0, result.output
    assert not [k for k in read_tags(old_rip) if k.startswith("MERTAG_")]
    assert user_frames(old_rip) == frames
    assert tail(old_rip) == after_tag and old_rip.read_bytes()[-128:] == v1


@pytest.mark.parametrize(("name", "version"), [("celtic.mp3", (2, 3, 0)), ("bay.mp3", (2, 4, 0))])
def test_other_id3_versions_and_an_id3v1_tail_are_kept(
    corpus: Path, name: str, version: tuple[int, int, int]
) -> None:
    path = corpus / name
    if not path.read_bytes()[-128:].startswith(b"TAG"):
        with open(path, "ab") as f:
            f.write(id3v1_tag())
    v1 = path.read_bytes()[-128:]
    assert write_tags(path, VALUES, convert_id3v22=True)  # the option converts v2.2 only
    assert ID3(path).version == version and path.read_bytes()[-128:] == v1
    assert remove_tags(path, None)
    assert ID3(path).version == version and path.read_bytes()[-128:] == v1
