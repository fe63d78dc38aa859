"""The MOOD policy on real files of every format: a MOOD mertag did not write is never lost.

Each case reads the format's own MOOD key back with mutagen (TMOO in ID3v2.4, TXXX:MOOD in ID3v2.3,
the Vorbis comment, the iTunes freeform atom, the ID3 chunk of WAV and AIFF), several values of
one field included, and checks that `remove_tags` (what `mertag untag` runs) gives the user's
values back exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.aiff import AIFF
from mutagen.id3 import ID3, TMOO, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.wave import WAVE

from mertag.tagger.tags import (
    ID3_VERSION,
    MERTAG_FIELDS,
    PREVIOUS_MOOD,
    TagChange,
    audio_fingerprint,
    mood_changes,
    plan_removal,
    plan_write,
    read_tag_values,
    read_tags,
    remove_tags,
    write_tags,
)
from tests.audio_files import encode_tone
from tests.tagger.test_tags import VALUES

SAD = {**VALUES, "MOOD": "Sad", "MERTAG_QUADRANT": "Q3"}
USER = ["Melancholic", "Dreamy"]  # two values of one field, as Picard and foobar2000 write them

# name -> how the test gets it: a corpus file, or one it encodes (container, codec).
MADE = {"made.aiff": ("aiff", "pcm_s16be"), "made.oga": ("ogg", "flac")}
FILES = [
    "bay.mp3",  # ID3v2.4
    "celtic.mp3",  # ID3v2.3 (and an ID3v1 tag)
    "egypt.flac",
    "farm.ogg",
    "garden.opus",
    "hacienda.m4a",
    "lava.wav",  # ID3 chunk in RIFF
    "made.aiff",  # ID3 chunk in IFF
    "made.oga",  # Ogg FLAC
]


def track(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if name in MADE:
        return encode_tone(tmp_path / name, 0.5, *MADE[name], rate=22050)
    path: Path = request.getfixturevalue("corpus") / name
    return path


def mood_key(path: Path) -> str:
    """The key this file's format keeps MOOD under."""
    audio: Any = mutagen.File(path)
    if isinstance(audio, MP4):
        return "----:com.apple.iTunes:MOOD"
    if isinstance(audio, (MP3, WAVE, AIFF)):
        v23 = audio.tags is not None and audio.tags.version[:2] == (2, 3)
        return "TXXX:MOOD" if v23 else "TMOO"
    return "MOOD"


def stored_mood(path: Path) -> list[str] | None:
    """MOOD's values as mutagen reads them from the format's own key (None: absent)."""
    audio: Any = mutagen.File(path)
    key = mood_key(path)
    if audio.tags is None or key not in audio.tags:
        return None
    if isinstance(audio, MP4):
        return [bytes(v).decode("utf-8") for v in audio.tags[key]]
    if key.startswith(("TMOO", "TXXX")):
        return [str(t) for t in audio.tags[key].text]
    return list(audio.tags[key])


def set_user_mood(path: Path, values: list[str]) -> None:
    """What a user's tag editor does: MOOD set to `values`, in the format's own key."""
    audio: Any = mutagen.File(path)
    key = mood_key(path)
    if audio.tags is None:
        audio.add_tags()
    if isinstance(audio, MP4):
        audio.tags[key] = [MP4FreeForm(v.encode(), dataformat=AtomDataType.UTF8) for v in values]
    elif key == "TMOO":
        audio.tags.setall("TMOO", [TMOO(encoding=3, text=values)])
    elif key == "TXXX:MOOD":
        audio.tags.setall(key, [TXXX(encoding=1, desc="MOOD", text=values)])
    else:
        audio.tags["MOOD"] = values
    if key == "TXXX:MOOD":
        audio.save(v2_version=3, v23_sep=None)  # several values NUL-separated, as in v2.4
    else:
        audio.save()


def written(values: dict[str, str]) -> dict[str, str]:
    """mertag's own fields after writing `values` (MOOD aside)."""
    return {
        **{k: v for k, v in values.items() if k != "MOOD"},
        "MERTAG_MOOD": values["MOOD"],
    }


@pytest.mark.parametrize("name", FILES)
def test_default_keeps_the_users_mood_and_untag_leaves_it(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    set_user_mood(path, USER)
    key, fingerprint = mood_key(path), audio_fingerprint(path)

    assert write_tags(path, VALUES) is True
    assert stored_mood(path) == USER and mood_key(path) == key
    tags = read_tag_values(path)
    assert tags[PREVIOUS_MOOD] == USER  # noted as the user's, value for value
    assert {k: v[0] for k, v in tags.items() if k not in ("MOOD", PREVIOUS_MOOD)} == written(VALUES)
    # A new word on a later scan still leaves it alone.
    assert write_tags(path, SAD) is True
    assert stored_mood(path) == USER and read_tags(path)["MERTAG_MOOD"] == "Sad"
    assert write_tags(path, SAD) is False  # nothing left to change: not rewritten

    assert remove_tags(path, None) == [f for f in MERTAG_FIELDS[1:]] + [PREVIOUS_MOOD]
    assert stored_mood(path) == USER
    assert read_tag_values(path) == {"MOOD": USER}
    assert audio_fingerprint(path) == fingerprint


@pytest.mark.parametrize("name", FILES)
def test_overwrite_saves_the_old_mood_and_untag_restores_it(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    set_user_mood(path, USER)
    key = mood_key(path)

    plan = plan_write(path, VALUES, overwrite_mood=True)
    before = path.read_bytes()
    assert TagChange("MOOD", "Melancholic; Dreamy", "Happy") in plan
    assert TagChange(PREVIOUS_MOOD, None, "Melancholic; Dreamy") in plan
    assert path.read_bytes() == before  # planning writes nothing

    assert write_tags(path, VALUES, overwrite_mood=True) is True
    assert stored_mood(path) == ["Happy"] and mood_key(path) == key
    assert read_tag_values(path)[PREVIOUS_MOOD] == USER
    # mertag's word in MOOD now follows later scans, with or without the option.
    assert write_tags(path, SAD) is True
    assert stored_mood(path) == ["Sad"]
    assert read_tag_values(path)[PREVIOUS_MOOD] == USER

    assert plan_removal(path, None)[0] == TagChange("MOOD", "Sad", "Melancholic; Dreamy")
    assert remove_tags(path, None)[0] == "MOOD"
    assert stored_mood(path) == USER and mood_key(path) == key
    assert read_tag_values(path) == {"MOOD": USER}


@pytest.mark.parametrize("name", FILES)
def test_a_mood_changed_after_mertag_wrote_it_is_never_rewritten(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    if stored_mood(path) is not None:
        pytest.skip("the corpus file has a MOOD of its own")
    assert write_tags(path, VALUES) is True
    assert stored_mood(path) == ["Happy"]  # an empty MOOD gets mertag's word
    set_user_mood(path, ["Chill"])  # the user corrects it by hand

    for overwrite in (False, True):
        write_tags(path, SAD, overwrite_mood=overwrite)
        assert stored_mood(path) == ["Chill"], overwrite
        assert read_tags(path)["MERTAG_MOOD"] == "Sad"
    assert PREVIOUS_MOOD not in read_tags(path)

    remove_tags(path, "Sad")
    assert read_tag_values(path) == {"MOOD": ["Chill"]}


@pytest.mark.parametrize("name", ["bay.mp3", "celtic.mp3", "egypt.flac", "hacienda.m4a"])
def test_overwrite_asked_after_a_default_scan(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    set_user_mood(path, ["Chill"])
    write_tags(path, VALUES)
    assert stored_mood(path) == ["Chill"]
    assert write_tags(path, SAD, overwrite_mood=True) is True
    assert stored_mood(path) == ["Sad"]
    remove_tags(path, None)
    assert read_tag_values(path) == {"MOOD": ["Chill"]}


def test_a_mood_beside_mertag_quadrant_but_no_mertag_mood_is_the_users(corpus: Path) -> None:
    # What a mertag from before MERTAG_MOOD left, and also what a user leaves who tags by hand a
    # track mertag was uncertain of (no word written): the file cannot tell, so it stays the
    # user's, noted as such (tests/tagger/test_audit_user_mood.py has the whole story).
    path = corpus / "egypt.flac"
    audio: Any = mutagen.File(path)
    audio["MOOD"], audio["MERTAG_QUADRANT"] = ["Happy"], ["Q1"]  # no MERTAG_MOOD
    audio.save()
    assert write_tags(path, SAD) is True
    assert read_tags(path) == {**written(SAD), "MOOD": "Happy", PREVIOUS_MOOD: "Happy"}
    assert write_tags(path, SAD, overwrite_mood=True) is True
    assert read_tags(path)["MOOD"] == "Sad"
    remove_tags(path, None)
    assert read_tag_values(path) == {"MOOD": ["Happy"]}


def test_mood_changes_rules() -> None:
    w = "Happy"
    assert mood_changes({}, w, overwrite=False) == {"MOOD": [w], "MERTAG_MOOD": [w]}
    user = {"MOOD": ["Chill"]}
    assert mood_changes(user, w, overwrite=False) == {"MERTAG_MOOD": [w], PREVIOUS_MOOD: ["Chill"]}
    assert mood_changes(user, w, overwrite=True) == {
        "MOOD": [w],
        "MERTAG_MOOD": [w],
        PREVIOUS_MOOD: ["Chill"],
    }
    # The user's MOOD happens to be mertag's word: still the user's, noted as such.
    same = {"MOOD": [w]}
    assert mood_changes(same, w, overwrite=False) == {"MERTAG_MOOD": [w], PREVIOUS_MOOD: [w]}
    kept = {"MOOD": [w], "MERTAG_MOOD": [w], PREVIOUS_MOOD: [w]}
    assert mood_changes(kept, "Sad", overwrite=False) == {"MERTAG_MOOD": ["Sad"]}
    # The user removed the MOOD mertag wrote: it stays removed.
    assert mood_changes({"MERTAG_MOOD": [w]}, "Sad", overwrite=True) == {"MERTAG_MOOD": ["Sad"]}


def test_dry_run_plan_shows_old_and_new_and_writes_nothing(corpus: Path) -> None:
    path = corpus / "celtic.mp3"
    data = path.read_bytes()
    plan = plan_write(path, VALUES)
    assert [str(c) for c in plan[:2]] == [
        "MOOD: (none) -> 'Happy'",
        "MERTAG_MOOD: (none) -> 'Happy'",
    ]
    assert all(c.field != ID3_VERSION for c in plan)  # v2.3 is kept
    forced = plan_write(path, VALUES, id3_version=4)
    assert forced[0] == TagChange(ID3_VERSION, "2.3", "2.4")
    assert path.read_bytes() == data
    write_tags(path, VALUES)
    assert plan_write(path, VALUES) == []
    assert ID3(path).version[:2] == (2, 3)


UNSURE = {**SAD, "MOOD": "", "MERTAG_CONFIDENCE": "0.410"}  # uncertain, no uncertain word


@pytest.mark.parametrize("name", FILES)
def test_an_uncertain_rescan_takes_back_only_the_word_mertag_wrote(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    if stored_mood(path) is not None:
        pytest.skip("the corpus file has a MOOD of its own")
    fingerprint = audio_fingerprint(path)
    assert write_tags(path, VALUES) is True
    assert stored_mood(path) == ["Happy"]

    plan = plan_write(path, UNSURE)
    assert TagChange("MOOD", "Happy", None) in plan
    assert TagChange("MERTAG_MOOD", "Happy", None) in plan
    assert write_tags(path, UNSURE) is True
    tags = read_tags(path)
    assert stored_mood(path) is None and "MERTAG_MOOD" not in tags
    assert tags["MERTAG_CONFIDENCE"] == "0.410" and tags["MERTAG_QUADRANT"] == "Q3"
    assert write_tags(path, UNSURE) is False  # nothing left to change
    assert write_tags(path, SAD) is True  # sure again: the word comes back
    assert stored_mood(path) == ["Sad"]
    remove_tags(path, None)
    assert read_tag_values(path) == {}
    assert audio_fingerprint(path) == fingerprint


@pytest.mark.parametrize("name", FILES)
def test_an_uncertain_rescan_gives_back_the_users_mood_it_replaced(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    set_user_mood(path, USER)
    key = mood_key(path)
    assert write_tags(path, VALUES, overwrite_mood=True) is True
    assert stored_mood(path) == ["Happy"]

    assert write_tags(path, UNSURE) is True
    assert stored_mood(path) == USER and mood_key(path) == key
    assert "MERTAG_MOOD" not in read_tags(path)
    remove_tags(path, None)
    assert read_tag_values(path) == {"MOOD": USER}


@pytest.mark.parametrize("name", ["bay.mp3", "egypt.flac", "hacienda.m4a", "lava.wav"])
def test_an_uncertain_track_never_touches_a_mood_the_user_set(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = track(name, request, tmp_path)
    set_user_mood(path, USER)
    assert write_tags(path, UNSURE) is True
    assert stored_mood(path) == USER
    write_tags(path, VALUES)  # mertag's word was in MERTAG_MOOD only
    set_user_mood(path, ["Chill"])  # the user changes MOOD after that
    assert write_tags(path, UNSURE) is True
    assert stored_mood(path) == ["Chill"]
    remove_tags(path, None)  # the first value of the user's is found nowhere else: it stays
    assert read_tag_values(path) == {"MOOD": ["Chill"], PREVIOUS_MOOD: USER}
