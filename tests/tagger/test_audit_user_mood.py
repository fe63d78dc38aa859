"""A MOOD the user set is never taken for mertag's word, even when it is that word.

Found by the red-team audit: a MOOD beside MERTAG_QUADRANT without MERTAG_MOOD was taken for
the word of a mertag from before MERTAG_MOOD when it was the quadrant's default word. But mertag
writes no word for an uncertain track, so a user who then tags such a track by hand ("Happy"
for a Q1 it doubted) leaves exactly that; the next scan deleted the user's MOOD, and one whose
MOOD was already "Happy" could not be tagged at all ("tags did not read back as written"). And
`untag` after `scan --no-write` deleted a user's MOOD equal to the word in the index, although
mertag had never written to the file. Real files, the real model, the CLI, tags read back
with mutagen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen
import pytest
from mutagen.id3 import TMOO, TXXX
from mutagen.mp4 import MP4FreeForm

from mertag.tagger.index import Index
from mertag.tagger.mood import DEFAULT_MOODS
from tests.tagger.scanned_library import invoke

# One file per tag family: ID3v2.4, ID3v2.3, Vorbis comment, MP4 freeform.
NAMES = ("bay.mp3", "celtic.mp3", "egypt.flac", "hacienda.m4a")
ITUNES_MOOD = "----:com.apple.iTunes:MOOD"
DOUBT_ALL = ("--uncertain-below", "0.99")  # every track uncertain: mertag writes no word
DOUBT_NONE = ("--uncertain-below", "0")


def file_tags(path: Path) -> dict[str, list[str]]:
    """Every tag of the file as mutagen reads it (key -> values as text)."""
    audio: Any = mutagen.File(path)
    out: dict[str, list[str]] = {}
    for key, value in audio.tags.items():
        if isinstance(value, list):
            out[key] = [bytes(v).decode() if isinstance(v, bytes) else str(v) for v in value]
        else:
            out[key] = [str(t) for t in getattr(value, "text", [value])]
    return out


def user_mood(path: Path) -> list[str] | None:
    """The MOOD a player reads, straight from mutagen."""
    audio: Any = mutagen.File(path)
    if path.suffix == ".mp3":
        v23 = audio.tags.version[:2] == (2, 3)
        frames = audio.tags.getall("TXXX:MOOD" if v23 else "TMOO")
        return [str(t) for f in frames for t in f.text] or None
    if path.suffix == ".m4a":
        return [bytes(v).decode() for v in audio.tags.get(ITUNES_MOOD, [])] or None
    return audio.tags.get("MOOD")


def set_user_mood(path: Path, word: str) -> None:
    """Set MOOD by hand as a tag editor does, in the field each format's players read."""
    audio: Any = mutagen.File(path)
    if path.suffix == ".mp3":
        v23 = audio.tags.version[:2] == (2, 3)
        if v23:
            audio.tags.add(TXXX(encoding=1, desc="MOOD", text=[word]))
        else:
            audio.tags.add(TMOO(encoding=3, text=[word]))
        audio.save(v2_version=3 if v23 else 4)
        return
    if path.suffix == ".m4a":
        audio.tags[ITUNES_MOOD] = [MP4FreeForm(word.encode())]
    else:
        audio.tags["MOOD"] = [word]
    audio.save()


def others(tags: dict[str, list[str]]) -> dict[str, list[str]]:
    """The tags mertag has no part in."""
    return {k: v for k, v in tags.items() if "MERTAG_" not in k.upper() and "MOOD" not in k.upper()}


def scan(lib: Path, index: Path, *extra: str) -> None:
    result = invoke(["scan", lib, "--index", index, "-j", "1", *extra])
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr, result.stderr


def rows(index: Path) -> dict[str, Any]:
    with Index(index, read_only=True) as idx:
        return {Path(r.path).name: r for r in idx.rows()}


@pytest.fixture
def lib(corpus: Path) -> Path:
    for f in corpus.iterdir():
        if f.name not in NAMES:
            f.unlink()
    return corpus


def test_a_mood_set_by_hand_on_an_uncertain_track_is_never_deleted(
    lib: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    scan(lib, index, *DOUBT_ALL)  # uncertain: mertag's numbers, no word
    words = {}
    for name, row in rows(index).items():
        assert row.uncertain == 1 and user_mood(lib / name) is None, name
        words[name] = DEFAULT_MOODS[row.quadrant]  # the user agrees with mertag's guess
        set_user_mood(lib / name, words[name])
    before = {name: others(file_tags(lib / name)) for name in NAMES}

    scan(lib, index, *DOUBT_ALL)  # the files changed, so they are analysed again
    for name in NAMES:
        assert user_mood(lib / name) == [words[name]], name
    scan(lib, index, "--force", *DOUBT_NONE)  # sure of itself now, with the same word
    for name in NAMES:
        assert user_mood(lib / name) == [words[name]], name
    result = invoke(["write", "--index", index, "--moods", "W,X,Y,Z"])  # other words
    assert result.exit_code == 0, result.output
    for name in NAMES:  # go to MERTAG_MOOD only
        assert user_mood(lib / name) == [words[name]], name

    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        tags = file_tags(lib / name)
        assert user_mood(lib / name) == [words[name]], name
        assert not [k for k in tags if "MERTAG_" in k.upper()], (name, tags)
        assert others(tags) == before[name], name


def test_a_users_mood_equal_to_the_word_of_an_uncertain_guess_is_tagged_beside(
    lib: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    scan(lib, index, "--no-write", *DOUBT_ALL)
    words = {name: DEFAULT_MOODS[row.quadrant] for name, row in rows(index).items()}
    for name, word in words.items():
        set_user_mood(lib / name, word)
    scan(lib, index, *DOUBT_ALL)  # before the fix: "tag write failed: tags did not read back"
    for name, row in rows(index).items():
        assert row.tagged == 1 and row.tag_error is None, (name, row.tag_error)
        tags = file_tags(lib / name)
        assert user_mood(lib / name) == [words[name]], name
        assert any(k.upper().endswith("MERTAG_QUADRANT") for k in tags), (name, tags)


def test_untag_after_no_write_keeps_a_users_mood_equal_to_the_indexed_word(
    lib: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    scan(lib, index, "--no-write", *DOUBT_NONE)
    words = {name: row.mood for name, row in rows(index).items()}
    for name, word in words.items():
        assert word, name
        set_user_mood(lib / name, word)  # the user's own MOOD, the same word by chance
    before = {name: file_tags(lib / name) for name in NAMES}
    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert file_tags(lib / name) == before[name], name
        assert user_mood(lib / name) == [words[name]], name
