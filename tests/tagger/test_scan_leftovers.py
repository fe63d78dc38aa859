"""What a scan says, and its exit status, about what earlier scans left: failures of unchanged
files (until --retry-failed), analysed tracks without tags (until `mertag write`). Real scans
with a small real ONNX model, text, json and jsonl output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tagger.fault_helpers import make_track
from tests.tagger.onnx_models import linear_model
from tests.tagger.scanned_library import invoke


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_model(tmp_path_factory.mktemp("model") / "m.onnx")


def _scan(lib: Path, index: Path, model: Path, *args: str) -> tuple[int, str, str]:
    result = invoke(["scan", lib, "--index", index, "--model", model, *args])
    return result.exit_code, result.stdout, result.stderr


def test_failures_that_remain_make_every_scan_fail_until_retried(
    tmp_path: Path, model: Path
) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    make_track(lib / "good.flac")
    bad = lib / "broken.mp3"
    bad.write_bytes(b"\xff\xfb" + b"no audio here " * 200)
    code, _, err = _scan(lib, index, model)
    assert code == 1 and f"failed: {bad}" in err
    code, _, err = _scan(lib, index, model)  # unchanged: not analysed again, still failing
    assert code == 1, err
    assert "failed before, unchanged" in err and f"still failing: {bad}: " in err
    assert "--retry-failed analyses them again" in err
    code, out, _ = _scan(lib, index, model, "--format", "jsonl")
    *results, last = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and results == []
    summary = last["summary"]
    assert [f["path"] for f in summary["still_failing"]] == [str(bad)]
    assert summary["failed"] == [] and summary["ok"] is False
    code, out, _ = _scan(lib, index, model, "--format", "jsonl", "--retry-failed")
    *results, last = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r["path"] for r in results] == [str(bad)]  # tried again, failed again
    assert last["summary"]["still_failing"] == [] and len(last["summary"]["failed"]) == 1
    make_track(bad)  # the user fixed the file: it is analysed, and all is well
    code, out, err = _scan(lib, index, model, "--format", "json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["summary"]["analysed"] == 1 and doc["summary"]["ok"] is True


def test_analysed_but_untagged_tracks_are_named_until_written(tmp_path: Path, model: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    for i, name in enumerate(("a.flac", "b.opus")):
        make_track(lib / name, index=i)
    code, _, err = _scan(lib, index, model, "--no-write")
    assert code == 0, err
    assert "2 analysed tracks carry no mertag tags: `mertag write` writes them" in err
    code, out, err = _scan(lib, index, model, "--format", "json")
    assert code == 0, err  # untagged is no failure: the analysis is there
    assert json.loads(out)["summary"]["untagged"] == 2
    code, _, err = _scan(lib, index, model)
    assert "analysed, not tagged" in err and "`mertag write` writes them" in err
    written = invoke(["write", "--index", index])
    assert written.exit_code == 0, written.output
    code, out, err = _scan(lib, index, model, "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["untagged"] == 0


def test_a_failed_tag_write_is_written_by_the_next_scan_once_its_cause_is_fixed(
    tmp_path: Path, model: Path
) -> None:
    """A read-only file: analysed and indexed, its tag write fails (exit 1). The user makes it
    writable (size and mtime unchanged, so it is not analysed again) and scans again: the scan
    writes its tags from the index and all is well, the user's own tags kept."""
    import mutagen

    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    track = make_track(lib / "song.flac")
    tags = mutagen.File(track)
    tags["ARTIST"] = "The User's Artist"
    tags["MOOD"] = "Melancholy"
    tags.save()
    track.chmod(0o444)
    code, _, err = _scan(lib, index, model)
    assert code == 1 and f"failed: {track}: tag write failed: read-only file" in err, err
    assert "MERTAG_MODEL" not in mutagen.File(track)
    before = track.stat()
    code, _, err = _scan(lib, index, model)  # still read-only: tried again, fails again
    assert code == 1 and f"still failing: {track}: tag write failed: read-only file" in err
    track.chmod(0o644)
    assert (track.stat().st_size, track.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    code, out, err = _scan(lib, index, model, "--format", "json")
    summary = json.loads(out)["summary"]
    assert code == 0, err
    assert summary["analysed"] == 0 and summary["tags_retried"] == 1 and summary["ok"] is True
    assert summary["still_failing"] == []
    written = mutagen.File(track)
    assert written["MERTAG_MODEL"] and written["ARTIST"] == ["The User's Artist"]
    assert written["MOOD"] == ["Melancholy"]  # the user's MOOD stays (no --overwrite-mood)
    code, _, err = _scan(lib, index, model)
    assert code == 0 and "tagged now" not in err and "still failing" not in err
    listed = invoke(["list", "--index", index, "--format", "json"])
    (row,) = json.loads(listed.stdout)
    assert row["tagged"] in (1, True) and not row["tag_error"]
