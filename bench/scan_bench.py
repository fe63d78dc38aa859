"""Scan throughput against decoding alone and against the seed paper's pipeline, same tracks.

    python bench/scan_bench.py FOLDER [--jobs N] [--model FILE] [--copies K] [--long]

Copies FOLDER's tracks K times (default 4) to a temp dir, so that the workers stay busy to the end
of each measurement rather than waiting on the last slow track (tags are written to the copies,
never to FOLDER); with `--long` it adds a generated 10-minute and a 2-hour track. Then, in one
run and with the same number of worker processes, it measures:
  - a full `mertag scan` (decode, features, model, tag write, index), workers warmed first;
  - decoding every whole track and nothing else;
  - the seed paper's pipeline: each whole track at 22.05 kHz, 14 separate librosa calls.
It prints tracks per minute for each, the ratios, CPU seconds per scan stage, and the peak
resident memory of the largest scan worker.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mertag.tagger.audio import decode  # noqa: E402
from mertag.tagger.library import walk  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.tagger.scan import STAGES, ScanOptions, run_scan, usable_cores  # noqa: E402


def decode_whole(path: Path) -> int:
    return int(decode(path).size)


def seed_pipeline(path: Path) -> int:
    """The seed paper's extraction: whole track, 22.05 kHz, each feature its own librosa call."""
    import librosa

    sr = 22050
    y = decode(path, sr=sr)
    f = librosa.feature
    calls = [
        lambda: f.chroma_stft(y=y, sr=sr),
        lambda: f.chroma_cqt(y=y, sr=sr),
        lambda: f.chroma_vqt(y=y, sr=sr, intervals="equal"),
        lambda: f.melspectrogram(y=y, sr=sr),
        lambda: f.mfcc(y=y, sr=sr),
        lambda: f.rms(y=y),
        lambda: f.spectral_centroid(y=y, sr=sr),
        lambda: f.spectral_bandwidth(y=y, sr=sr),
        lambda: f.spectral_contrast(y=y, sr=sr),
        lambda: f.spectral_flatness(y=y),
        lambda: f.spectral_rolloff(y=y, sr=sr),
        lambda: f.tonnetz(y=y, sr=sr),
        lambda: f.zero_crossing_rate(y),
        lambda: f.tempo(y=y, sr=sr),
    ]
    return sum(int(call().size) for call in calls)


def in_workers(task: Callable[[Path], int], tracks: list[Path], jobs: int) -> float:
    """Seconds to run `task` over every track in `jobs` worker processes (warmed first)."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=jobs, batch_size=1)(delayed(task)(tracks[0]) for _ in range(jobs))
    t0 = time.perf_counter()
    Parallel(n_jobs=jobs, batch_size=1)(delayed(task)(p) for p in tracks)
    return time.perf_counter() - t0


def stop_workers() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


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


def write_long_track(path: Path, seconds: float) -> Path:
    """A generated MP3 (22.05 kHz mono) of chords and noise bursts, `seconds` long."""
    import av
    import numpy as np

    rate = 22050
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 64000
        for start in range(0, int(seconds), 10):
            t = np.arange(10 * rate) / rate
            base = 110 * 2 ** (rng.integers(0, 12) / 12)
            y = sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 1.25, 1.5, 2))
            y = 0.2 * y + 0.02 * rng.standard_normal(t.size)
            frame = av.AudioFrame.from_ndarray(
                (y * 20000).astype(np.int16)[None, :], format="s16", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start * rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--jobs", type=int, default=usable_cores())
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=4, help="copies of FOLDER's tracks")
    parser.add_argument("--long", action="store_true", help="add a 10-min and a 2-hour track")
    args = parser.parse_args()

    model = MoodModel(args.model)
    with tempfile.TemporaryDirectory(prefix="mertag-bench-") as tmp:
        lib = Path(tmp) / "lib"
        for k in range(args.copies):
            shutil.copytree(args.folder, lib / f"copy{k}", ignore=shutil.ignore_patterns(".*"))
        for p in lib.rglob("*"):
            if p.is_file():
                p.chmod(0o644)
        if args.long:
            write_long_track(lib / "long-10min.mp3", 600)
            write_long_track(lib / "long-2h.mp3", 7200)
        tracks = walk([lib]).tracks
        n = len(tracks)
        print(f"{n} tracks, {args.jobs} jobs, model {model.model_id}")

        # Warm the workers (imports, numba caches, ONNX sessions) on a scan of one track per
        # worker first (a one-track scan runs in this process and would warm no worker).
        warm = Path(tmp) / "warm"
        warm.mkdir()
        for i in range(max(2, args.jobs)):
            shutil.copy2(tracks[0], warm / f"{i}-{tracks[0].name}")
        scan(warm, Path(tmp) / "warm.sqlite3", model, args.jobs)
        t_scan, stages, analysed = scan(lib, Path(tmp) / "index.sqlite3", model, args.jobs)
        stop_workers()
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

        t_decode = in_workers(decode_whole, tracks, args.jobs)
        t_seed = in_workers(seed_pipeline, tracks, args.jobs)

    rate = {name: 60 * n / t for name, t in (("decode", t_decode), ("seed", t_seed))}
    rate_scan = 60 * analysed / t_scan
    print(f"scan (end to end):            {t_scan:8.2f} s {rate_scan:8.1f} tracks/min")
    print(f"decode only (whole tracks):   {t_decode:8.2f} s {rate['decode']:8.1f} tracks/min")
    print(f"seed pipeline (14 calls):     {t_seed:8.2f} s {rate['seed']:8.1f} tracks/min")
    print(f"ratio scan / decode-only:     {rate_scan / rate['decode']:8.2f}")
    print(f"ratio scan / seed pipeline:   {rate_scan / rate['seed']:8.2f}")
    print(f"peak RSS of a scan worker:    {peak_mb:8.0f} MB")
    print("CPU seconds per scan stage (summed over workers):")
    for stage in STAGES:
        total = stages.get(stage, 0.0)
        print(f"  {stage:<9} {total:8.2f} s  {total / max(analysed, 1):6.3f} s/track")


if __name__ == "__main__":
    main()
