"""Two scans on one index: both finish, and every track is analysed and tagged exactly once."""

from __future__ import annotations

import fcntl
import json
import threading
from pathlib import Path

from mertag.tagger.scan import run_scan
from tests.tagger.fault_helpers import check_index, check_track, make_library, start_scan
from tests.tagger.onnx_models import linear_model, linear_scan

NAMES = ["a.wav", "b.flac", "c.mp3", "d.m4a", "e.opus", "f.flac"]


def test_two_scans_at_once_finish_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    fingerprints = make_library(lib, NAMES)
    args = [str(lib), "--index", str(index), "-j", "1", "--json"]
    first, second = start_scan(args), start_scan(args)
    docs = []
    for proc in (first, second):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        docs.append(json.loads(stdout))
    analysed = [r["path"] for doc in docs for r in doc["results"]]
    assert sorted(analysed) == sorted(str(p) for p in fingerprints)  # each once, none lost
    assert sorted(doc["summary"]["unchanged"] for doc in docs) == [0, len(NAMES)]
    rows = check_index(index)
    assert set(rows) == {str(p) for p in fingerprints}
    assert all(row["status"] == "ok" and row["tagged"] == 1 for row in rows.values())
    for path, fingerprint in fingerprints.items():
        assert check_track(path, fingerprint, {rows[str(path)]["model_id"]})


def test_a_scan_waits_for_the_one_holding_the_index_and_says_so(tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    make_library(lib, ["a.wav"])
    model = linear_model(tmp_path / "m.onnx")
    options = linear_scan(lib, index, model)
    told = threading.Event()
    results = []
    with open(f"{index}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another scan holds the index
        waiting = threading.Thread(
            target=lambda: results.append(run_scan(options, on_wait=lambda _: told.set()))
        )
        waiting.start()
        assert told.wait(30), "the waiting scan never said it waits"
        assert not index.exists() and waiting.is_alive()  # it waits before touching anything
    waiting.join(60)  # the lock is released: it goes on
    (summary,) = results
    assert summary.analysed == 1 and summary.ok
