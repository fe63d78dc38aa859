"""The fields for other players on real files: ENERGY (`--energy`) and the mood word appended to
COMMENT and GROUPING (`--mood-field`), through `mertag scan`, `write`, `show` and `untag`.

Every format is read back twice: with mutagen from the key the format's players use (ID3 COMM
and TIT1 in v2.3 and v2.4, TXXX:EnergyLevel; Vorbis COMMENT, GROUPING, ENERGYLEVEL; MP4 (c)cmt,
(c)grp and the EnergyLevel freeform atom) and through FFmpeg's reader, as servers using ffprobe
see it. A value of the user's is kept (ENERGY) or kept in front of mertag's word (COMMENT,
GROUPING), and `untag` gives back exactly what the user had, or nothing where there was nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import av
import mutagen
import pytest
from mutagen.aiff import AIFF
from mutagen.id3 import COMM, GRP1, TIT1, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.wave import WAVE

from mertag.tagger.field_policy import field_changes, field_withdrawal, removal_changes
from mertag.tagger.mood import energy_level
from mertag.tagger.tags import audio_fingerprint, read_tag_values, remove_tags, write_tags
from tests.tagger.scanned_library import CORPUS_NAMES, Library, invoke, other_tags
from tests.tagger.test_mood_policy import FILES, track
from tests.tagger.test_tags import VALUES

FIELDS = ("COMMENT", "GROUPING", "ENERGY")
ALL_ON = ["--energy", "--mood-field", "COMMENT,GROUPING"]

# The key FFmpeg gives each field, per tag kind (FFmpeg keeps a Vorbis comment's own spelling).
FFMPEG_KEYS = {"COMMENT": "comment", "GROUPING": "grouping", "ENERGY": "EnergyLevel"}


def _id3(audio: Any) -> bool:
    return isinstance(audio, (MP3, WAVE, AIFF))


def stored(path: Path, field: str) -> list[str] | None:
    """The field's values as mutagen reads them from the key players use (None: absent)."""
    audio: Any = mutagen.File(path)
    tags = audio.tags
    if tags is None:
        return None
    if _id3(audio):
        if field == "COMMENT":
            frames = [f for f in tags.getall("COMM") if not f.desc]
        else:
            frames = tags.getall({"GROUPING": "TIT1", "ENERGY": "TXXX:EnergyLevel"}[field])
        return [str(t) for f in frames for t in f.text] or None
    if isinstance(audio, MP4):
        key = {"COMMENT": "\xa9cmt", "GROUPING": "\xa9grp"}.get(field)
        if key is not None:
            return list(tags[key]) if key in tags else None
        key = "----:com.apple.iTunes:EnergyLevel"
        return [bytes(v).decode("utf-8") for v in tags[key]] if key in tags else None
    key = {"ENERGY": "ENERGYLEVEL"}.get(field, field)
    return list(tags[key]) if key in tags else None


def set_user_fields(path: Path, values: dict[str, list[str]], *, encoding: int = 3) -> None:
    """What a user's tag editor (or Mixed In Key, for ENERGY) does: each field set in the
    format's own key; an ID3 tag saved in the version it has."""
    audio: Any = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    v23 = _id3(audio) and tags.version[:2] == (2, 3)
    for field, text in values.items():
        if _id3(audio):
            if field == "COMMENT":
                frame: Any = COMM(encoding=encoding, lang="eng", desc="", text=text)
            elif field == "GROUPING":
                frame = TIT1(encoding=encoding, text=text)
            else:
                frame = TXXX(encoding=encoding, desc="EnergyLevel", text=text)
            tags.setall(frame.HashKey, [frame])
        elif isinstance(audio, MP4):
            if field == "ENERGY":
                tags["----:com.apple.iTunes:EnergyLevel"] = [
                    MP4FreeForm(v.encode(), dataformat=AtomDataType.UTF8) for v in text
                ]
            else:
                tags["\xa9cmt" if field == "COMMENT" else "\xa9grp"] = text
        else:
            tags["EnergyLevel" if field == "ENERGY" else field] = text
    if v23:
        audio.save(v2_version=3, v23_sep=None)
    else:
        audio.save()


def ffmpeg_value(path: Path, field: str) -> str | None:
    """The field as FFmpeg's demuxer reports it (container or Ogg stream metadata)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        seen = {**container.metadata, **container.streams.audio[0].metadata}
    wanted = FFMPEG_KEYS[field].upper()
    found = [v for k, v in seen.items() if k.upper() == wanted]
    assert len(found) <= 1, (path.name, field, seen)
    return found[0] if found else None


def as_ffmpeg(values: list[str] | None) -> str | None:
    """Several values of one field, as FFmpeg joins them."""
    return None if values is None else ";".join(values)


def rows_by_name(library: Library) -> dict[str, Any]:
    return {Path(r.path).name: r for r in library.rows() if r.status == "ok"}


def _ok(args: list[Any]) -> str:
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return str(result.stderr)


def test_absent_fields_get_mertags_values_and_untag_takes_them_out(library: Library) -> None:
    before = {n: other_tags(library.path(n)) for n in CORPUS_NAMES}
    plain = _ok(["write", "--dry-run", "--index", library.index])
    assert "ENERGY" not in plain and "COMMENT" not in plain  # opt-in: nothing without asking

    _ok(["write", *ALL_ON, "--index", library.index])
    rows = rows_by_name(library)
    for name in CORPUS_NAMES:
        path, row = library.path(name), rows[name]
        energy = str(energy_level(row.arousal))
        want = {"COMMENT": [row.mood], "GROUPING": [row.mood], "ENERGY": [energy]}
        for field in FIELDS:
            assert stored(path, field) == want[field], (name, field)
            assert ffmpeg_value(path, field) == want[field][0], (name, field)
        tags = read_tag_values(path)
        assert tags["MERTAG_ENERGY"] == [energy] and tags["MERTAG_COMMENT"] == [row.mood]
        assert "MERTAG_PREVIOUS_COMMENT" not in tags and "MERTAG_PREVIOUS_ENERGY" not in tags
    # Up to date now: a second write changes nothing.
    assert "wrote 0 of" in _ok(["write", *ALL_ON, "--index", library.index])

    _ok(["untag", *(library.path(n) for n in CORPUS_NAMES), "--index", library.index])
    for name in CORPUS_NAMES:
        path = library.path(name)
        for field in FIELDS:
            assert stored(path, field) is None, (name, field)
            assert ffmpeg_value(path, field) is None, (name, field)
        # (A WAV's ID3 chunk left without a frame is taken out: its version goes with it.)
        kept = {k: v for k, v in other_tags(path).items() if k != "id3_version"}
        assert kept == {k: v for k, v in before[name].items() if k != "id3_version"}, name


USER = {
    "COMMENT": ["Late night — Ünïcode"],
    "GROUPING": ["Set A"],
    "ENERGY": ["7"],  # as Mixed In Key writes it
}


def test_the_users_values_are_kept_appended_to_and_given_back_byte_for_byte(
    library: Library,
) -> None:
    for name in CORPUS_NAMES:
        # Latin-1 in the ID3v2.3 file's comment, as older taggers write it (UTF-8 in v2.4).
        encoding = 0 if name == "celtic.mp3" else 3
        user = {**USER, "COMMENT": ["Late night"]} if encoding == 0 else USER
        set_user_fields(library.path(name), user, encoding=encoding)
    users = {n: {f: stored(library.path(n), f) for f in FIELDS} for n in CORPUS_NAMES}
    fingerprints = {n: audio_fingerprint(library.path(n)) for n in CORPUS_NAMES}

    _ok(["write", *ALL_ON, "--index", library.index])
    rows = rows_by_name(library)
    for name in CORPUS_NAMES:
        path, user, mood = library.path(name), users[name], rows[name].mood
        for field in ("COMMENT", "GROUPING"):
            want = f"{user[field][0]}; {mood}"  # type: ignore[index]
            assert stored(path, field) == [want], (name, field)
            assert ffmpeg_value(path, field) == want, (name, field)
        assert stored(path, "ENERGY") == ["7"] and ffmpeg_value(path, "ENERGY") == "7", name
        tags = read_tag_values(path)
        assert tags["MERTAG_ENERGY"] == [str(energy_level(rows[name].arousal))]
        assert tags["MERTAG_PREVIOUS_ENERGY"] == ["7"]  # marked as the user's

    # A new word (a later scan, here new mood words): only mertag's part is replaced.
    words = "Joy,Anger,Sorrow,Calm"
    _ok(["write", *ALL_ON, "--moods", words, "--index", library.index])
    new = dict(zip(("Q1", "Q2", "Q3", "Q4"), words.split(","), strict=True))
    for name in CORPUS_NAMES:
        path, word = library.path(name), new[rows[name].quadrant]
        for field in ("COMMENT", "GROUPING"):
            want = [f"{users[name][field][0]}; {word}"]  # type: ignore[index]
            assert stored(path, field) == want, (name, field)
        assert stored(path, "ENERGY") == ["7"], name
    # Asked to, mertag replaces the user's ENERGY (kept for untag).
    _ok(["write", *ALL_ON, "--overwrite-energy", "--index", library.index])
    for name in CORPUS_NAMES:
        energy = str(energy_level(rows[name].arousal))
        assert stored(library.path(name), "ENERGY") == [energy], name
        assert ffmpeg_value(library.path(name), "ENERGY") == energy, name

    _ok(["untag", *(library.path(n) for n in CORPUS_NAMES), "--index", library.index])
    for name in CORPUS_NAMES:
        path = library.path(name)
        for field in FIELDS:
            back = stored(path, field)
            assert back == users[name][field], (name, field)
            assert [v.encode() for v in back or []] == [v.encode() for v in users[name][field]]
            assert ffmpeg_value(path, field) == as_ffmpeg(users[name][field]), (name, field)
        assert not any(k.startswith("MERTAG_") for k in read_tag_values(path)), name
        assert audio_fingerprint(path) == fingerprints[name]
    celtic = mutagen.File(library.path("celtic.mp3"))
    assert celtic.tags.version[:2] == (2, 3)
    assert {f.encoding for f in celtic.tags.getall("COMM")} == {0}  # as the user wrote it


def test_an_uncertain_track_gets_no_word_and_an_earlier_one_is_taken_back(
    library: Library,
) -> None:
    set_user_fields(library.path("bay.mp3"), {"COMMENT": ["mine"]})
    _ok(["write", *ALL_ON, "--index", library.index])
    rows = rows_by_name(library)
    assert stored(library.path("bay.mp3"), "COMMENT") == [f"mine; {rows['bay.mp3'].mood}"]
    assert stored(library.path("egypt.flac"), "GROUPING") == [rows["egypt.flac"].mood]

    # Every track uncertain now: no word anywhere, the numbers (and ENERGY, from arousal) stay.
    _ok(["write", *ALL_ON, "--uncertain-below", "1", "--index", library.index])
    for name in CORPUS_NAMES:
        path = library.path(name)
        tags = read_tag_values(path)
        assert "MOOD" not in tags and "MERTAG_COMMENT" not in tags, name
        assert stored(path, "GROUPING") is None and ffmpeg_value(path, "GROUPING") is None, name
        assert stored(path, "ENERGY") == [str(energy_level(rows[name].arousal))], name
        if name == "bay.mp3":
            assert stored(path, "COMMENT") == ["mine"] and ffmpeg_value(path, "COMMENT") == "mine"
        else:
            assert stored(path, "COMMENT") is None, name


def test_mertag_write_adds_and_removes_the_fields_after_scan_no_write(
    corpus: Path, tmp_path: Path
) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    for name in ("bay.mp3", "egypt.flac"):
        shutil.copy2(corpus / name, lib / name)
    _ok(["scan", lib, "--no-write", "--index", index, "-j", "1", "-q"])
    assert all(stored(lib / n, "ENERGY") is None for n in ("bay.mp3", "egypt.flac"))

    planned = _ok(["write", "--energy", "--dry-run", "--index", index])
    assert "ENERGY: (none) -> '" in planned
    _ok(["write", "--energy", "--index", index])
    rows = rows_by_name(Library(lib, index))
    for name, row in rows.items():
        energy = str(energy_level(row.arousal))
        assert stored(lib / name, "ENERGY") == [energy] and stored(lib / name, "COMMENT") is None
        assert ffmpeg_value(lib / name, "ENERGY") == energy

    shown = json.loads(invoke(["show", lib / "bay.mp3", "-f", "json", "--index", index]).stdout)
    assert shown[0]["energy"] == int(stored(lib / "bay.mp3", "ENERGY")[0])  # type: ignore[index]
    assert shown[0]["file"]["tags"]["ENERGY"] == stored(lib / "bay.mp3", "ENERGY")[0]  # type: ignore[index]

    # Energy off, the mood into GROUPING instead: from the index again, no analysis.
    _ok(["write", "--no-energy", "--mood-field", "grouping", "--index", index])
    for name, row in rows.items():
        assert stored(lib / name, "ENERGY") is None and ffmpeg_value(lib / name, "ENERGY") is None
        assert stored(lib / name, "GROUPING") == [row.mood]
        assert ffmpeg_value(lib / name, "GROUPING") == row.mood
        assert "MERTAG_ENERGY" not in read_tag_values(lib / name)


def test_a_scan_writes_the_fields_the_config_asks_for(corpus: Path, tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    shutil.copy2(corpus / "hacienda.m4a", lib / "hacienda.m4a")
    set_user_fields(lib / "hacienda.m4a", {"COMMENT": ["bought at the gig"]})
    config = tmp_path / "config.toml"
    config.write_text('uncertain_below = 0\nenergy = true\nmood_fields = ["COMMENT"]\n')
    _ok(["--config", config, "scan", lib, "--index", index, "-j", "1", "-q"])
    (row,) = rows_by_name(Library(lib, index)).values()
    path = lib / "hacienda.m4a"
    assert stored(path, "COMMENT") == [f"bought at the gig; {row.mood}"]
    assert ffmpeg_value(path, "COMMENT") == f"bought at the gig; {row.mood}"
    assert stored(path, "ENERGY") == [str(energy_level(row.arousal))]
    assert stored(path, "GROUPING") is None
    # The command line wins over the file: no fields for other players at all.
    _ok(["--config", config, "write", "--no-energy", "--mood-field", "none", "--index", index])
    assert stored(path, "COMMENT") == ["bought at the gig"] and stored(path, "ENERGY") is None


def test_the_fields_survive_an_id3_version_switch(library: Library) -> None:
    set_user_fields(library.path("bay.mp3"), {"COMMENT": ["v2.4 note"], "GROUPING": ["G"]})
    _ok(["write", *ALL_ON, "--index", library.index])
    rows = rows_by_name(library)
    for name, switch, version in (("bay.mp3", "--id3v23", 3), ("celtic.mp3", "--id3v24", 4)):
        path, mood = library.path(name), rows[name].mood
        expected = {f: stored(path, f) for f in FIELDS}
        _ok(["write", *ALL_ON, switch, f"path:{name}", "--index", library.index])
        assert mutagen.File(path).tags.version[:2] == (2, version)
        for field in FIELDS:
            assert stored(path, field) == expected[field], (name, field)
            assert ffmpeg_value(path, field) == as_ffmpeg(expected[field]), (name, field)
        assert expected["COMMENT"] == (["v2.4 note; " + mood] if name == "bay.mp3" else [mood])
    _ok(["untag", library.path("bay.mp3"), "--index", library.index])
    assert stored(library.path("bay.mp3"), "COMMENT") == ["v2.4 note"]
    assert stored(library.path("bay.mp3"), "GROUPING") == ["G"]


PLAYER_VALUES = {**VALUES, "ENERGY": "9", "COMMENT": "Happy", "GROUPING": "Happy"}
MULTI = {"COMMENT": ["first line", "second line"], "GROUPING": ["Set A"], "ENERGY": ["4"]}


@pytest.mark.parametrize("name", FILES)
def test_every_format_appends_keeps_and_restores(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """write_tags/remove_tags on every format the tag tests cover (AIFF and Ogg FLAC too), a
    field of several values included."""
    path = track(name, request, tmp_path)
    set_user_fields(path, MULTI)
    user = {f: stored(path, f) for f in FIELDS}
    fingerprint = audio_fingerprint(path)

    assert write_tags(path, PLAYER_VALUES) is True
    assert stored(path, "COMMENT") == ["first line; Happy", "second line"]
    assert stored(path, "GROUPING") == ["Set A; Happy"] and stored(path, "ENERGY") == ["4"]
    # FFmpeg shows an ID3 or MP4 comment's first value only, a Vorbis one's joined by ';'.
    seen = ffmpeg_value(path, "COMMENT")
    assert seen in ("first line; Happy", "first line; Happy;second line"), seen
    assert ffmpeg_value(path, "GROUPING") == "Set A; Happy"
    assert write_tags(path, {**PLAYER_VALUES, "COMMENT": "Sad", "GROUPING": ""}) is True
    assert stored(path, "COMMENT") == ["first line; Sad", "second line"]
    assert stored(path, "GROUPING") == ["Set A"]  # taken back: the user's text alone
    assert write_tags(path, {**PLAYER_VALUES, "COMMENT": "Sad", "GROUPING": ""}) is False

    remove_tags(path, None)
    assert {f: stored(path, f) for f in FIELDS} == user
    assert read_tag_values(path) == {**MULTI}
    assert audio_fingerprint(path) == fingerprint


def test_the_policy_rules_of_an_appended_field() -> None:
    mine = {"COMMENT": ["note; Happy"], "MERTAG_COMMENT": ["Happy"]}
    written = {**mine, "MERTAG_PREVIOUS_COMMENT": ["note"]}
    assert field_changes({"COMMENT": ["note"]}, "COMMENT", "Happy") == written
    assert field_changes(written, "COMMENT", "Sad") == {
        "COMMENT": ["note; Sad"],
        "MERTAG_COMMENT": ["Sad"],
    }
    assert field_withdrawal(written, "COMMENT") == {
        "COMMENT": ["note"],
        "MERTAG_COMMENT": None,
        "MERTAG_PREVIOUS_COMMENT": None,
    }
    # The user edited the field after mertag wrote: it is theirs, left as it is; untag keeps it
    # and (their old text being nowhere else) the old text too.
    edited = {**written, "COMMENT": ["my new note"]}
    assert field_changes(edited, "COMMENT", "Sad") == {"MERTAG_COMMENT": ["Sad"]}
    assert removal_changes(edited, None) == {"MERTAG_COMMENT": None}
    # ENERGY is replaced like MOOD: the user's stays unless overwritten.
    assert field_changes({"ENERGY": ["7"]}, "ENERGY", "3") == {
        "MERTAG_ENERGY": ["3"],
        "MERTAG_PREVIOUS_ENERGY": ["7"],
    }
    assert field_changes({"ENERGY": ["7"]}, "ENERGY", "3", overwrite=True)["ENERGY"] == ["3"]


def test_an_itunes_grouping_is_appended_to_and_the_work_left_alone(corpus: Path) -> None:
    """iTunes 12.5+ keeps the grouping in GRP1 and the Work in TIT1; Mixxx reads GRP1 when a
    file has it. mertag appends to GRP1 then, and TIT1 stays the user's Work."""
    path = corpus / "bay.mp3"
    audio: Any = mutagen.File(path)
    audio.tags.add(GRP1(encoding=3, text=["Peak time"]))
    audio.tags.add(TIT1(encoding=3, text=["Symphony No. 5"]))
    audio.save()
    assert write_tags(path, {**VALUES, "GROUPING": "Happy"}) is True
    tags: Any = mutagen.File(path).tags
    assert [f.text for f in tags.getall("GRP1")] == [["Peak time; Happy"]]
    assert [f.text for f in tags.getall("TIT1")] == [["Symphony No. 5"]]
    # This FFmpeg shows TIT1 as grouping and GRP1 not at all (docs/PLAYERS.md).
    assert ffmpeg_value(path, "GROUPING") == "Symphony No. 5"
    remove_tags(path, None)
    tags = mutagen.File(path).tags
    assert [f.text for f in tags.getall("GRP1")] == [["Peak time"]]
    assert [f.text for f in tags.getall("TIT1")] == [["Symphony No. 5"]]
    assert read_tag_values(path) == {"GROUPING": ["Peak time"]}


def test_a_comment_in_another_language_is_the_one_appended_to(corpus: Path) -> None:
    path = corpus / "celtic.mp3"  # ID3v2.3
    audio: Any = mutagen.File(path)
    audio.tags.add(COMM(encoding=1, lang="deu", desc="", text=["Mein Kommentar"]))
    audio.tags.add(COMM(encoding=1, lang="eng", desc="iTunNORM", text=[" 0000 0000"]))
    audio.save(v2_version=3)
    assert write_tags(path, {**VALUES, "COMMENT": "Happy"}) is True
    tags: Any = mutagen.File(path).tags
    assert tags.version[:2] == (2, 3)
    assert tags["COMM::deu"].text == ["Mein Kommentar; Happy"]
    assert tags["COMM:iTunNORM:eng"].text == [" 0000 0000"]  # a described comment: not ours
    assert ffmpeg_value(path, "COMMENT") == "Mein Kommentar; Happy"
    remove_tags(path, None)
    tags = mutagen.File(path).tags
    assert tags["COMM::deu"].text == ["Mein Kommentar"] and "COMM::eng" not in tags
