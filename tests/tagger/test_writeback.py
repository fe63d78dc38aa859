"""`mertag write`: tags from the index into real files, without analysing; the scan's MOOD policy,
the files changed since analysis skipped, the index updated. Tags read back with mutagen."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import ID3

from mertag.tagger.index import Index
from mertag.tagger.tags import MERTAG_FIELDS, audio_fingerprint, read_tags
from mertag.tagger.writeback import WriteOptions, write_row
from tests.conftest import CORPUS, copy_corpus
from tests.tagger.onnx_models import linear_model
from tests.tagger.scanned_library import CORPUS_NAMES, GENERATED, Library, invoke, other_tags

TAGGED = [*CORPUS_NAMES, *GENERATED]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(library: Library, *args: object) -> tuple[int, str]:
    result = invoke(["write", *args, "--index", library.index])
    return result.exit_code, result.stderr


def test_scan_no_write_then_write_dry_run_then_write(tmp_path: Path) -> None:
    names = ("egypt.flac", "lava.wav", "hacienda.m4a", "celtic.mp3")
    lib = copy_corpus(tmp_path / "lib", names)
    index = tmp_path / "index.sqlite3"
    model = linear_model(tmp_path / "m.onnx")
    scanned = invoke(["scan", lib, "--index", index, "--model", model, "--no-write", "-q"])
    assert scanned.exit_code == 0, scanned.output
    untouched = {n: _digest(lib / n) for n in names}
    assert all(_digest(CORPUS / n) == d for n, d in untouched.items())
    library = Library(lib, index)

    code, err = _write(library, "--dry-run")
    assert code == 0, err
    assert {n: _digest(lib / n) for n in names} == untouched  # a dry run writes nothing
    for name in names:
        assert f"would write {lib / name}: MOOD: (none) -> " in err, name
    assert "would write 4 of 4 tracks" in err

    code, err = _write(library)
    assert code == 0, err
    assert "wrote 4 of 4 tracks" in err
    with Index(index) as idx:
        for name in names:
            path = lib / name
            row = idx.get(str(path))
            tags = read_tags(path)
            assert set(tags) == set(MERTAG_FIELDS), name
            assert tags["MOOD"] == tags["MERTAG_MOOD"] == row.mood, name
            assert tags["MERTAG_QUADRANT"] == row.quadrant
            assert tags["MERTAG_VALENCE"] == f"{row.valence:.3f}"
            assert tags["MERTAG_MODEL"] == row.model_id
            assert audio_fingerprint(path) == row.audio_sha256, name  # audio untouched
            st = path.stat()
            assert row.tagged == 1 and (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)
    code, err = _write(library)
    assert code == 0 and "wrote 0 of 4 tracks (4 up to date)" in err
    # The rows now match the files: a scan finds nothing to do.
    rescan = invoke(["scan", lib, "--index", index, "--model", model, "--format", "json"])
    assert rescan.exit_code == 0 and '"analysed": 0' in rescan.stdout


def test_new_mood_words_and_id3_version_need_no_analysis(library: Library) -> None:
    mp3 = library.path("bay.mp3")
    before = ID3(mp3)
    others = set(other_tags(mp3))
    assert ID3(mp3).version[1] == 4 and "TMOO" in ID3(mp3)
    code, err = _write(library, "--moods", "Joy,Rage,Blue,Calm", "--id3v23", "path:bay.mp3")
    assert code == 0, err
    assert "wrote 1 of 1 track" in err
    tags = read_tags(mp3)
    row = {r.path: r for r in library.rows()}[str(mp3)]
    words = {"Q1": "Joy", "Q2": "Rage", "Q3": "Blue", "Q4": "Calm"}
    assert tags["MOOD"] == tags["MERTAG_MOOD"] == words[row.quadrant] == row.mood
    id3 = ID3(mp3)
    assert id3.version[1] == 3 and "TMOO" not in id3 and "TXXX:MOOD" in id3
    # Every other frame is kept (text re-encoded as v2.3 allows: UTF-16 for UTF-8).
    for key in ("TPE1", "TALB", "TIT2"):
        assert id3[key].text == before[key].text
    assert [f.data for f in id3.getall("APIC")] == [f.data for f in before.getall("APIC")]
    assert set(other_tags(mp3)) == others


def test_a_users_mood_is_kept_unless_overwrite_and_untag_restores_it(library: Library) -> None:
    path = library.path("egypt.flac")
    audio = FLAC(path)
    for key in list(audio.tags.keys()):  # another tool stripped mertag's fields ...
        if key.upper() in ("MOOD", *MERTAG_FIELDS):
            del audio[key]
    audio["MOOD"] = ["Wistful"]  # ... and the user set a mood of their own
    audio.save()
    fingerprint = audio_fingerprint(path)
    code, err = _write(library, "path:egypt.flac")
    assert code == 0, err
    tags = read_tags(path)
    row = {r.path: r for r in library.rows()}[str(path)]
    assert tags["MOOD"] == "Wistful" and tags["MERTAG_MOOD"] == row.mood
    assert tags["MERTAG_PREVIOUS_MOOD"] == "Wistful"
    code, err = _write(library, "path:egypt.flac", "--overwrite-mood", "--dry-run")
    assert f"MOOD: 'Wistful' -> '{row.mood}'" in err
    assert read_tags(path)["MOOD"] == "Wistful"
    code, err = _write(library, "path:egypt.flac", "--overwrite-mood")
    assert code == 0 and read_tags(path)["MOOD"] == row.mood
    assert audio_fingerprint(path) == fingerprint
    untag = invoke(["untag", path, "--index", library.index])
    assert untag.exit_code == 0, untag.output
    assert read_tags(path) == {"MOOD": "Wistful"}


def test_a_file_changed_since_analysis_is_skipped(library: Library) -> None:
    wav = library.path("lava.wav")
    data = bytearray(wav.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one audio byte: another recording now
    wav.write_bytes(bytes(data))
    flac = library.path("egypt.flac")
    flac.write_bytes(flac.read_bytes() + b"\0")  # size changed too; audio hash no longer read
    (library.path("hacienda.m4a")).unlink()
    before = {p: _digest(p) for p in (wav, flac)}
    for kept in ("bay.mp3", "celtic.mp3"):  # tags stripped: put back
        mutagen.File(library.path(kept)).delete()
    code, err = _write(library)
    assert code == 1, err
    assert f"skipped {wav}: audio changed since it was analysed (run `mertag scan`" in err
    assert f"skipped {library.path('hacienda.m4a')}: file is gone" in err
    assert {p: _digest(p) for p in (wav, flac)} == before
    assert set(read_tags(library.path("bay.mp3"))) == set(MERTAG_FIELDS)
    assert "not analysed" in err.splitlines()[-1]  # the bad file's row, counted not reported
    assert "skipped" in err.splitlines()[-1] and "wrote 2 of" in err.splitlines()[-1]


def test_write_needs_an_index_and_refuses_a_foreign_database(tmp_path: Path) -> None:
    result = invoke(["write", "--index", tmp_path / "none.sqlite3"])
    assert result.exit_code == 2 and "no index yet" in result.stderr
    import sqlite3

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE tracks (path TEXT)")
    conn.commit()
    conn.close()
    before = _digest(other)
    result = invoke(["write", "--index", other])
    assert result.exit_code == 2 and "not a mertag index" in result.stderr
    assert _digest(other) == before


def test_write_a_file_named_with_glob_characters(library: Library) -> None:
    path = library.path(GENERATED[0])
    assert "[" in path.name
    audio = mutagen.File(path)
    for key in ("TMOO", "TXXX"):
        audio.tags.delall(key)  # stripped by another tool
    audio.save()
    code, err = _write(library, f"path:{path}")  # an existing file is itself, not a pattern
    assert code == 0, err
    assert "wrote 1 of 1 track" in err and read_tags(path)["MOOD"]


def test_an_uncertain_row_gets_the_uncertain_word_or_none(library: Library) -> None:
    path = library.path("egypt.flac")
    with Index(library.index) as idx:  # as a scan records a track below the model's threshold
        row = idx.get(str(path))
        idx.upsert(replace(row, uncertain=1))
    word = read_tags(path)["MOOD"]
    # The row's own verdict (uncertain_below unset: the model's threshold, as at analysis).
    with Index(library.index) as idx:
        result = write_row(idx, idx.get(str(path)), WriteOptions(uncertain_word="Unsure"))
    assert result.written and f"MOOD: '{word}' -> 'Unsure'" in result.changes
    assert read_tags(path)["MOOD"] == "Unsure"
    # The tests' config says uncertain_below = 0 (never): the quadrant's word comes back.
    code, err = _write(library, "path:egypt.flac")
    assert code == 0 and read_tags(path)["MOOD"] == row.mood, err
    # A threshold above the track's confidence, and no uncertain word: no MOOD at all.
    code, err = _write(library, "path:egypt.flac", "--uncertain-below", "1")
    assert code == 0, err
    tags = read_tags(path)
    assert "MOOD" not in tags and tags["MERTAG_QUADRANT"] == row.quadrant
    with Index(library.index) as idx:
        after = idx.get(str(path))
    assert after.uncertain == 1 and after.mood is None and after.tagged == 1
