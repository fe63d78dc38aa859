"""`mertag show` over a real scanned library: the index's analysis beside the file's own tags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mutagen.flac import FLAC

from mertag.tagger.tags import read_tags
from tests.tagger.scanned_library import BAD, Library, invoke


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def _show(library: Library, *paths: object) -> list[dict]:
    result = invoke(["show", *paths, "-f", "json", "--index", library.index])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_show_json_puts_the_index_beside_the_files_tags(library: Library) -> None:
    (doc,) = _show(library, library.path("bay.mp3"))
    row = doc["index"]
    assert row["status"] == "ok" and row["artist"] == "0zone0ne" and row["title"] == "Bay"
    assert {"p_q1", "p_q2", "p_q3", "p_q4", "valence", "arousal", "confidence"} <= set(row)
    assert row["model_id"] and row["tagged"] == 1
    tags = doc["file"]["tags"]
    assert tags == read_tags(library.path("bay.mp3"))
    assert tags["MOOD"] == row["mood"] == tags["MERTAG_MOOD"]
    assert tags["MERTAG_QUADRANT"] == row["quadrant"]
    assert doc["file"]["same_as_analysed"] is True
    # untag would take every field mertag wrote out again (MOOD was empty before mertag).
    untag = {c["field"]: (c["old"], c["new"]) for c in doc["untag_would_change"]}
    assert untag["MOOD"] == (row["mood"], None)
    assert set(untag) == set(tags)


def test_show_tells_what_untag_would_restore_and_that_only_tags_changed(library: Library) -> None:
    path = library.path("egypt.flac")
    audio = FLAC(path)
    audio["MERTAG_PREVIOUS_MOOD"] = ["Wistful"]  # as after a scan --overwrite-mood
    audio.save()
    (doc,) = _show(library, path)
    untag = {c["field"]: (c["old"], c["new"]) for c in doc["untag_would_change"]}
    assert untag["MOOD"] == (doc["index"]["mood"], "Wistful")
    assert doc["file"]["same_as_analysed"] is True and doc["file"]["only_tags_changed"] is True
    table = invoke(["show", path, "--index", library.index])
    assert table.exit_code == 0, table.output
    for text in ("0zone0ne", "MERTAG_PREVIOUS_MOOD = Wistful", "'Wistful'", "its tags changed"):
        assert text in table.stdout, text


def test_show_a_folder_a_failed_track_and_relative_paths(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(library.lib)
    docs = _show(library, "bad")
    assert [Path(d["path"]).name for d in docs] == ["text.mp3"]
    assert docs[0]["index"]["status"] == "error" and docs[0]["index"]["error"]
    table = invoke(["show", BAD, "--index", library.index])
    assert table.exit_code == 0 and "status" in table.stdout and "error" in table.stdout
    both = _show(library, "celtic.mp3", os.path.abspath("celtic.mp3"), "lava.wav")
    assert [Path(d["path"]).name for d in both] == ["celtic.mp3", "lava.wav"]


def test_show_a_file_the_index_does_not_hold_is_one_line_and_exit_2(
    library: Library, tmp_path: Path
) -> None:
    stray = tmp_path / "stray.mp3"
    stray.write_bytes(b"x")
    result = invoke(["show", stray, "--index", library.index])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"mertag: error: {stray}: not in the index (run `mertag scan` on it)"
    ]
    both = [library.path("bay.mp3"), tmp_path / "nope.flac"]
    result = invoke(["show", *both, "--index", library.index])
    assert result.exit_code == 2 and "bay.mp3" in result.stdout
    assert "nope.flac: no such file or folder" in result.stderr
