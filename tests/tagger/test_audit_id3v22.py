"""An ID3v2.2 file keeps its ID3 version: mertag does not rewrite it unless asked to convert.

Found by the red-team audit: mutagen reads ID3v2.2 (old iTunes, early taggers) but cannot write
it, so every tag write turned the file's v2.2 tag into v2.4, the file's identity broken without
being asked. Now such a file is analysed and indexed, not tagged: one line names it and the
reason, its row records the write it did not get (not an error), and `--convert-id3v22` (scan,
write) converts it. Likewise `untag`: a v2.2 tag holding mertag's fields keeps them byte for
byte, and the file is a failure naming the reason, unless `untag --convert-id3v22`. Real v2.2
files (a v2.2 tag built here byte by byte before a corpus track's own MP3 audio, an ID3v1 tag
after it), the real model, the CLI, tags read back with mutagen.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.id3 import ID3

from mertag.tagger.index import Index
from mertag.tagger.tags import ID3v22Kept, read_tags, remove_tags, write_tags
from tests.audio_files import encode_tone
from tests.tagger.scanned_library import WRITTEN_FIELDS as VALUES
from tests.tagger.scanned_library import invoke
from tests.tagger.test_uncertain import _silence as silence

CONVERT = "--convert-id3v22"
V22_REASON = "ID3v2.2 tags cannot be written without converting them to v2.4"
WRITE_HINT = ": left as they are (`mertag write --convert-id3v22` converts and tags them)"
UNTAG_REASON = (
    f"{V22_REASON}: left as they are "
    "(`mertag untag --convert-id3v22` converts them and takes mertag's fields out)"
)


def frame22(frame_id: bytes, data: bytes) -> bytes:
    """One ID3v2.2 frame: a 3-byte id, a 3-byte big-endian size, no flags."""
    return frame_id + struct.pack(">I", len(data))[1:] + data


def text22(frame_id: bytes, text: str) -> bytes:
    return frame22(frame_id, b"\x00" + text.encode("latin-1"))


def synchsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def user_text22(desc: str, text: str) -> bytes:
    """A v2.2 user text frame (TXX, v2.3's TXXX)."""
    return frame22(b"TXX", b"\x00" + desc.encode("latin-1") + b"\x00" + text.encode("latin-1"))


def id3v22_tag(mood: str = "Dreamy", *extra: bytes) -> bytes:
    """A v2.2 tag as iTunes 4 wrote them: names, a comment, a user text, a MOOD, a picture;
    `extra` frames after them."""
    body = b"".join(
        [
            text22(b"TT2", "Bay at dusk"),
            text22(b"TP1", "The Users"),
            text22(b"TAL", "Old Rips"),
            text22(b"TCO", "Ambient"),
            frame22(b"COM", b"\x00eng\x00ripped in 2004"),
            user_text22("MusicBrainz Album Id", "0b4a8f1e-0000-4000-8000-1234"),
            user_text22("MOOD", mood),
            frame22(b"PIC", b"\x00JPG\x03cover\x00" + b"\xff\xd8\xff\xe0" + bytes(60)),
            *extra,
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


def v22_file(corpus: Path, tag: bytes) -> Path:
    """bay.mp3's audio behind the ID3v2.2 tag `tag`, with an ID3v1 tag after it, alone in
    `corpus`."""
    audio = mp3_audio(corpus / "bay.mp3")
    for f in corpus.iterdir():
        f.unlink()
    path = corpus / "old rip.mp3"
    path.write_bytes(tag + audio + id3v1_tag())
    tags: Any = mutagen.File(path).tags
    assert tags.version == (2, 2, 0) and str(tags["TIT2"]) == "Bay at dusk"
    return path


@pytest.fixture
def old_rip(corpus: Path) -> Path:
    """bay.mp3's audio behind an ID3v2.2 tag, with an ID3v1 tag after it."""
    return v22_file(corpus, id3v22_tag())


MERTAG_FRAMES = {
    "MERTAG_MOOD": "Calm",
    "MERTAG_QUADRANT": "Q4",
    "MERTAG_CONFIDENCE": "0.810",
    "MERTAG_PREVIOUS_MOOD": "Dreamy",
}
"""mertag's fields as an --overwrite-mood write leaves them: its word Calm replaced the user's
MOOD Dreamy, kept in MERTAG_PREVIOUS_MOOD."""


@pytest.fixture
def tagged_old_rip(corpus: Path) -> Path:
    """As old_rip, but its v2.2 tag holds mertag's fields already (copied over by another tool,
    or written by a tool that keeps v2.2): MOOD is mertag's Calm."""
    frames = [user_text22(name, value) for name, value in MERTAG_FRAMES.items()]
    return v22_file(corpus, id3v22_tag("Calm", *frames))


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


def test_a_scan_names_every_id3v22_file_and_says_a_formats_reason_once(
    old_rip: Path, tmp_path: Path
) -> None:
    """The ID3v2.2 reason is about each file's tag (ID3v22Kept.per_file), an RF64 file's about
    its format: the scan's report tells them apart by the exception, not by the message."""
    other = old_rip.with_name("older rip.mp3")
    other.write_bytes(old_rip.read_bytes())
    for name in ("long take.wav", "longer take.wav"):
        encode_tone(old_rip.parent / name, 3.5, "wav", "pcm_s16le", options={"rf64": "always"})
    result = invoke(["scan", old_rip.parent, "--index", tmp_path / "index.sqlite3", "-j", "1"])
    assert result.exit_code == 0, result.output
    named = sorted(line for line in result.stderr.splitlines() if line.startswith("not tagged"))
    assert named == [f"not tagged {path}: {V22_REASON}{WRITE_HINT}" for path in (old_rip, other)]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "RF64" in notes[0] and "take.wav" in notes[0], result.stderr


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


def test_untag_keeps_an_id3v22_tag_holding_mertags_fields_and_names_the_file(
    tagged_old_rip: Path, tmp_path: Path
) -> None:
    before = tagged_old_rip.read_bytes()
    index = tmp_path / "index.sqlite3"
    for dry_run in ([], ["--dry-run"]):
        result = invoke(["untag", tagged_old_rip.parent, "--index", index, *dry_run])
        assert result.exit_code == 1, result.output  # mertag's fields are still in the file
        assert tagged_old_rip.read_bytes() == before
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: {tagged_old_rip}: {UNTAG_REASON}"], result.stderr
        assert "0 of 1 audio file; 1 failed" in result.stderr
    with pytest.raises(ID3v22Kept, match="untag --convert-id3v22"):
        remove_tags(tagged_old_rip, None)
    assert tagged_old_rip.read_bytes() == before and not index.exists()

    # `show` reads its tags and says why untag would leave them.
    assert invoke(["scan", tagged_old_rip.parent, "--index", index, "--no-write"]).exit_code == 0
    shown = invoke(["show", tagged_old_rip, "--index", index, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    (report,) = json.loads(shown.stdout)
    assert report["file"]["tags"]["MERTAG_QUADRANT"] == "Q4"
    assert report["untag_would_change"] == [] and report["untag_refused"] == UNTAG_REASON
    assert tagged_old_rip.read_bytes() == before

    # A v2.2 file holding nothing of mertag's is no failure: there is nothing to take out.
    plain = id3v22_tag() + mp3_audio(tagged_old_rip)  # the audio and the ID3v1 tag after it
    tagged_old_rip.write_bytes(plain)
    result = invoke(["untag", tagged_old_rip.parent, "--index", index])
    assert result.exit_code == 0, result.output
    assert tagged_old_rip.read_bytes() == plain


def test_untag_asked_to_convert_takes_mertags_fields_out_and_gives_the_users_back(
    tagged_old_rip: Path, tmp_path: Path
) -> None:
    frames = {**user_frames(tagged_old_rip), "MOOD": "Dreamy"}  # the user's MOOD, given back
    after_tag, v1 = tail(tagged_old_rip), tagged_old_rip.read_bytes()[-128:]
    inode = tagged_old_rip.stat().st_ino
    index = tmp_path / "index.sqlite3"
    args = ["untag", tagged_old_rip.parent, "--index", index, "--convert-id3v22"]

    before = tagged_old_rip.read_bytes()
    result = invoke([*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert tagged_old_rip.read_bytes() == before
    assert "would restore MOOD=Dreamy; would convert ID3v2.2 to v2.4" in result.stderr

    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "restored MOOD=Dreamy; converted ID3v2.2 to v2.4" in result.stderr
    assert ID3(tagged_old_rip).version == (2, 4, 0)
    assert not [k for k in read_tags(tagged_old_rip) if k.startswith("MERTAG_")]
    assert user_frames(tagged_old_rip) == frames
    assert tail(tagged_old_rip) == after_tag and tagged_old_rip.read_bytes()[-128:] == v1
    assert tagged_old_rip.stat().st_ino == inode


def test_converted_at_write_time_untag_gives_back_every_value_the_user_had(
    old_rip: Path, tmp_path: Path
) -> None:
    frames, after_tag = user_frames(old_rip), tail(old_rip)
    index = tmp_path / "index.sqlite3"
    scanned = invoke(["scan", old_rip.parent, "--index", index, "-j", "1", "--no-write"])
    assert scanned.exit_code == 0, scanned.output
    policy = ["--overwrite-mood", "--energy", "--mood-field", "COMMENT,GROUPING"]
    result = invoke(["write", "--index", index, "--convert-id3v22", *policy])
    assert result.exit_code == 0, result.output
    tags = read_tags(old_rip)
    word = tags["MERTAG_MOOD"]
    assert tags["MOOD"] == word and tags["MERTAG_PREVIOUS_MOOD"] == "Dreamy"
    assert tags["COMMENT"].startswith("ripped in 2004") and tags["COMMENT"] != "ripped in 2004"
    assert tags["ENERGY"] and tags["GROUPING"] == word

    result = invoke(["untag", old_rip.parent, "--index", index])  # a v2.4 file now: no option
    assert result.exit_code == 0, result.output
    assert ID3(old_rip).version == (2, 4, 0)
    assert read_tags(old_rip) == {"MOOD": "Dreamy", "COMMENT": "ripped in 2004"}
    assert user_frames(old_rip) == frames and tail(old_rip) == after_tag


def test_a_silent_id3v22_track_keeps_mertags_fields_until_asked_to_convert(
    tmp_path: Path,
) -> None:
    """A scan takes mertag's fields back out of a track that fell silent (test_uncertain.py):
    from an ID3v2.2 tag only with --convert-id3v22; else the file is named and left as it is."""
    (tmp_path / "lib").mkdir()
    quiet = silence(tmp_path / "lib" / "quiet.wav", 5.0)
    frames = [user_text22(name, value) for name, value in MERTAG_FRAMES.items()]
    tag = id3v22_tag("Calm", *frames)
    riff = bytearray(quiet.read_bytes())
    riff += b"id3 " + struct.pack("<I", len(tag)) + tag + b"\0" * (len(tag) % 2)
    riff[4:8] = struct.pack("<I", len(riff) - 8)
    quiet.write_bytes(bytes(riff))
    assert mutagen.File(quiet).tags.version == (2, 2, 0)
    assert read_tags(quiet)["MERTAG_QUADRANT"] == "Q4"
    before = quiet.read_bytes()
    index = tmp_path / "index.sqlite3"

    result = invoke(["scan", quiet.parent, "--index", index, "-j", "1"])
    assert result.exit_code == 0, result.output
    assert quiet.read_bytes() == before
    lines = [line for line in result.stderr.splitlines() if V22_REASON in line]
    assert lines == [f"not tagged {quiet}: {UNTAG_REASON}"], result.stderr
    assert only_row(index).status == "silent"

    result = invoke(["scan", quiet.parent, "--index", index, "-j", "1", "--force", CONVERT])
    assert result.exit_code == 0, result.output
    assert mutagen.File(quiet).tags.version == (2, 4, 0)
    assert read_tags(quiet) == {"MOOD": "Dreamy", "COMMENT": "ripped in 2004"}
    assert mutagen.File(quiet).info.length == pytest.approx(5.0)
