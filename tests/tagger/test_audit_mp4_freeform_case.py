"""A MOOD the user keeps in an MP4 freeform atom spelt in another case
(`----:com.apple.iTunes:mood`, as some taggers write it) is the user's MOOD.

Found by the red-team audit: mertag looked the atom up by its exact name only, so it did not see
the user's value, added its own `MOOD` atom beside it (FFmpeg matches tag names in any case,
so for it one of the two hid the other) and never saved the user's value for untag. Real M4A files,
the real model, the CLI, tags read back with mutagen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.mp4 import MP4FreeForm

from mertag.tagger.tags import read_tags, remove_tags, write_tags
from tests.tagger.scanned_library import WRITTEN_FIELDS as VALUES
from tests.tagger.scanned_library import invoke

ITUNES = "----:com.apple.iTunes:"


def atoms(path: Path) -> dict[str, list[bytes]]:
    """Every freeform atom of the file, by its name as the file spells it."""
    audio: Any = mutagen.File(path)
    return {k: [bytes(v) for v in vs] for k, vs in audio.tags.items() if k.startswith("----")}


def every_tag(path: Path) -> dict[str, str]:
    audio: Any = mutagen.File(path)
    return {k: repr(v) for k, v in audio.tags.items()}


@pytest.fixture
def track(corpus: Path) -> Path:
    for f in corpus.iterdir():
        if f.name != "hacienda.m4a":
            f.unlink()
    return corpus / "hacienda.m4a"


def test_a_freeform_mood_in_another_case_is_the_users_and_untag_restores_it(
    track: Path, tmp_path: Path, name: str = "mood"
) -> None:
    audio: Any = mutagen.File(track)
    audio.tags[ITUNES + name] = [MP4FreeForm(b"Dreamy")]
    audio.save()
    before = every_tag(track)
    index = tmp_path / "index.sqlite3"

    result = invoke(["scan", track.parent, "--index", index, "-j", "1"])
    assert result.exit_code == 0, result.output
    found = atoms(track)
    assert found[ITUNES + name] == [b"Dreamy"]  # the user's atom, as it was
    assert ITUNES + "MOOD" not in found, found  # no second MOOD beside it
    assert found[ITUNES + "MERTAG_PREVIOUS_MOOD"] == [b"Dreamy"]
    assert read_tags(track)["MOOD"] == "Dreamy"
    word = found[ITUNES + "MERTAG_MOOD"][0]

    result = invoke(["write", "--index", index, "--overwrite-mood"])
    assert result.exit_code == 0, result.output
    found = atoms(track)
    assert found[ITUNES + name] == [word]  # asked for: mertag's word, in the user's atom
    assert ITUNES + "MOOD" not in found, found

    result = invoke(["untag", track.parent, "--index", index])
    assert result.exit_code == 0, result.output
    assert every_tag(track) == before


def test_any_case_of_a_freeform_name_is_the_field(track: Path) -> None:
    audio: Any = mutagen.File(track)
    audio.tags[ITUNES + "Mood"] = [MP4FreeForm(b"Dreamy")]
    audio.tags[ITUNES + "energylevel"] = [MP4FreeForm(b"3")]
    audio.save()
    before = every_tag(track)
    assert write_tags(track, {**VALUES, "ENERGY": "7"}, overwrite_mood=True)
    found = atoms(track)
    assert found[ITUNES + "Mood"] == [b"Happy"] and found[ITUNES + "energylevel"] == [b"3"]
    assert ITUNES + "MOOD" not in found and ITUNES + "EnergyLevel" not in found
    assert remove_tags(track, None)
    assert every_tag(track) == before
