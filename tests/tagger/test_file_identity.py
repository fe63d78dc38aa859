"""A tag write keeps the file itself: its inode and every hard link, its extended attributes and
ACLs, its owner and mode, its ID3 version and every ID3 frame byte for byte; and a write killed
after its journal was made is finished by the next run (mertag.tagger.safe_write).

Checked on real files with os.stat, os.getxattr and mutagen; the kill is reproduced exactly by
leaving the state a SIGKILL leaves (journal made, the file half overwritten, the writer gone), and
at random moments by the SIGKILL trials of test_crash_safety.py.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
from pathlib import Path

import pytest
from mutagen.id3 import ID3, TYER
from mutagen.wave import WAVE

from mertag.tagger.safe_write import (
    TEMP_SUFFIX,
    finish_interrupted_writes,
    remove_stale_temps,
)
from mertag.tagger.tags import (
    TagError,
    UnsupportedFormat,
    audio_fingerprint,
    read_tags,
    remove_tags,
    write_tags,
)
from mertag.tagger.write_journal import (
    JOURNAL_SUFFIX,
    JournalRecord,
    create,
    file_digest,
    journal_path,
    marked_journal,
)
from tests.audio_files import encode_tone
from tests.tagger.fault_helpers import killed_mid_write_back

VALUES = {"MOOD": "Happy", "MERTAG_QUADRANT": "Q1", "MERTAG_MODEL": "mertag-test 1.0"}
TAGGED = {**VALUES, "MERTAG_MOOD": "Happy"}
FORMATS = {
    "t.flac": ("flac", "flac"),
    "t.mp3": ("mp3", "libmp3lame"),
    "t.wav": ("wav", "pcm_s16le"),
    "t.m4a": ("ipod", "aac"),
    "t.opus": ("ogg", "libopus"),
    "t.aiff": ("aiff", "pcm_s16be"),
    "t.oga": ("ogg", "flac"),  # Ogg FLAC
}


def make(folder: Path, name: str, seconds: float = 0.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rate = 48000 if name.endswith(".opus") else 22050
    return encode_tone(folder / name, seconds, *FORMATS[name], rate=rate)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith((TEMP_SUFFIX, JOURNAL_SUFFIX))]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_hard_links_share_the_tags_and_keep_one_inode(name: str, tmp_path: Path) -> None:
    path = make(tmp_path / "downloads", name)
    library = tmp_path / "library"
    library.mkdir()
    other = library / name
    os.link(path, other)
    os.link(path, tmp_path / "downloads" / f"copy-{name}")
    before = os.stat(path)
    fingerprint = audio_fingerprint(path)

    assert write_tags(other, VALUES) is True
    after = os.stat(path)
    assert (after.st_dev, after.st_ino, after.st_nlink) == (before.st_dev, before.st_ino, 3)
    for name_ in (path, other, tmp_path / "downloads" / f"copy-{name}"):
        assert os.stat(name_).st_ino == before.st_ino
        assert read_tags(name_) == TAGGED
    # Disk use: still one file's worth (the tags add a few blocks at most, no second copy).
    assert after.st_blocks * 512 < before.st_blocks * 512 + (256 << 10)
    assert audio_fingerprint(other) == fingerprint

    assert remove_tags(path, "Happy")
    assert os.stat(other).st_ino == before.st_ino and read_tags(other) == {}
    assert not leftovers(path.parent) and not leftovers(library)


def _acl(uid: int) -> bytes:
    """A POSIX access ACL as Linux stores it in system.posix_acl_access: owner rw, user `uid`
    rw, group r, mask rw, other r."""
    anyone = 0xFFFFFFFF
    entries = [(0x01, 6, anyone), (0x02, 6, uid), (0x04, 4, anyone), (0x10, 6, anyone)]
    entries.append((0x20, 4, anyone))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def _set_xattr(path: Path, key: str, value: bytes) -> None:
    try:
        os.setxattr(path, key, value)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            pytest.skip(f"{path.parent} does not take {key} ({os.strerror(e.errno)})")
        raise


@pytest.mark.skipif(not hasattr(os, "setxattr"), reason="extended attributes are Linux-only here")
@pytest.mark.parametrize("name", ["t.flac", "t.mp3", "t.m4a", "t.wav"])
def test_xattrs_acls_owner_and_mode_are_kept(name: str, tmp_path: Path) -> None:
    path = make(tmp_path, name)
    path.chmod(0o640)
    _set_xattr(path, "user.comment", b"kept by KDE and GNOME")
    _set_xattr(path, "user.xdg.tags", b"favourite,road trip")
    _set_xattr(path, "system.posix_acl_access", _acl(1000))
    attrs = {k: os.getxattr(path, k) for k in os.listxattr(path)}
    st = os.stat(path)

    assert write_tags(path, VALUES) is True
    assert {k: os.getxattr(path, k) for k in os.listxattr(path)} == attrs
    now = os.stat(path)
    assert (now.st_ino, now.st_uid, now.st_gid) == (st.st_ino, st.st_uid, st.st_gid)
    assert now.st_mode == st.st_mode
    assert now.st_mtime_ns >= st.st_mtime_ns  # a new mtime, as after any tag editor

    assert remove_tags(path, "Happy")
    assert {k: os.getxattr(path, k) for k in os.listxattr(path)} == attrs


def _v23_frame(frame_id: bytes, data: bytes) -> bytes:
    return frame_id + len(data).to_bytes(4, "big") + b"\0\0" + data


# Frames ID3v2.4 lacks or changes: mutagen's v2.4 conversion merges or deletes them.
V23_FRAMES = [
    _v23_frame(b"TIT2", b"\0Bay at dawn"),
    _v23_frame(b"TYER", b"\x002016"),
    _v23_frame(b"TDAT", b"\x000405"),
    _v23_frame(b"TIME", b"\x001230"),
    _v23_frame(b"TRDA", b"\x00May 4-5, 2016"),
    _v23_frame(b"TSIZ", b"\x00123456"),
    _v23_frame(b"RVAD", b"\x03\x10" + bytes(range(1, 9))),
    _v23_frame(b"EQUA", b"\x10\x80\x40\x00\x20"),
]


def _id3v23_tag(frames: list[bytes], padding: int = 512) -> bytes:
    body = b"".join(frames) + bytes(padding)
    size = len(body)
    synchsafe = bytes((size >> s) & 0x7F for s in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + synchsafe + body


def _tag_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:3] == b"ID3"
    size = 0
    for byte in data[6:10]:
        size = size << 7 | byte
    return data[: 10 + size]


def test_id3v23_frames_survive_byte_for_byte(tmp_path: Path) -> None:
    plain = make(tmp_path, "t.mp3")
    path = tmp_path / "v23.mp3"
    path.write_bytes(_id3v23_tag(V23_FRAMES) + plain.read_bytes())
    audio = path.read_bytes()[len(_id3v23_tag(V23_FRAMES)) :]

    assert write_tags(path, VALUES) is True
    tag = _tag_bytes(path)
    assert tag[3] == 3  # still ID3v2.3
    for frame in V23_FRAMES:
        assert frame in tag, frame[:4]
    tags = ID3(path, translate=False)
    assert tags["TXXX:MOOD"].text == ["Happy"] and "TMOO" not in tags  # as Picard writes v2.3
    assert path.read_bytes()[len(tag) :] == audio

    assert remove_tags(path, "Happy")
    tag = _tag_bytes(path)
    assert tag[3] == 3 and all(frame in tag for frame in V23_FRAMES)
    assert b"MERTAG" not in tag and b"TXXX" not in tag
    assert path.read_bytes()[len(tag) :] == audio
    # A version is forced only when asked for.
    assert write_tags(path, VALUES, id3_version=4) is True
    assert ID3(path).version[:2] == (2, 4) and ID3(path)["TMOO"].text == ["Happy"]


def test_wav_id3_version_is_kept(tmp_path: Path) -> None:
    path = make(tmp_path, "t.wav")
    wav = WAVE(path)
    wav.add_tags()
    wav.tags.add(TYER(encoding=0, text=["1999"]))
    wav.save(v2_version=3)
    assert write_tags(path, VALUES) is True
    tags = WAVE(path, translate=False).tags
    assert tags.version[:2] == (2, 3) and tags["TXXX:MOOD"].text == ["Happy"]
    assert str(tags["TYER"]) == "1999"


def _killed_mid_write_back(path: Path) -> tuple[bytes, bytes]:
    return killed_mid_write_back(path, VALUES)


def test_a_killed_write_back_is_finished_by_the_next_run(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    path = make(folder, "t.flac", seconds=2.0)
    os.link(path, folder / "link.flac")
    ino = os.stat(path).st_ino
    _, result = _killed_mid_write_back(path)

    # The next scan's cleanup finishes it (remove_stale_temps replays journals first).
    assert remove_stale_temps(folder) == []
    assert path.read_bytes() == result
    assert marked_journal(path) is None  # the note on the inode is gone with the journal
    assert os.stat(path).st_ino == ino and os.stat(folder / "link.flac").st_nlink == 2
    assert read_tags(folder / "link.flac") == TAGGED
    assert not leftovers(folder)


def test_a_write_to_a_file_with_a_pending_journal_finishes_it_first(tmp_path: Path) -> None:
    path = make(tmp_path / "lib", "t.mp3")
    _, result = _killed_mid_write_back(path)
    assert write_tags(path, {**VALUES, "MERTAG_MODEL": "newer"}) is True
    assert read_tags(path) == {**TAGGED, "MERTAG_MODEL": "newer"}
    assert not leftovers(path.parent)


def test_a_write_through_another_hard_link_finishes_the_pending_one_first(
    tmp_path: Path,
) -> None:
    path = make(tmp_path / "downloads", "t.flac", seconds=2.0)
    other = tmp_path / "library" / "t.flac"
    other.parent.mkdir()
    os.link(path, other)
    _killed_mid_write_back(path)  # through downloads/, whose folder the next scan may not visit
    if marked_journal(other) is None:
        pytest.skip(f"{tmp_path} takes no user extended attributes")
    assert write_tags(other, {**VALUES, "MERTAG_MODEL": "newer"}) is True
    assert read_tags(path) == {**TAGGED, "MERTAG_MODEL": "newer"}
    assert marked_journal(other) is None and "user.mertag.journal" not in os.listxattr(path)
    assert not leftovers(path.parent) and not leftovers(other.parent)


def test_untag_finishes_a_pending_journal(tmp_path: Path) -> None:
    from mertag.tagger.untag import untag

    path = make(tmp_path / "lib", "t.wav")
    before, _ = _killed_mid_write_back(path)
    summary = untag([path.parent], None)
    assert summary.ok, summary
    assert path.read_bytes() == before  # finished, then untagged: no id3 chunk is left
    assert not leftovers(path.parent)


def test_a_live_writers_journal_is_left_alone(tmp_path: Path) -> None:
    path = make(tmp_path / "lib", "t.flac")
    before = path.read_bytes()
    copy = path.with_name(f".{path.name}.live{TEMP_SUFFIX}")
    copy.write_bytes(before)
    st = os.stat(path)
    with open(copy, "rb") as f:
        digest = file_digest(f)
    record = JournalRecord(
        path.name, copy.name, st.st_size, digest, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    )
    lock = create(record, path.parent)  # held: this writer is alive
    try:
        assert finish_interrupted_writes(path.parent) == ([], [])
        assert remove_stale_temps(path.parent) == []  # its copy is needed: kept
        assert copy.exists() and journal_path(path).exists()
        with pytest.raises(TagError, match="another mertag process is writing this file"):
            write_tags(path, VALUES)
    finally:
        os.close(lock)
    assert path.read_bytes() == before


def test_an_obsolete_journal_never_touches_a_replaced_file(tmp_path: Path) -> None:
    path = make(tmp_path / "lib", "t.flac")
    _killed_mid_write_back(path)
    path.unlink()
    replacement = make(tmp_path / "lib", "t.flac")  # the user restored it from a backup
    os.utime(replacement, ns=(10**18, 10**18))  # `cp -p`: the backup's old mtime
    data = replacement.read_bytes()
    assert finish_interrupted_writes(path.parent) == ([], [])
    assert path.read_bytes() == data and not leftovers(path.parent)


def test_a_tampered_copy_is_reported_and_kept(tmp_path: Path) -> None:
    path = make(tmp_path / "lib", "t.flac")
    _killed_mid_write_back(path)
    copy = next(p for p in path.parent.iterdir() if p.name.endswith(TEMP_SUFFIX))
    with open(copy, "r+b") as f:
        f.write(b"X")
    done, problems = finish_interrupted_writes(path.parent)
    assert done == [] and len(problems) == 1 and "does not match its journal" in problems[0][1]
    assert copy.exists() and journal_path(path).exists()  # nothing destroyed
    with pytest.raises(TagError, match="does not match its journal"):
        write_tags(path, VALUES)


def test_rf64_is_analysable_but_not_taggable(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    encode_tone(path, 0.5, "wav", "pcm_s16le", rate=22050, options={"rf64": "always"})
    assert path.read_bytes()[:4] == b"RF64"
    data = path.read_bytes()
    with pytest.raises(UnsupportedFormat, match="RF64 files cannot be tagged"):
        write_tags(path, VALUES)
    assert path.read_bytes() == data


def test_a_journal_whose_write_back_never_began_leaves_the_old_file(tmp_path: Path) -> None:
    path = make(tmp_path / "lib", "t.flac")
    before = path.read_bytes()
    copy = path.with_name(f".{path.name}.early{TEMP_SUFFIX}")
    shutil.copy2(path, copy)
    write_tags(copy, VALUES)
    st = os.stat(path)
    with open(copy, "rb") as f:
        digest = file_digest(f)
    size = copy.stat().st_size
    record = JournalRecord(
        path.name, copy.name, size, digest, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    )
    os.close(create(record, path.parent))  # killed right after the journal was made
    assert finish_interrupted_writes(path.parent) == ([], [])
    assert path.read_bytes() == before and not leftovers(path.parent)
