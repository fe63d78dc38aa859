"""Incremental rescans of an unchanged library: a 10,000-row index, nothing to analyse.

    python bench/incremental_bench.py [--tracks N] [--repeats R]

Makes N small files named like tracks in a temp folder (100 per sub-folder) and an index whose
rows match their size and mtime, as a finished scan leaves it. Then times a rescan R times:
  - `run_scan` called in this process (walk, one snapshot query, plan);
  - `mertag scan FOLDER` as a new process (start-up, model check, the same rescan).
Nothing is decoded: the files only have to be walked and stat'ed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scan_setup import MERTAG, scan_options  # noqa: E402

from mertag.tagger.index import Index, IndexRow  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.tagger.scan import run_scan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = MoodModel()
    with tempfile.TemporaryDirectory(prefix="mertag-incremental-") as tmp:
        lib, index_path = Path(tmp) / "lib", Path(tmp) / "index.sqlite3"
        rows = []
        for i in range(args.tracks):
            folder = lib / f"album-{i // 100:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i:06d}.mp3"
            path.write_bytes(b"\xff" * 64)
            st = path.stat()
            rows.append(
                IndexRow(str(path), st.st_size, st.st_mtime_ns, "ok", model_id=model.model_id)
            )
        with Index(index_path) as index:
            for row in rows:
                index.upsert(row)
        options = scan_options((lib,), index_path, model)
        in_process = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            summary = run_scan(options)
            in_process.append(time.perf_counter() - t0)
            assert summary.unchanged == args.tracks and summary.analysed == 0, summary
        cli = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            cmd = MERTAG + ["scan", str(lib), "--index", str(index_path), "-q"]
            subprocess.run(cmd, check=True, cwd=ROOT)
            cli.append(time.perf_counter() - t0)

    print(f"{args.tracks} indexed tracks, none changed, {args.repeats} repeats")
    best, median = min(in_process), statistics.median(in_process)
    print(f"run_scan in this process:  best {best:6.2f} s  median {median:6.2f} s")
    best, median = min(cli), statistics.median(cli)
    print(f"mertag scan (new process): best {best:6.2f} s  median {median:6.2f} s")


if __name__ == "__main__":
    main()
