"""Loading labelled data: folders and CSVs, bad rows reported by name, too little data refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mertag.trainer.dataset import DatasetError, check_usable, load_dataset
from tests.conftest import DATA_4Q, need_shared


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    return path


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_folder_labels_come_from_subfolders_and_each_file_is_its_own_group(tmp_path: Path):
    for q in ("Q1", "Q2", "Q3", "Q4"):
        touch(tmp_path / q / "a.mp3")
        touch(tmp_path / q / "deeper" / "b.flac")
    touch(tmp_path / "Q1" / "notes.txt")  # not audio by name: passed over, like the scanner
    touch(tmp_path / "Q5" / "x.wav")
    ds = load_dataset(tmp_path)
    assert len(ds.clips) == 8
    assert {c.quadrant for c in ds.clips} == {"Q1", "Q2", "Q3", "Q4"}
    assert len({c.group for c in ds.clips}) == 8
    assert [c.name for c in ds.clips[:2]] == ["Q1/a.mp3", "Q1/deeper/b.flac"]
    assert [p.name for p in ds.problems] == ["Q5/"]


def test_folder_without_quadrant_subfolders_is_an_error(tmp_path: Path):
    touch(tmp_path / "music" / "a.mp3")
    with pytest.raises(DatasetError, match="Q1/Q2/Q3/Q4"):
        load_dataset(tmp_path)


def test_csv_paths_are_relative_to_the_csv_and_bad_rows_are_named(tmp_path: Path):
    touch(tmp_path / "audio" / "good.wav")
    touch(tmp_path / "audio" / "odd.wav")
    rows = [
        {"clip": "good", "file": "audio/good.wav", "quadrant": "q2", "artist": "A"},
        {"clip": "gone", "file": "audio/missing.wav", "quadrant": "Q1", "artist": "B"},
        {"clip": "five", "file": "audio/odd.wav", "quadrant": "Q5", "artist": "C"},
        {"clip": "empty", "file": "", "quadrant": "Q1", "artist": "D"},
        {"clip": "again", "file": "audio/../audio/good.wav", "quadrant": "Q2", "artist": "A"},
        {"clip": "solo", "file": "audio/odd.wav", "quadrant": "Q3", "artist": ""},
    ]
    ds = load_dataset(
        write_csv(tmp_path / "labels.csv", rows, ["clip", "file", "quadrant", "artist"])
    )
    assert [(c.name, c.quadrant, c.group) for c in ds.clips] == [
        ("good", "Q2", "A"),
        ("solo", "Q3", "clip:solo"),
    ]
    assert ds.clips[0].path == (tmp_path / "audio" / "good.wav").resolve()
    reasons = {p.name: p.reason for p in ds.problems}
    assert "file not found" in reasons["labels.csv line 3 (gone)"]
    assert "'Q5'" in reasons["labels.csv line 4 (five)"]
    assert "empty path" in reasons["labels.csv line 5 (empty)"]
    assert "same file as good" in reasons["labels.csv line 6 (again)"]
    assert ds.grouping == "grouped by the 'artist' column"


def test_csv_without_needed_columns_says_which_it_has(tmp_path: Path):
    path = write_csv(tmp_path / "x.csv", [{"name": "a", "mood": "Q1"}], ["name", "mood"])
    with pytest.raises(DatasetError, match="has name, mood"):
        load_dataset(path)


def test_missing_source_is_an_error(tmp_path: Path):
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(tmp_path / "nope")


def test_too_few_clips_is_a_clear_error(tmp_path: Path):
    for q in ("Q1", "Q2", "Q3"):
        touch(tmp_path / q / "a.wav")
    ds = load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="too few usable clips.*Q4 has 0"):
        check_usable(ds.clips, folds=5)


def test_folds_need_enough_groups(tmp_path: Path):
    rows = [
        {"file": f"{q}{k}.wav", "quadrant": q, "artist": "same"}
        for q in ("Q1", "Q2", "Q3", "Q4")
        for k in range(3)
    ]
    for r in rows:
        touch(tmp_path / r["file"])
    ds = load_dataset(write_csv(tmp_path / "l.csv", rows, ["file", "quadrant", "artist"]))
    check_usable(ds.clips, folds=0)
    with pytest.raises(DatasetError, match="too few groups"):
        check_usable(ds.clips, folds=2)


def test_the_4q_labels_load_as_they_are():
    labels = need_shared(DATA_4Q / "labels.csv")
    ds = load_dataset(labels)
    assert len(ds.clips) == 720 and not ds.problems
    assert ds.grouping == "grouped by the 'artist' column"
    assert len({c.group for c in ds.clips}) < 720
    words = [c.moods for c in ds.clips]
    assert all(words) and sum(map(len, words)) / len(words) > 5  # about six AllMusic words each
    lazy = next(c for c in ds.clips if c.name == "MT0000044741")  # Little Walter, Last Night
    assert lazy.moods == ("Greasy", "Gritty", "Gutsy", "Lazy")
