"""A local worker that dies (SIGKILL here, as the OOM killer sends it) costs only its track:
one line naming the file and the signal, an error row, and the scan goes on (exit 1)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from tests.tagger.fault_helpers import (
    add_picture,
    killed_mid_write_back,
    live_members,
    make_library,
    make_track,
    start_scan,
)
from tests.tagger.onnx_models import linear_model

KILL_FOR_SECONDS = 120.0


def _holders(target: Path) -> list[int]:
    """Processes other than this one with `target` open."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            links = [
                os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")
            ]
        except OSError:
            continue
        if str(target) in links:
            found.append(int(entry))
    return found


def _kill_whoever_opens(target: Path, stop: threading.Event, killed: list[int]) -> None:
    deadline = time.monotonic() + KILL_FOR_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        for pid in _holders(target):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.002)


def _doomed(library: Path) -> Path:
    """A track whose tag write copies 60 MB (and whose decoding reads them): long enough to be
    seen open."""
    doomed = make_track(library / "doomed.flac", seconds=4.0)
    for _ in range(4):
        add_picture(doomed, 15 << 20)
    return doomed


def _group_state(pgid: int) -> list[str]:
    """Each live process of group `pgid`: pid, state, kernel wait channel and command (for a
    hang's failure message)."""
    found = []
    for pid in live_members(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().split()
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
        except OSError:
            continue
        found.append(f"{pid} {stat[2]} {wchan} {cmd.decode(errors='replace')}")
    return found


def _scan_killing(
    doomed: Path, library: Path, index: Path, model: Path, *args: str
) -> tuple[int, str]:
    """`mertag scan -j 2` of `library` while every process that opens `doomed` is killed;
    (exit status, stderr)."""
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_whoever_opens, args=(doomed, stop, killed))
    killer.start()
    try:
        command = [str(library), "--index", str(index), "--model", str(model), "-j", "2", *args]
        proc = start_scan(command)
        try:
            _, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            hung = _group_state(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            raise AssertionError(f"the scan hung; its processes: {hung}; stderr: {err}") from None
    finally:
        stop.set()
        killer.join()
    assert killed, "the test never saw a worker with the file open"
    return proc.returncode, err


def test_a_worker_killed_on_every_try_costs_only_its_track(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    make_library(library, [f"t{i}.mp3" for i in range(5)])
    doomed = _doomed(library)
    index = tmp_path / "index.db"
    returncode, err = _scan_killing(doomed, library, index, linear_model(tmp_path / "m.onnx"))
    assert returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "doomed.flac" in lines[0] and "died (SIGKILL)" in lines[0], err
    assert "Traceback" not in err
    with sqlite3.connect(index) as db:
        rows = dict(db.execute("SELECT path, status FROM tracks").fetchall())
    assert rows.pop(str(doomed)) == "error"
    assert sorted(Path(p).name for p in rows) == [f"t{i}.mp3" for i in range(5)]
    assert set(rows.values()) == {"ok"}


def test_a_worker_death_in_a_no_write_scan_finishes_no_earlier_write(tmp_path: Path) -> None:
    """After a worker died the scan cleans up the folder of its track, in case it died in a tag
    write; a scan that writes no tags had none, and must leave an earlier run's interrupted write
    beside it as it is (the next scan that writes finishes it)."""
    library = tmp_path / "lib"
    make_library(library, [f"t{i}.mp3" for i in range(3)])
    doomed = _doomed(library)
    half = make_track(library / "half.flac")
    killed_mid_write_back(half, {"MOOD": "Happy", "MERTAG_QUADRANT": "Q1", "MERTAG_MODEL": "k"})
    before = {p.name: p.read_bytes() for p in library.iterdir() if p.name.startswith(".half")}
    half_bytes = half.read_bytes()
    model = linear_model(tmp_path / "m.onnx")
    returncode, err = _scan_killing(doomed, library, tmp_path / "index.db", model, "--no-write")
    assert returncode == 1 and "died (SIGKILL)" in err, err
    assert "1 track has an interrupted mertag tag write" in err
    assert half.read_bytes() == half_bytes
    assert {p.name: p.read_bytes() for p in library.iterdir() if p.name.startswith(".half")} == (
        before
    )
