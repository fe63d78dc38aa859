"""Kill trials: `mertag scan` killed with SIGKILL at random moments, and stopped with Ctrl-C.

After every kill, once the interrupted write-back (if any) is finished as the next scan finishes
it, each file must decode with its audio bit-identical and hold none or all of mertag's fields,
the index must pass SQLite's integrity check with every row whole, and the next scan must analyse
only what is not finished. The library holds an ID3v2.3 file, which must stay v2.3 with its
frames, and hard links (second names in a download folder), which must keep one inode. Each trial
is one real scan in a subprocess (its own process group, so the kill takes the workers too), on
tracks the test encodes itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from mutagen.id3 import ID3, TYER

from mertag.tagger.model import accepted_model_ids, default_model_path, read_model_info
from mertag.tagger.safe_write import TEMP_SUFFIX, finish_interrupted_writes, remove_stale_temps
from mertag.tagger.tags import audio_fingerprint, read_tags
from mertag.tagger.write_journal import pending
from tests.tagger.fault_helpers import (
    add_picture,
    check_index,
    check_track,
    finished,
    make_library,
    make_track,
    start_scan,
    temp_files,
    wait_group_gone,
)
from tests.tagger.onnx_models import linear_model

TRIALS = int(os.environ.get("MERTAG_KILL_TRIALS", "20"))  # ~2.7 s each
SEED = 20250601
# Every container family; the FLAC with 8 MB of cover art makes one tag write slow enough that
# the kills aimed at writes often land inside it.
NAMES = [
    "00-tone.wav",
    "01-art.flac",
    "02-tone.mp3",
    "03-tone.m4a",
    "04-tone.opus",
    "05-tone.aiff",
    "06-tone.flac",
    "07-tone.mp3",
    "08-v23.mp3",
]
# name in the library -> its second name (a hard link) in a download folder beside it.
LINKED = {"01-art.flac": "art.flac", "05-tone.aiff": "tone.aiff", "08-v23.mp3": "v23.mp3"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two small mertag models; switching between them makes every track due again."""
    folder = tmp_path_factory.mktemp("models")
    return [linear_model(folder / f"m{seed}.onnx", seed=seed) for seed in (0, 1)]


def _kill(proc: subprocess.Popen[str], lib: Path, rng: random.Random, aim: str) -> bool:
    """SIGKILL the scan's process group, at a random moment ('any'), within 3 ms of seeing a
    temp copy appear ('write'), or as soon as a write-back's journal appears ('write-back').
    False if the scan finished first."""
    start = time.monotonic()
    if aim == "any":
        deadline = start + rng.uniform(0.0, 4.0)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
    elif aim == "write":
        while proc.poll() is None and time.monotonic() < start + 30 and not temp_files(lib):
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.003))
    else:
        while proc.poll() is None and time.monotonic() < start + 30 and not pending(lib):
            time.sleep(0.0005)
        time.sleep(rng.uniform(0.0, 0.002))
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    return True


def _reported(stderr: str) -> set[str]:
    """Paths of the results a -v scan printed ('Q3 Sad      0.48  /path')."""
    return {
        line.split(maxsplit=3)[3]
        for line in stderr.splitlines()
        if line[:2] in ("Q1", "Q2", "Q3", "Q4")
    }


def _make_v23(path: Path) -> None:
    tags = ID3()
    tags.add(TYER(encoding=0, text=["1999"]))
    tags.save(path, v2_version=3)


def _check_identity(lib: Path, downloads: Path, inodes: dict[str, int]) -> None:
    """Every hard link still shares its inode (and its tags); the v2.3 file is still v2.3."""
    for name, other in LINKED.items():
        st = os.stat(lib / name)
        assert st.st_ino == inodes[name] == os.stat(downloads / other).st_ino, name
        assert st.st_nlink == 2, name
        assert read_tags(lib / name) == read_tags(downloads / other)
    tags = ID3(lib / "08-v23.mp3", translate=False)
    assert tags.version[:2] == (2, 3) and str(tags["TYER"]) == "1999"


def test_sigkill_at_random_moments_never_damages_a_file(tmp_path: Path, models: list[Path]) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    downloads = tmp_path / "downloads"
    fingerprints = make_library(lib, NAMES)
    add_picture(lib / "01-art.flac", 8 << 20)
    _make_v23(lib / "08-v23.mp3")
    downloads.mkdir()
    for name, other in LINKED.items():
        os.link(lib / name, downloads / other)
    inodes = {name: os.stat(lib / name).st_ino for name in LINKED}
    model_ids = {"test-linear-0", "test-linear-1"}
    rng = random.Random(SEED)
    phase = 0
    counts: Counter[str] = Counter()
    leftovers: list[Path] = []
    for trial in range(TRIALS):
        model_id = f"test-linear-{phase % 2}"
        due = {str(p) for p in fingerprints} - finished(check_index(index), model_id)
        jobs = "2" if trial % 5 == 4 else "1"
        proc = start_scan(
            [str(lib), "--index", str(index), "--model", str(models[phase % 2]), "-j", jobs, "-v"]
        )
        aim = ("any", "write", "any", "write-back")[trial % 4]
        killed = _kill(proc, lib, rng, aim)
        _, stderr = proc.communicate(timeout=60)
        assert not wait_group_gone(proc.pid, 10), "workers outlived the kill"
        counts[f"killed ({aim})" if killed else "finished before the kill"] += 1
        counts["killed with a write-back's journal on disk"] += bool(pending(lib))
        # What the next scan does before it touches a file: finish a journaled write-back.
        finished_writes, problems = finish_interrupted_writes(lib)
        assert not problems, problems
        counts["write-backs finished from their journal"] += len(finished_writes)

        # Only due tracks were analysed: finished ones are never redone.
        assert _reported(stderr) <= due, (trial, stderr)
        tagged = [check_track(p, fp, model_ids) for p, fp in fingerprints.items()]
        _check_identity(lib, downloads, inodes)
        rows = check_index(index)
        for path, row in rows.items():
            st = os.stat(path)
            if row["tagged"] == 1 and (row["size"], row["mtime_ns"]) == (
                st.st_size,
                st.st_mtime_ns,
            ):
                tags = read_tags(Path(path))
                assert tags["MERTAG_MODEL"] == row["model_id"]
                assert tags["MERTAG_QUADRANT"] == row["quadrant"]
        # The temp copy a killed writer leaves is gone once the next scan has planned its work.
        if _reported(stderr):
            assert not set(leftovers) & set(temp_files(lib)), trial
        leftovers = temp_files(lib)
        counts["left a temp copy (killed inside a tag write)"] += bool(leftovers)
        counts["tracks fully tagged after the kill"] += sum(tagged)
        if not killed:
            assert proc.returncode == 0, stderr
            phase += 1
    counts["file checks passed"] = TRIALS * len(fingerprints)
    print(f"\nSIGKILL trials: {TRIALS}, seed {SEED}: {dict(counts)}")

    # One more scan finishes the job, analysing exactly what the index did not record as done.
    model_id = f"test-linear-{phase % 2}"
    due = {str(p) for p in fingerprints} - finished(check_index(index), model_id)
    proc = start_scan(
        [str(lib), "--index", str(index), "--model", str(models[phase % 2]), "-j", "1", "--json"]
    )
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    doc = json.loads(stdout)
    assert {r["path"] for r in doc["results"]} == due
    assert not temp_files(lib)
    for path, fp in fingerprints.items():
        assert check_track(path, fp, model_ids)
        assert read_tags(path)["MERTAG_MODEL"] == model_id
    _check_identity(lib, downloads, inodes)
    rows = check_index(index)
    assert set(rows) == {str(p) for p in fingerprints}
    assert all(r["status"] == "ok" and r["tagged"] == 1 for r in rows.values())


def _signal_state(pid: int) -> str:
    """The SigIgn, SigBlk and SigCgt lines of a process's status (for a failure's message)."""
    with open(f"/proc/{pid}/status") as status:
        return " ".join(
            line.strip() for line in status if line.startswith(("SigIgn", "SigBlk", "SigCgt"))
        )


def _interrupt_after_two_results(
    lib: Path, index: Path, jobs: str
) -> tuple[subprocess.Popen[str], str, float]:
    """A -v scan of `lib`, sent SIGINT (to its process group, as a terminal does) once it has
    printed two results. The seconds it took to stop after the signal are -1 when it finished
    first (the trial could not be made)."""
    proc = start_scan([str(lib), "--index", str(index), "-j", jobs, "-v"])
    watchdog = threading.Timer(90, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        assert proc.stderr is not None
        printed = []
        state = ""
        for line in proc.stderr:
            printed.append(line)
            if len(_reported("".join(printed))) == 2:
                break
        finished_first = proc.poll() is not None
        if not finished_first:
            state = _signal_state(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        _, rest = proc.communicate(timeout=30)
        stopped_after = -1.0 if finished_first else time.monotonic() - sent
    finally:
        watchdog.cancel()
    return (
        proc,
        f"scan's signal masks before the signal: {state}\n" + "".join(printed) + rest,
        stopped_after,
    )


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_workers_keeps_results_and_exits_130(tmp_path: Path, jobs: str) -> None:
    lib = tmp_path / "lib"
    # 36 short tones, then 8 tracks of 40 s (each analysed whole: ~0.5 s of CPU), so that the
    # scan is still running when the signal comes, however late a busy machine lets the test
    # read the scan's second result. A scan that finished first anyway is run again (its
    # tagged files keep their audio, which is what the fingerprints check).
    names = [f"{i:02d}-tone{s}" for i, s in enumerate([".wav", ".flac", ".mp3"] * 12)]
    fingerprints = make_library(lib, names)
    for i in range(8):
        long = make_track(lib / f"{40 + i:02d}-long.flac", seconds=40.0, index=i)
        fingerprints[long] = audio_fingerprint(long)
    for attempt in range(3):
        index = tmp_path / f"index{attempt}.sqlite3"
        proc, stderr, stopped_after = _interrupt_after_two_results(lib, index, jobs)
        if stopped_after >= 0:
            break
    assert stopped_after >= 0, (
        f"the scan finished before it could be interrupted, 3 times: {stderr}"
    )
    assert proc.returncode == 130, stderr
    assert stopped_after < 5, stopped_after
    assert not wait_group_gone(proc.pid, 5), "a worker outlived Ctrl-C"
    assert "Traceback" not in stderr
    assert "analysed" in stderr and "interrupted: finished tracks are kept" in stderr
    rows = check_index(index)
    assert _reported(stderr) <= set(rows) and len(rows) >= 2
    shipped = accepted_model_ids(read_model_info(default_model_path()).model_id)
    for path, fp in fingerprints.items():
        check_track(path, fp, shipped)
    print(f"\nCtrl-C with -j {jobs}: exit 130 after {stopped_after:.2f} s, {len(rows)} rows kept")


def test_only_a_dead_writers_temp_copy_is_removed(tmp_path: Path) -> None:
    live, dead = tmp_path / f".a.flac.x{TEMP_SUFFIX}", tmp_path / f".b.flac.y{TEMP_SUFFIX}"
    mine = tmp_path / ".b.flac.y.bak"  # hidden, but not a mertag temp copy
    for path in (live, dead, mine):
        path.write_bytes(b"half a copy")
    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # a scan still writing this copy
        assert remove_stale_temps(tmp_path) == [dead]
        assert live.exists() and mine.exists()
    assert remove_stale_temps(tmp_path) == [live]
    assert mine.exists()
