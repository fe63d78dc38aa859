"""`mertag untag` on really tagged files of every format: exactly mertag's fields go, every other
tag, picture and audio byte stays, and the index records it."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import TMOO

from mertag.tagger.index import Index
from mertag.tagger.tags import MERTAG_FIELDS, audio_fingerprint, read_tags
from mertag.tagger.untag import mertag_mood
from tests.conftest import CORPUS
from tests.tagger.scanned_library import (
    BAD,
    CORPUS_NAMES,
    GENERATED,
    Library,
    invoke,
    other_tags,
)

TAGGED = [*CORPUS_NAMES, *GENERATED]
# WAV files that had no ID3 chunk before the scan: untag takes the chunk out again.
NO_ID3 = ("lava.wav", GENERATED[1])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_untag_every_format_keeps_everything_else(library: Library) -> None:
    paths = [library.path(n) for n in TAGGED]
    before = {p: (audio_fingerprint(p), other_tags(p), read_tags(p)) for p in paths}
    assert all(set(tags) == set(MERTAG_FIELDS) for _, _, tags in before.values())
    assert "picture0" in other_tags(library.path("egypt.flac"))
    assert any(k.startswith("APIC") for k in other_tags(library.path("bay.mp3")))
    v1_tail = library.path("celtic.mp3").read_bytes()[-128:]
    assert v1_tail.startswith(b"TAG")

    result = invoke(["untag", *paths, "--index", library.index])
    assert result.exit_code == 0, result.output
    assert f"untagged {len(paths)} of {len(paths)} audio files" in result.stderr
    with Index(library.index) as idx:
        for p in paths:
            fingerprint, others, _ = before[p]
            assert read_tags(p) == {}, p.name
            assert audio_fingerprint(p) == fingerprint, p.name
            if any(str(p).endswith(name) for name in NO_ID3):
                assert mutagen.File(p).tags is None, p.name  # no empty `id3 ` chunk left
                others = {**others, "id3_version": "None"}
            assert other_tags(p) == others, p.name
            row = idx.get(str(p))
            assert row is not None and row.tagged == 0 and row.tag_error is None
            assert row.status == "ok" and row.mood  # the analysis is kept
            st = p.stat()
            assert (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert library.path("celtic.mp3").read_bytes()[-128:] == v1_tail  # ID3v1 kept verbatim
    # A WAV that had no ID3 chunk comes out of scan + untag byte-identical.
    assert library.path("lava.wav").read_bytes() == (CORPUS / "lava.wav").read_bytes()


def test_dry_run_changes_nothing(library: Library) -> None:
    paths = [library.path(n) for n in ("bay.mp3", "hacienda.m4a")]
    digests = [_digest(p) for p in paths]
    rows = library.rows()
    result = invoke(["untag", "--dry-run", *paths, "--index", library.index])
    assert result.exit_code == 0, result.output
    assert [_digest(p) for p in paths] == digests
    assert library.rows() == rows
    bay = read_tags(paths[0])
    line = next(x for x in result.stderr.splitlines() if x.startswith(str(paths[0])))
    mood, quadrant = bay["MOOD"], bay["MERTAG_QUADRANT"]
    assert f"would remove MOOD={mood}, MERTAG_MOOD={mood}, MERTAG_QUADRANT={quadrant}" in line
    assert "would untag 2 of 2 audio files" in result.stderr


def test_a_mood_the_user_changed_is_kept(library: Library) -> None:
    path = library.path("bay.mp3")
    audio = mutagen.File(path)
    audio.tags.setall("TMOO", [TMOO(encoding=3, text=["Melancholy"])])
    audio.save()
    with Index(library.index) as idx:
        old = idx.get(str(path))
    assert old is not None
    result = invoke(["untag", path, "--index", library.index])
    assert result.exit_code == 0, result.output
    assert "kept MOOD=Melancholy" in result.stderr
    assert read_tags(path) == {"MOOD": "Melancholy"}
    with Index(library.index) as idx:
        row = idx.get(str(path))
    assert row is not None and row.tagged == 0
    # The file changed since it was analysed, so the row keeps the old identity: a rescan
    # analyses it again rather than trusting an analysis of other content.
    assert (row.size, row.mtime_ns) == (old.size, old.mtime_ns)


def test_a_folder_with_a_bad_file(library: Library) -> None:
    result = invoke(["untag", library.lib, "--index", library.index])
    assert result.exit_code == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and BAD in errors[0]
    for name in TAGGED:
        assert read_tags(library.path(name)) == {}, name


def test_rescan_leaves_untagged_files_alone(library: Library) -> None:
    path = library.path("lava.wav")
    assert invoke(["untag", path, "--index", library.index]).exit_code == 0
    digest = _digest(path)
    result = invoke(["scan", path, "--index", library.index, "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert _digest(path) == digest and read_tags(path) == {}


def test_files_the_index_does_not_know(library: Library, tmp_path: Path) -> None:
    ours = tmp_path / "ours.flac"
    shutil.copy2(library.path("egypt.flac"), ours)  # mertag's tags, no index row
    theirs = tmp_path / "theirs.flac"
    shutil.copy2(library.path("egypt.flac"), theirs)
    quadrant = read_tags(theirs)["MERTAG_QUADRANT"]
    flac = FLAC(theirs)
    flac["MOOD"] = ["Dreamy"]  # the user's own word, set after the scan
    flac.save()
    no_index = tmp_path / "no-index.sqlite3"
    result = invoke(["untag", ours, theirs, "--index", no_index])
    assert result.exit_code == 0, result.output
    assert read_tags(ours) == {}
    assert read_tags(theirs) == {"MOOD": "Dreamy"}
    assert not no_index.exists()  # untag never creates an index
    assert mertag_mood(None, {"MERTAG_QUADRANT": quadrant, "MOOD": "Dreamy"}) is None


def test_mertag_mood_rules(library: Library) -> None:
    row = library.rows()[0]
    assert mertag_mood(row, {"MERTAG_QUADRANT": "Q1", "MOOD": "anything"}) == row.mood
    # No MERTAG_QUADRANT: mertag never tagged the file (scan --no-write), the MOOD is the user's.
    assert mertag_mood(row, {"MOOD": row.mood}) is None
    # An uncertain row: mertag wrote no word, whatever MOOD the user gave the track since.
    assert mertag_mood(replace(row, uncertain=1), {"MERTAG_QUADRANT": "Q1", "MOOD": "x"}) is None
    assert mertag_mood(None, {"MERTAG_QUADRANT": "Q3", "MOOD": "Sad"}) == "Sad"
    assert mertag_mood(None, {"MERTAG_QUADRANT": "Q3", "MOOD": "Blue"}, {"Q3": "Blue"}) == "Blue"
    assert mertag_mood(None, {"MOOD": "Sad"}) is None  # no proof mertag tagged it
    assert mertag_mood(None, {"MERTAG_QUADRANT": "Q9", "MOOD": "Sad"}) is None


def test_untagging_twice_and_usage_errors(library: Library, tmp_path: Path) -> None:
    path = library.path("farm.ogg")
    assert invoke(["untag", path, "--index", library.index]).exit_code == 0
    digest = _digest(path)
    again = invoke(["untag", path, "--index", library.index])
    assert again.exit_code == 0 and "untagged 0 of 1" in again.stderr
    assert _digest(path) == digest  # nothing to remove: not rewritten
    missing = invoke(["untag", tmp_path / "nowhere.mp3"])
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr


def test_a_missing_path_is_one_error_and_the_others_are_untagged(
    library: Library, tmp_path: Path
) -> None:
    path, nope = library.path("farm.ogg"), tmp_path / "nope_dir"
    result = invoke(["untag", nope, path, "--index", library.index])
    assert result.exit_code == 1, result.output
    assert f"error: {nope}: no such file or folder" in result.stderr.splitlines()
    assert "untagged 1 of 1 audio file; 1 failed" in result.stderr
    assert read_tags(path) == {}
    with Index(library.index) as idx:
        assert idx.get(str(nope)) is None


def test_id3_version_is_kept(library: Library) -> None:
    path = library.path("celtic.mp3")
    version = mutagen.File(path).tags.version
    assert invoke(["untag", path, "--index", library.index]).exit_code == 0
    assert mutagen.File(path).tags.version == version
