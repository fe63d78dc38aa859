"""A track moved or renamed since its scan keeps its analysis: real files, a real index, the
CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from mertag.tagger.index import Index
from mertag.tagger.tags import read_tags
from tests.tagger.scanned_library import invoke

NAMES = ("bay.mp3", "egypt.flac", "farm.ogg")


def _scan(lib: Path, index: Path) -> dict:
    result = invoke(["scan", lib, "--index", index, "-j", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    summary: dict = json.loads(result.stdout)["summary"]
    return summary


def _rows(index: Path) -> dict[str, object]:
    with Index(index, read_only=True) as idx:
        return {r.path: r for r in idx.rows()}


def test_moved_and_renamed_tracks_keep_their_analysis(corpus: Path, tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    for name in NAMES:
        shutil.copy2(corpus / name, lib / name)
    assert _scan(lib, index)["analysed"] == len(NAMES)
    before = _rows(index)
    tags = {n: read_tags(lib / n) for n in NAMES}

    (lib / "Album").mkdir()
    (lib / "bay.mp3").rename(lib / "Album" / "01 Bay.mp3")  # moved and renamed
    (lib / "egypt.flac").rename(lib / "Egypt (remaster).flac")  # renamed
    shutil.copy2(corpus / "hacienda.m4a", lib / "farm.ogg.m4a")  # new music, not a move
    (lib / "farm.ogg").unlink()  # gone for good

    summary = _scan(lib, index)
    assert summary["moved"] == 2 and summary["analysed"] == 1 and summary["unchanged"] == 0
    after = _rows(index)
    for old, new in (("bay.mp3", "Album/01 Bay.mp3"), ("egypt.flac", "Egypt (remaster).flac")):
        assert str(lib / old) not in after
        row = after[str(lib / new)]
        st = (lib / new).stat()
        assert row == replace(
            before[str(lib / old)], path=str(lib / new), size=st.st_size, mtime_ns=st.st_mtime_ns
        )
        assert read_tags(lib / new) == tags[old]  # the file was not written
    assert str(lib / "farm.ogg") in after  # its row waits for `mertag prune`
    assert after[str(lib / "farm.ogg.m4a")].status == "ok"

    again = _scan(lib, index)
    assert again["moved"] == 0 and again["analysed"] == 0 and again["unchanged"] == 3


def test_a_copy_whose_original_is_still_there_is_analysed(corpus: Path, tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    shutil.copy2(corpus / "bay.mp3", lib / "bay.mp3")
    _scan(lib, index)
    shutil.copy2(lib / "bay.mp3", lib / "bay copy.mp3")
    summary = _scan(lib, index)
    assert summary["moved"] == 0 and summary["analysed"] == 1
    assert set(_rows(index)) == {str(lib / "bay.mp3"), str(lib / "bay copy.mp3")}
