"""A tag write killed half-way leaves a journal (mertag.tagger.safe_write); the runs that must not
write (scan --dry-run, scan --no-write, write --dry-run, untag --dry-run, show) leave such a file
exactly as it is, do not read its half-old, half-new bytes, and say so with the command that
finishes it; the next scan that writes tags finishes it, then analyses and tags it.

The interrupted write is the real state a SIGKILL leaves (fault_helpers.killed_mid_write_back:
the real journal functions, the file half overwritten, the writer gone); the commands run through
Typer's CliRunner on real files with a real onnxruntime model and a real SQLite index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mertag.tagger.index import Index
from mertag.tagger.safe_write import TEMP_SUFFIX, interrupted_write
from mertag.tagger.tags import audio_fingerprint, read_tags
from mertag.tagger.write_journal import (
    JOURNAL_SUFFIX,
    JournalRecord,
    create,
    file_digest,
    marked_journal,
)
from tests.tagger.fault_helpers import killed_mid_write_back, make_track
from tests.tagger.onnx_models import linear_model
from tests.tagger.scanned_library import invoke

KILLED_WRITE = {"MOOD": "Happy", "MERTAG_QUADRANT": "Q1", "MERTAG_MODEL": "killed-writer 1.0"}
"""The tags the killed writer was putting in."""


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.endswith((TEMP_SUFFIX, JOURNAL_SUFFIX))
    )


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the folder, hidden ones included: its bytes and mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    make_track(lib / "half.flac", index=0)
    make_track(lib / "whole.wav", index=1)
    return lib


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "m.onnx")


def _scan(lib: Path, index: Path, model: Path, *args: str) -> tuple[int, str, str]:
    result = invoke(["scan", lib, "--index", index, "--model", model, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def index(tmp_path: Path, lib: Path, model: Path) -> Path:
    """The library's index after a `scan --no-write`: every track analysed, none tagged."""
    index = tmp_path / "indexed.sqlite3"
    code, _, err = _scan(lib, index, model, "--no-write", "--quiet")
    assert code == 0, err
    return index


def test_read_only_scans_leave_it_and_say_so_then_a_scan_finishes_it(
    tmp_path: Path, lib: Path, model: Path
) -> None:
    half = lib / "half.flac"
    original_audio = audio_fingerprint(half)
    killed_mid_write_back(half, KILLED_WRITE)
    before = _state(lib)
    index = tmp_path / "index.sqlite3"

    code, _, err = _scan(lib, index, model, "--dry-run")
    assert code == 1, err  # a track is left unanalysed
    assert (
        f"warning: 1 track has an interrupted mertag tag write (first: {half}); this dry run "
        "left it as it is, not analysed: `mertag scan` without --dry-run finishes it"
    ) in err
    assert f"would tag {lib / 'whole.wav'}" in err and f"would tag {half}" not in err
    assert _state(lib) == before and not index.exists()

    code, out, err = _scan(lib, index, model, "--no-write", "--quiet", "--format", "json")
    assert code == 1, err
    assert err.count("\n") == 1 and "without --no-write finishes it" in err  # said under -q too
    summary = json.loads(out)["summary"]
    assert summary["pending_writes"] == [str(half)] and summary["ok"] is False
    assert summary["analysed"] == 1
    assert _state(lib) == before  # the file, its journal and its copy, byte for byte
    assert marked_journal(half) is not None
    with Index(index, read_only=True) as idx:
        assert idx.get(str(half)) is None  # its half-written bytes were never analysed
        assert idx.get(str(lib / "whole.wav")) is not None

    code, _, err = _scan(lib, index, model)
    assert code == 0, err
    assert "interrupted" not in err
    assert not _leftovers(lib) and marked_journal(half) is None
    tags = read_tags(half)
    assert tags["MERTAG_MODEL"] != KILLED_WRITE["MERTAG_MODEL"]  # this scan's own analysis
    assert audio_fingerprint(half) == original_audio
    with Index(index, read_only=True) as idx:
        row = idx.get(str(half))
        assert row is not None and row.status == "ok" and row.tagged == 1
        assert (row.size, row.mtime_ns) == (half.stat().st_size, half.stat().st_mtime_ns)


def test_write_dry_run_and_show_leave_it_then_write_finishes_it(lib: Path, index: Path) -> None:
    half = lib / "half.flac"
    original_audio = audio_fingerprint(half)
    killed_mid_write_back(half, KILLED_WRITE)  # a `mertag write` killed half-way
    before = _state(lib)

    dry = invoke(["write", "--dry-run", "--index", index])
    assert dry.exit_code == 1, dry.stderr
    assert (
        f"skipped {half}: an interrupted mertag tag write is pending (left as it is in a dry run; "
        "`mertag write` without --dry-run finishes it first)"
    ) in dry.stderr
    assert f"would write {lib / 'whole.wav'}" in dry.stderr
    shown = invoke(["show", half, "--format", "json", "--index", index])
    assert shown.exit_code == 0, shown.stderr
    (report,) = json.loads(shown.stdout)
    assert "interrupted mertag tag write is pending" in report["file"]["tags_unreadable"]
    assert _state(lib) == before

    done = invoke(["write", "--index", index])
    assert done.exit_code == 0, done.stderr
    assert "wrote 2 of 2 tracks" in done.stderr
    assert not _leftovers(lib)
    assert read_tags(half)["MERTAG_MODEL"] != KILLED_WRITE["MERTAG_MODEL"]
    assert audio_fingerprint(half) == original_audio


def test_untag_dry_run_leaves_it_then_untag_finishes_it(lib: Path) -> None:
    half = lib / "half.flac"
    original_audio = audio_fingerprint(half)
    killed_mid_write_back(half, KILLED_WRITE)
    before = _state(lib)

    dry = invoke(["untag", "--dry-run", lib])
    assert dry.exit_code == 1, dry.stderr
    assert (
        f"error: {half}: an interrupted mertag tag write is pending (left as it is in a dry run; "
        "`mertag untag` without --dry-run finishes it first)"
    ) in dry.stderr
    assert _state(lib) == before

    done = invoke(["untag", lib])
    assert done.exit_code == 0, done.stderr
    assert not _leftovers(lib) and read_tags(half) == {}
    assert audio_fingerprint(half) == original_audio


def _interrupted_through_a_link(track: Path, tmp_path: Path) -> tuple[Path, str]:
    """A hard link to `track` in downloads/, a folder no command here visits, and a write killed
    half-way through it; (the link, the track's audio fingerprint)."""
    other = tmp_path / "downloads" / track.name
    other.parent.mkdir()
    os.link(track, other)
    original_audio = audio_fingerprint(other)
    killed_mid_write_back(other, KILLED_WRITE)
    if marked_journal(track) is None:
        pytest.skip(f"{tmp_path} takes no user extended attributes")
    return other, original_audio


def _finished_through_the_link(other: Path, original_audio: str) -> None:
    """The write killed through the link `other` was finished: no journal or temp copy left
    beside it, its audio as it was, and the new write's tags in it (not the killed one's)."""
    assert not _leftovers(other.parent) and marked_journal(other) is None
    assert audio_fingerprint(other) == original_audio
    assert read_tags(other)["MERTAG_MODEL"] != KILLED_WRITE["MERTAG_MODEL"]


def test_a_write_interrupted_through_a_hard_link_elsewhere(
    tmp_path: Path, lib: Path, model: Path
) -> None:
    other, original_audio = _interrupted_through_a_link(lib / "half.flac", tmp_path)
    downloads = other.parent
    before = _state(downloads)
    index = tmp_path / "index.sqlite3"

    code, _, err = _scan(lib, index, model, "--no-write")
    assert code == 1 and "1 track has an interrupted mertag tag write" in err, err
    assert _state(downloads) == before

    code, _, err = _scan(lib, index, model)  # finished before it is analysed
    assert code == 0, err
    _finished_through_the_link(other, original_audio)
    with Index(index, read_only=True) as idx:
        row = idx.get(str(lib / "half.flac"))
        assert row is not None and row.status == "ok" and row.tagged == 1


def test_write_finishes_a_write_interrupted_through_a_hard_link_elsewhere(
    tmp_path: Path, lib: Path, index: Path
) -> None:
    other, original_audio = _interrupted_through_a_link(lib / "half.flac", tmp_path)
    downloads = other.parent
    before = _state(downloads)

    dry = invoke(["write", "--dry-run", "--index", index])
    assert dry.exit_code == 1 and "interrupted mertag tag write is pending" in dry.stderr
    assert _state(downloads) == before

    done = invoke(["write", "--index", index])
    assert done.exit_code == 0, done.stderr
    assert "wrote 2 of 2 tracks" in done.stderr
    _finished_through_the_link(other, original_audio)


def test_untag_finishes_a_write_interrupted_through_a_hard_link_elsewhere(
    tmp_path: Path, lib: Path
) -> None:
    other, original_audio = _interrupted_through_a_link(lib / "half.flac", tmp_path)
    downloads = other.parent
    done = invoke(["untag", lib])
    assert done.exit_code == 0, done.stderr
    assert not _leftovers(downloads) and read_tags(other) == {}
    assert audio_fingerprint(other) == original_audio


def test_a_linked_track_whose_file_has_an_interrupted_write(tmp_path: Path, lib: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    real = make_track(store / "real.flac")
    killed_mid_write_back(real, KILLED_WRITE)
    link = lib / "link.flac"
    link.symlink_to(real)
    assert interrupted_write(link) is not None and interrupted_write(lib / "whole.wav") is None


def test_a_live_writers_journal_is_no_interrupted_write(lib: Path) -> None:
    path = lib / "whole.wav"
    copy = path.with_name(f".{path.name}.live{TEMP_SUFFIX}")
    copy.write_bytes(path.read_bytes())
    st = path.stat()
    with open(copy, "rb") as f:
        digest = file_digest(f)
    record = JournalRecord(
        path.name, copy.name, st.st_size, digest, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    )
    lock = create(record, lib)  # held: its writer is at work
    try:
        assert interrupted_write(path) is None
    finally:
        os.close(lock)  # the writer dies
    assert interrupted_write(path) is not None
