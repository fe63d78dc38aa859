"""`mertag scan` and `mertag untag` on libraries that hold what users keep: hard links shared with
a download folder, ID3v2.3 files, their own MOOD words, RF64 files mutagen cannot tag. Real scans
(CliRunner), a small real ONNX model, tags read back with mutagen, inodes with os.stat."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TYER

from mertag.tagger.index import Index
from mertag.tagger.tags import read_tags
from tests.audio_files import encode_tone
from tests.tagger.fault_helpers import make_track
from tests.tagger.onnx_models import linear_model
from tests.tagger.scanned_library import invoke


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_model(tmp_path_factory.mktemp("model") / "m.onnx")


def scan(lib: Path, index: Path, model: Path, *args: str) -> tuple[int, str]:
    result = invoke(["scan", lib, "--index", index, "--model", model, "-q", *args])
    return result.exit_code, result.stderr


def inodes(folder: Path) -> set[int]:
    return {p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


def users_flac(lib: Path, mood: list[str]) -> Path:
    """A new folder `lib` with one FLAC track whose MOOD the user set to `mood`."""
    lib.mkdir()
    path = make_track(lib / "mine.flac")
    flac = FLAC(path)
    flac["MOOD"] = mood
    flac.save()
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_hard_linked_library_is_tagged_once_and_never_grows(
    jobs: str, tmp_path: Path, model: Path
) -> None:
    downloads, lib = tmp_path / "downloads", tmp_path / "lib"
    downloads.mkdir()
    lib.mkdir()
    names = ["a.flac", "b.mp3", "c.m4a"]
    for i, name in enumerate(names):
        make_track(downloads / name, index=i)
        os.link(downloads / name, lib / name)
    os.link(downloads / "a.flac", lib / "a (again).flac")  # a third name in the library
    index = tmp_path / "index.sqlite3"
    before = inodes(downloads) | inodes(lib)
    assert len(before) == 3

    code, err = scan(tmp_path, index, model, "-j", jobs)
    assert code == 0, err
    assert inodes(downloads) | inodes(lib) == before  # no name got a new inode
    for name in names:
        assert (downloads / name).stat().st_ino == (lib / name).stat().st_ino
        assert read_tags(downloads / name) == read_tags(lib / name) != {}
    assert (lib / "a.flac").stat().st_nlink == 3
    state = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in lib.iterdir()}

    code, err = scan(tmp_path, index, model, "-j", jobs)  # nothing left to do
    assert code == 0, err
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in lib.iterdir()} == state
    with Index(index) as idx:
        rows = list(idx.rows())
    # The walk takes each inode once, under its first name: one row, one analysis per file.
    assert sorted(Path(r.path).parent.name for r in rows) == ["downloads"] * 3
    assert all(r.status == "ok" and r.tagged == 1 for r in rows)


def test_scan_keeps_id3v23_and_its_frames(tmp_path: Path, model: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    path = make_track(lib / "old.mp3")
    tags = ID3()
    tags.add(TYER(encoding=0, text=["1999"]))
    tags.save(path, v2_version=3)
    code, err = scan(lib, tmp_path / "i.sqlite3", model)
    assert code == 0, err
    tags = ID3(path, translate=False)
    assert tags.version[:2] == (2, 3)
    assert str(tags["TYER"]) == "1999" and "TMOO" not in tags
    assert tags["TXXX:MOOD"].text == [read_tags(path)["MERTAG_MOOD"]]
    code, err = scan(lib, tmp_path / "i.sqlite3", model, "--force", "--id3v24")
    assert code == 0, err
    assert ID3(path).version[:2] == (2, 4)  # only when asked


def test_scan_keeps_the_users_mood_and_untag_gives_it_back(tmp_path: Path, model: Path) -> None:
    lib = tmp_path / "lib"
    path = users_flac(lib, ["Melancholic", "Dreamy"])
    index = tmp_path / "i.sqlite3"
    code, err = scan(lib, index, model)
    assert code == 0, err
    flac = FLAC(path)
    assert flac["MOOD"] == ["Melancholic", "Dreamy"]
    assert flac["MERTAG_PREVIOUS_MOOD"] == ["Melancholic", "Dreamy"]
    assert flac["MERTAG_MOOD"][0] in ("Happy", "Angry", "Sad", "Relaxed")

    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 0, result.output
    assert "kept MOOD=Melancholic; Dreamy" in result.stderr
    assert FLAC(path)["MOOD"] == ["Melancholic", "Dreamy"]
    assert read_tags(path) == {"MOOD": "Melancholic; Dreamy"}


def test_rf64_is_analysed_and_indexed_not_tagged_and_not_a_failure(
    tmp_path: Path, model: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("long 1.wav", "long 2.wav"):
        encode_tone(lib / name, 3.5, "wav", "pcm_s16le", 22050, options={"rf64": "always"})
    make_track(lib / "plain.wav")
    index = tmp_path / "i.sqlite3"
    data = {p: p.read_bytes() for p in lib.glob("long*")}
    result = invoke(["scan", lib, "--index", index, "--model", model])
    assert result.exit_code == 0, result.output
    notes = [x for x in result.stderr.splitlines() if "RF64 files cannot be tagged" in x]
    assert len(notes) == 1, result.stderr  # said once, not once per file
    assert "error" not in result.stderr
    assert {p: p.read_bytes() for p in data} == data
    with Index(index) as idx:
        rows = {Path(r.path).name: r for r in idx.rows()}
    for name in ("long 1.wav", "long 2.wav"):
        row = rows[name]
        assert row.status == "ok" and row.tagged == 0 and row.tag_error is None, row
    assert rows["plain.wav"].tagged == 1
    assert mutagen.File(lib / "plain.wav") is not None
    rerun = invoke(["scan", lib, "--index", index, "--model", model, "-v"])
    assert rerun.exit_code == 0 and "3 unchanged" in rerun.stderr, rerun.stderr
    assert "carry no mertag tags" not in rerun.stderr  # nothing for `mertag write` to do
    stats = invoke(["stats", "--format", "json", "--index", index])
    doc = json.loads(stats.stdout)
    assert doc["cannot_be_tagged"] == 2 and doc["not_tagged"] == 2 and doc["tag_failures"] == 0
    assert rows["long 1.wav"].not_tagged == "unsupported format: RF64 files cannot be tagged"


def test_dry_run_shows_old_to_new_and_overwrite_mood_is_undone_by_untag(
    tmp_path: Path, model: Path
) -> None:
    """The CLI end to end: `--dry-run` names each field old -> new and writes nothing;
    `--overwrite-mood` (and the config key) replaces the user's MOOD; `untag` restores it."""
    lib = tmp_path / "lib"
    track = users_flac(lib, ["Chill", "Dreamy"])
    before = track.read_bytes()
    index = tmp_path / "index.db"
    result = invoke(["scan", lib, "--index", index, "--model", model, "--dry-run"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("would tag")]
    assert "MERTAG_MOOD: (none) -> '" in line and "MOOD: 'Chill; Dreamy'" not in line, line
    assert track.read_bytes() == before and not index.exists()

    config = tmp_path / "config.toml"
    config.write_text("overwrite_mood = true\n", encoding="utf-8")
    result = invoke(["--config", config, "scan", lib, "--index", index, "--model", model, "-q"])
    assert result.exit_code == 0, result.output
    tags = FLAC(track)
    assert tags["MOOD"] == tags["MERTAG_MOOD"] and tags["MOOD"] != ["Chill", "Dreamy"]
    assert tags["MERTAG_PREVIOUS_MOOD"] == ["Chill", "Dreamy"]

    assert invoke(["untag", lib, "--index", index]).exit_code == 0
    tags = FLAC(track)
    assert tags["MOOD"] == ["Chill", "Dreamy"] and "MERTAG_MOOD" not in tags
