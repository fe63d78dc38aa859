"""Start-up: the wall time of `mertag scan` on one track, warm, and on a fresh install.

    python bench/startup_bench.py [TRACK] [--repeats N]

Copies TRACK (default: the shortest-to-decode track of ../shared/corpus that needs no whole-file
read, celtic.mp3) to a temp folder and runs `mertag scan FOLDER --force` in a new process:
  - warm: as installed, numba's cache filled by earlier runs (best and median of N);
  - fresh install: NUMBA_CACHE_DIR pointed at an empty folder, so numba compiles librosa's code as
    on a machine's very first run; then once more with that folder, now filled.
Also prints what `mertag --help` costs, which imports nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MERTAG = [sys.executable, "-c", "from mertag.tagger.cli import main; main()"]


def wall(args: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(MERTAG + args, check=True, env=env, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def spread(times: list[float]) -> str:
    return f"{min(times):6.2f} s best, {statistics.median(times):6.2f} s median"


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
    print(f"fresh install, first scan:     {fresh:6.2f} s  (numba compiles librosa's code)")
    print(f"fresh install, second scan:    {second:6.2f} s  (numba's cache now filled)")


if __name__ == "__main__":
    main()
