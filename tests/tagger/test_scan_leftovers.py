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
