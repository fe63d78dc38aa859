"""Scan throughput against decode-only throughput of the same tracks.

    python bench/scan_bench.py FOLDER [--jobs N] [--model FILE]

Copies FOLDER's tracks to a temp dir (tags are written to the copies, never to FOLDER), then in
one run measures: decoding every whole track (joblib, N workers), and a full `mertag scan`
(decode, features, model, tag write, index) of the same tracks with the same workers already
warm. Prints tracks per minute, seconds per stage and the ratio scan / decode-only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tagger.audio import decode  # noqa: E402
from tagger.library import walk  # noqa: E402
from tagger.model import MoodModel  # noqa: E402
from tagger.scan import STAGES, ScanOptions, default_jobs, run_scan  # noqa: E402


def decode_whole(path: Path) -> int:
    return int(decode(path).size)


def decode_only(tracks: list[Path], jobs: int) -> float:
    """Seconds to decode every track whole, in `jobs` worker processes."""
    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    Parallel(n_jobs=jobs, batch_size=1)(delayed(decode_whole)(p) for p in tracks)
    return time.perf_counter() - t0


def scan(folder: Path, index: Path, model: MoodModel, jobs: int) -> tuple[float, dict, int]:
    options = ScanOptions(
        roots=(folder,),
        index_path=index,
        model_path=model.path,
        model_id=model.model_id,
        feature_schema=model.info.feature_schema,
        jobs=jobs,
        force=True,
    )
    t0 = time.perf_counter()
    summary = run_scan(options)
    return time.perf_counter() - t0, summary.timings, summary.analysed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    model = MoodModel(args.model)
    with tempfile.TemporaryDirectory(prefix="mertag-bench-") as tmp:
        lib = Path(tmp) / "lib"
        shutil.copytree(args.folder, lib, ignore=shutil.ignore_patterns(".*"))
        for p in lib.rglob("*"):
            if p.is_file():
                p.chmod(0o644)
        tracks = walk([lib]).tracks
        n = len(tracks)
        print(f"{n} tracks, {args.jobs} jobs, model {model.model_id}")

        # Warm the workers (imports, numba caches, ONNX sessions) on a small scan first.
        warm = Path(tmp) / "warm"
        warm.mkdir()
        shutil.copy2(tracks[0], warm / tracks[0].name)
        scan(warm, Path(tmp) / "warm.sqlite3", model, args.jobs)

        t_decode = decode_only(tracks, args.jobs)
        t_scan, stages, analysed = scan(lib, Path(tmp) / "index.sqlite3", model, args.jobs)

    rate_decode = 60 * n / t_decode
    rate_scan = 60 * analysed / t_scan
    print(f"decode only (whole tracks): {t_decode:7.2f} s  {rate_decode:7.1f} tracks/min")
    print(f"scan (end to end):          {t_scan:7.2f} s  {rate_scan:7.1f} tracks/min")
    print(f"ratio scan / decode-only:   {rate_scan / rate_decode:7.2f}")
    print("seconds per stage (summed over workers, per track):")
    for stage in STAGES:
        total = stages.get(stage, 0.0)
        print(f"  {stage:<9} {total:8.2f} s  {total / max(analysed, 1):6.3f} s/track")


if __name__ == "__main__":
    main()
