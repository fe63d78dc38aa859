"""mertag.tagger.tags on real files: mertag's fields round-trip in every format, nothing else
changes.

Everything is checked by reading the files back with mutagen (and PyAV for the audio), nothing
is mocked. The corpus files come from ../shared (the `corpus` fixture); WAV, AIFF and the small
files for the property test are made here with PyAV.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mutagen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TDRC, TMOO, TSOP
from mutagen.mp4 import MP4, AtomDataType, MP4Cover, MP4FreeForm
from mutagen.oggvorbis import OggVorbis

from mertag.tagger.safe_write import TEMP_SUFFIX, rewrite_file
from mertag.tagger.tags import (
    FIELD_TABLE,
    MERTAG_FIELDS,
    TagError,
    audio_fingerprint,
    read_tags,
    remove_tags,
    write_tags,
)
from tests.audio_files import encode_tone

VALUES = {
    "MOOD": "Happy",
    "MERTAG_QUADRANT": "Q1",
    "MERTAG_VALENCE": "0.612",
    "MERTAG_AROUSAL": "0.734",
    "MERTAG_CONFIDENCE": "0.81",
    "MERTAG_MODEL": "mertag-4q 1.0 (ünïcödé ✓)",
}

# What the file holds after writing VALUES where it had no MOOD: mertag's word in MOOD too.
WRITTEN = {**VALUES, "MERTAG_MOOD": VALUES["MOOD"]}

# Not a real image: mutagen stores picture bytes without looking at them.
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

ID3_KINDS = ("MP3", "WAVE", "AIFF")
OUR_KEYS = {key for keys in FIELD_TABLE.values() for key in keys}

# (file, column of FIELD_TABLE it is written to); "made.*" files are generated, not from ../shared.
CASES = [
    ("bay.mp3", "id3v24"),
    ("celtic.mp3", "id3v24"),
    ("Kart Grand Prix — Weirwood.mp3", "id3v24"),
    ("egypt.flac", "vorbis"),
    ("farm.ogg", "vorbis"),
    ("garden.opus", "vorbis"),
    ("hacienda.m4a", "mp4"),
    ("lava.wav", "id3v24"),
    ("made.wav", "id3v24"),
    ("made.aiff", "id3v24"),
]

GENERATED = {
    "made.wav": ("wav", "pcm_s16le"),
    "made.aiff": ("aiff", "pcm_s16be"),
    "made.mp3": ("mp3", "libmp3lame"),
    "made.flac": ("flac", "flac"),
    "made.aac": ("adts", "aac"),
}


def make_audio(path: Path, seconds: float = 0.3, rate: int = 22050) -> Path:
    """Encode a short stereo sine into `path`, in the container/codec GENERATED gives its name."""
    fmt, codec = GENERATED[path.name]
    return encode_tone(path, seconds, fmt, codec, rate)


@pytest.fixture(autouse=True)
def no_temp_left(tmp_path: Path) -> Iterator[None]:
    """Whatever a test does, no temp file of ours may stay behind."""
    yield
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def track_path(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if name in GENERATED:
        return make_audio(tmp_path / name)
    return request.getfixturevalue("corpus") / name


def add_picture(path: Path) -> None:
    """Embed a front cover the way each format keeps pictures (test setup, with mutagen)."""
    audio: Any = mutagen.File(path)
    kind = type(audio).__name__
    if kind in ID3_KINDS:
        if audio.tags is None:
            audio.add_tags()
        audio.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=IMAGE))
        version = 3 if audio.tags.version == (2, 3, 0) else 4
        if version == 3:
            audio.tags.update_to_v23()
        audio.save(v2_version=version)
        return
    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, "image/png", "cover", IMAGE
    if isinstance(audio, FLAC):
        audio.add_picture(picture)
    elif isinstance(audio, MP4):
        audio["covr"] = [MP4Cover(IMAGE, imageformat=MP4Cover.FORMAT_PNG)]
    else:
        encoded = base64.b64encode(picture.write()).decode("ascii")
        audio["METADATA_BLOCK_PICTURE"] = [encoded]
    audio.save()


def others(path: Path) -> dict[str, Any]:
    """Every tag and picture in the file except mertag's fields, in a comparable form."""
    audio: Any = mutagen.File(path)
    kind = type(audio).__name__
    if audio.tags is None:
        return {}
    if kind in ID3_KINDS:
        return {
            key: (frame.pprint(), getattr(frame, "data", None))
            for key, frame in audio.tags.items()
            if key not in OUR_KEYS
        }
    if isinstance(audio, MP4):
        return {k: list(v) for k, v in audio.tags.items() if k not in OUR_KEYS}
    found: dict[str, Any] = {}
    for key, value in audio.tags:
        if key.upper() not in MERTAG_FIELDS:
            found.setdefault(key.lower(), []).append(value)
    if isinstance(audio, FLAC):
        found["<pictures>"] = [(p.type, p.mime, p.desc, p.data) for p in audio.pictures]
    return found


def raw_audio(path: Path) -> bytes | None:
    """The audio bytes located by hand (MP3: between ID3v2 and ID3v1; FLAC: after metadata)."""
    data = path.read_bytes()
    if path.suffix == ".mp3":
        start = 0
        if data[:3] == b"ID3":
            size = 0
            for byte in data[6:10]:
                size = size << 7 | byte
            start = 10 + size + (10 if data[5] & 0x10 else 0)
        end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
        return data[start:end]
    if path.suffix == ".flac":
        pos, last = 4, False
        while not last:
            last = bool(data[pos] & 0x80)
            pos += 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
        return data[pos:]
    return None


def stored(path: Path, column: str, field: str) -> list[str]:
    """The field's values as mutagen itself reads them from the key FIELD_TABLE names."""
    key = getattr(FIELD_TABLE[field], column)
    audio: Any = mutagen.File(path)
    if column.startswith("id3"):
        return list(audio.tags[key].text)
    if column == "mp4":
        assert all(v.dataformat == AtomDataType.UTF8 for v in audio[key])
        return [bytes(v).decode("utf-8") for v in audio[key]]
    return list(audio[key])


def stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


@pytest.mark.parametrize(("name", "column"), CASES, ids=[c[0] for c in CASES])
def test_round_trip_keeps_everything_else(
    name: str, column: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track_path(name, request, tmp_path)
    add_picture(path)
    before, fingerprint, raw = others(path), audio_fingerprint(path), raw_audio(path)

    version = mutagen.File(path).tags.version if column == "id3v24" else None
    if version == (2, 3, 0):
        column = "id3v23"  # a v2.3 file stays v2.3, MOOD in TXXX:MOOD
    assert write_tags(path, VALUES) is True
    for field, value in WRITTEN.items():
        assert stored(path, column, field) == [value], field
    if column.startswith("id3"):
        tags = mutagen.File(path).tags
        assert tags.version == (version or (2, 4, 0))
        assert ("TXXX:MOOD" if column == "id3v24" else "TMOO") not in tags
    assert read_tags(path) == WRITTEN
    assert others(path) == before
    assert audio_fingerprint(path) == fingerprint
    assert raw_audio(path) == raw

    # Same values again: nothing is written, not even the mtime moves.
    state = stat_key(path)
    assert write_tags(path, VALUES) is False
    assert stat_key(path) == state

    # A partial update touches only the fields given.
    assert write_tags(path, {"MERTAG_CONFIDENCE": "0.5"}) is True
    assert read_tags(path) == {**WRITTEN, "MERTAG_CONFIDENCE": "0.5"}

    assert remove_tags(path, "Happy") == list(MERTAG_FIELDS)
    assert read_tags(path) == {}
    assert others(path) == before
    assert audio_fingerprint(path) == fingerprint
    assert raw_audio(path) == raw
    state = stat_key(path)
    assert remove_tags(path, "Happy") == []
    assert stat_key(path) == state


def test_id3v23_uses_txxx_mood_and_switches_back(corpus: Path) -> None:
    path = corpus / "bay.mp3"
    add_picture(path)
    before, fingerprint = others(path), audio_fingerprint(path)

    assert write_tags(path, VALUES, id3_version=3) is True
    tags = ID3(path)
    assert tags.version == (2, 3, 0)
    assert path.read_bytes()[:4] == b"ID3\x03"
    assert "TMOO" not in tags
    assert tags["TXXX:MOOD"].text == ["Happy"]
    assert tags["TXXX:MERTAG_MODEL"].text == [VALUES["MERTAG_MODEL"]]
    assert read_tags(path) == WRITTEN
    assert others(path) == before
    assert audio_fingerprint(path) == fingerprint

    state = stat_key(path)
    assert write_tags(path, VALUES, id3_version=3) is False
    assert write_tags(path, VALUES) is False  # no version asked: v2.3 is kept
    assert stat_key(path) == state
    # Same values but the other version requested: a write is needed.
    assert write_tags(path, VALUES, id3_version=4) is True
    tags = ID3(path)
    assert tags.version == (2, 4, 0)
    assert tags["TMOO"].text == ["Happy"]
    assert "TXXX:MOOD" not in tags
    assert others(path) == before


def test_v23_switch_converts_and_keeps_v24_only_frames(corpus: Path) -> None:
    path = corpus / "bay.mp3"
    tags = ID3(path)
    tags.add(TMOO(encoding=3, text=["Dreamy"]))
    tags.add(TSOP(encoding=3, text=["Zone, 0"]))
    tags.add(TDRC(encoding=3, text=["2016-05-04"]))
    tags.save()

    assert write_tags(path, {"MERTAG_QUADRANT": "Q4"}, id3_version=3) is True
    tags = ID3(path, translate=False)
    assert tags.version == (2, 3, 0)
    assert "TMOO" not in tags
    assert tags["TXXX:MOOD"].text == ["Dreamy"]  # the user's mood, moved where v2.3 keeps it
    assert tags["TSOP"].text == ["Zone, 0"]
    assert tags["TYER"].text == ["2016"]
    assert tags["TIT2"].text == ["Bay"]


def test_celtic_keeps_its_id3v1_tag_byte_for_byte(corpus: Path) -> None:
    path = corpus / "celtic.mp3"
    tail, raw = path.read_bytes()[-128:], raw_audio(path)
    assert tail[:3] == b"TAG"
    assert ID3(path, load_v1=False).version == (2, 3, 0)

    for id3_version in (3, 4):
        assert write_tags(path, VALUES, id3_version=id3_version) is True
        assert path.read_bytes()[-128:] == tail
        assert raw_audio(path) == raw
    assert remove_tags(path, "Happy") == list(MERTAG_FIELDS)
    assert path.read_bytes()[-128:] == tail
    assert raw_audio(path) == raw


@pytest.mark.parametrize("name", ["bay.mp3", "egypt.flac", "hacienda.m4a"])
def test_remove_keeps_the_users_own_mood(name: str, corpus: Path) -> None:
    path = corpus / name
    assert write_tags(path, VALUES) is True
    audio: Any = mutagen.File(path)
    if isinstance(audio, MP4):
        audio["----:com.apple.iTunes:MOOD"] = [MP4FreeForm(b"Melancholy")]
    elif isinstance(audio, FLAC):
        del audio["MOOD"]
        audio["mood"] = ["Melancholy"]  # Vorbis keys are case-insensitive
    else:
        audio.tags.add(TMOO(encoding=3, text=["Melancholy"]))
    audio.save()

    assert remove_tags(path, "Happy") == list(MERTAG_FIELDS[1:])
    assert read_tags(path) == {"MOOD": "Melancholy"}
    # Without knowing what mertag wrote, MOOD is never removed.
    assert remove_tags(path, None) == []


def test_read_only_file_is_refused_and_untouched(corpus: Path) -> None:
    path = corpus / "egypt.flac"
    path.chmod(0o444)
    data = path.read_bytes()
    with pytest.raises(TagError, match="^read-only file"):
        write_tags(path, VALUES)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o444


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.mp3", b"just some text, not audio\n" * 40),
        ("noise.flac", random.Random(7).randbytes(8192)),
    ],
)
def test_non_audio_raises_tag_error(name: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for call in (
        lambda: read_tags(path),
        lambda: write_tags(path, VALUES),
        lambda: remove_tags(path, "Happy"),
        lambda: audio_fingerprint(path),
    ):
        with pytest.raises(TagError) as info:
            call()
        assert "\n" not in str(info.value)
    assert path.read_bytes() == content


def test_unsupported_format_raises_tag_error(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.aac")  # ADTS AAC: mutagen knows it, it cannot hold tags
    with pytest.raises(TagError, match="unsupported format: AAC"):
        write_tags(path, VALUES)


@pytest.mark.parametrize("changed", ["expect", "appended"])
def test_file_changed_since_read_is_refused(changed: str, tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.flac")
    st = path.stat()
    expect = (st.st_size, st.st_mtime_ns)
    if changed == "expect":
        expect = (st.st_size, st.st_mtime_ns - 1)
    else:
        with open(path, "ab") as f:
            f.write(b"\0")
    data = path.read_bytes()
    with pytest.raises(TagError, match="file changed during tag write"):
        write_tags(path, VALUES, expect=expect)
    with pytest.raises(TagError, match="file changed during tag write"):
        remove_tags(path, "Happy", expect=expect)
    assert path.read_bytes() == data


def test_expect_matching_allows_the_write(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.flac")
    st = path.stat()
    assert write_tags(path, VALUES, expect=(st.st_size, st.st_mtime_ns)) is True


def test_failed_edit_leaves_original_and_no_temp(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.wav")
    data = path.read_bytes()

    seen: list[Path] = []

    def edit(fileobj: Any) -> None:
        seen.append(Path(fileobj.name))
        fileobj.write(b"garbage")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        rewrite_file(path, edit)
    assert path.read_bytes() == data
    # The copy was edited, beside the original, under a name the library walker skips.
    assert seen[0].parent == path.parent
    assert seen[0].name.startswith(".") and seen[0].name.endswith(TEMP_SUFFIX)
    assert not seen[0].exists()


def test_permissions_and_symlinks_are_kept(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.wav")
    path.chmod(0o640)
    link = tmp_path / "link.wav"
    link.symlink_to(path.name)
    assert write_tags(link, VALUES) is True
    assert link.is_symlink()
    assert path.stat().st_mode & 0o777 == 0o640
    assert read_tags(path) == WRITTEN


def test_bad_values_are_a_programming_error(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.wav")
    with pytest.raises(ValueError, match="not a mertag field"):
        write_tags(path, {"ARTIST": "x"})
    with pytest.raises(ValueError, match="NUL"):
        write_tags(path, {"MOOD": "a\x00b"})


def test_fingerprint_sees_audio_changes_only(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "made.wav")
    fingerprint = audio_fingerprint(path)
    write_tags(path, VALUES)
    assert audio_fingerprint(path) == fingerprint
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert audio_fingerprint(path) != fingerprint


def test_ogg_vorbis_field_is_the_plain_comment(corpus: Path) -> None:
    path = corpus / "farm.ogg"
    write_tags(path, {"MOOD": "Calm"})
    assert OggVorbis(path)["MOOD"] == ["Calm"]


TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("small")
    return {name: make_audio(folder / name) for name in ("made.mp3", "made.flac")}


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.fixed_dictionaries({f: TEXT for f in MERTAG_FIELDS if f != "MERTAG_MOOD"}),
    id3_version=st.sampled_from([None, 3, 4]),
)
def test_any_unicode_value_round_trips(
    values: dict[str, str], id3_version: int | None, small_files: dict[str, Path]
) -> None:
    for path in small_files.values():
        write_tags(path, values, id3_version=id3_version)
        assert read_tags(path) == {**values, "MERTAG_MOOD": values["MOOD"]}
        audio: Any = mutagen.File(path)
        if isinstance(audio, FLAC):
            assert audio["MOOD"] == [values["MOOD"]]
        else:
            key = "TXXX:MOOD" if audio.tags.version[1] == 3 else "TMOO"
            assert audio.tags[key].text == [values["MOOD"]]
            assert audio.tags["TXXX:MERTAG_MODEL"].text == [values["MERTAG_MODEL"]]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(TEMP_SUFFIX)]
