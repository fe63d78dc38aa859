"""Start-up: the wall time of `mertag scan` on one track, warm, and on a fresh install.

    python bench/startup_bench.py [TRACK] [--repeats N]

Copies TRACK (default: the shortest-to-decode track of ../shared/corpus that needs no whole-file
read, celtic.mp3) to a temp folder and runs `mertag scan FOLDER --force` in a new process:
  - warm: as installed, numba's cache filled by earlier runs (best and median of N);
  - fresh install: NUMBA_CACHE_DIR pointed at an empty folder, as on a machine's very first run
    (a scan imports no numba and compiles nothing since the seed features are numpy); then once
    more.
Also prints what `mertag --help` costs, which imports nothing heavy. Beside each wall time, the
CPU seconds the scan and its children used (less disturbed by other jobs on the machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from scan_setup import MERTAG

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def wall(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of one `mertag` run, start to exit, and the CPU seconds it and the processes
    it waited for used."""
    t0 = time.perf_counter()
    child = subprocess.Popen(
        MERTAG + args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        errors = child.stderr.read().decode() if child.stderr else ""
        raise SystemExit(f"mertag {' '.join(args)} failed: {errors}")
    return seconds, usage.ru_utime + usage.ru_stime


def spread(runs: list[tuple[float, float]]) -> str:
    times = [seconds for seconds, _ in runs]
    cpu = statistics.median(c for _, c in runs)
    return f"{min(times):6.2f} s best, {statistics.median(times):6.2f} s median, {cpu:6.2f} s CPU"


def once(run: tuple[float, float]) -> str:
    return f"{run[0]:6.2f} s,                   {run[1]:6.2f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("track", type=Path, nargs="?", default=SHARED / "corpus" / "celtic.mp3")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mertag-startup-") as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        shutil.copy2(args.track, lib / args.track.name)
        (lib / args.track.name).chmod(0o644)
        scan = ["scan", str(lib), "--index", str(Path(tmp) / "index.sqlite3"), "--force", "-q"]

        helps = [wall(["--help"]) for _ in range(args.repeats)]
        wall(scan)  # fill the caches of this install if they are not yet
        warm = [wall(scan) for _ in range(args.repeats)]
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"))
        fresh = wall(scan, env)
        second = wall(scan, env)

    print(f"one-track scan of {args.track.name}, {args.repeats} repeats, {os.cpu_count()} cores")
    print(f"mertag --help:                 {spread(helps)}")
    print(f"warm install, one-track scan:  {spread(warm)}")
    print(f"fresh install, first scan:     {once(fresh)}  (an empty numba cache)")
    print(f"fresh install, second scan:    {once(second)}")


if __name__ == "__main__":
    main()
