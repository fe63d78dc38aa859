"""Scan throughput against decoding alone and against the seed paper's pipeline, same tracks.

    python bench/scan_bench.py FOLDER [--jobs N] [--model FILE] [--copies K] [--long]

Copies FOLDER's tracks K times (default 4) to a temp dir, so that the workers stay busy to the end
of each measurement rather than waiting on the last slow track (tags are written to the copies,
never to FOLDER); with `--long` it adds a generated 10-minute and a 2-hour track. Then, in one
run and with the same number of worker processes, it measures:
  - `mertag scan --no-write --jobs N` as a user times it: a new process, start-up included
    (imports, model sessions, the worker pool), to its exit; and the CPU it and its workers
    used, per track;
  - a full scan in this process (decode, features, model, tag write, index), workers warmed
    first, for the CPU seconds per stage and the peak resident memory of the largest worker;
  - the decode floor: every whole track decoded to mono at the analysis rate and nothing else,
    by the fastest decoder for its format (libsndfile + soxr where libsndfile reads the format
    and is faster on it, else PyAV), and PyAV alone (mertag's decoder);
  - the seed paper's pipeline: each whole track at 22.05 kHz, 14 separate librosa calls.
It prints tracks per minute for each and the ratios of the start-up-included scan to the rest.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scan_setup import scan_options  # noqa: E402

from mertag.tagger.audio import SAMPLE_RATE, decode  # noqa: E402
from mertag.tagger.library import walk  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.tagger.scan import STAGES, run_scan, usable_cores  # noqa: E402


def decode_whole(path: Path) -> int:
    return int(decode(path).size)


def decode_sndfile(path: Path) -> int:
    """The whole track with libsndfile, mixed to mono and resampled with soxr (librosa's own
    default resampler), as float32 at the analysis rate."""
    import numpy as np
    import soundfile
    import soxr

    y, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = np.ascontiguousarray(y.mean(axis=1, dtype=np.float32))
    return int(soxr.resample(mono, sr, SAMPLE_RATE).size)


def cpu_of(task: Callable[[Path], int], path: Path) -> float:
    t0 = time.process_time()
    task(path)
    return time.process_time() - t0


def fastest_decoders(tracks: list[Path]) -> dict[str, Callable[[Path], int]]:
    """For each file extension among `tracks`, the decoder that took less CPU on its first
    track (run twice, the second counted): libsndfile + soxr, or PyAV."""
    import soundfile

    chosen: dict[str, Callable[[Path], int]] = {}
    for path in tracks:
        ext = path.suffix.lower()
        if ext in chosen:
            continue
        chosen[ext] = decode_whole
        try:
            soundfile.info(str(path))
            decode_sndfile(path)
        except RuntimeError:  # soundfile.LibsndfileError among them
            continue  # a format libsndfile does not read (AAC in MP4)
        decode_whole(path)
        if cpu_of(decode_sndfile, path) < cpu_of(decode_whole, path):
            chosen[ext] = decode_sndfile
    return chosen


def decode_floor_with(path: Path, use_sndfile: bool) -> int:
    """The floor's decode of one track (the decoder chosen for its format in the parent)."""
    return decode_sndfile(path) if use_sndfile else decode_whole(path)


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


def in_workers(task: Callable[..., int], tracks: list[Path], jobs: int, *extra: object) -> float:
    """Seconds to run `task` over every track in `jobs` worker processes (warmed first)."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=jobs, batch_size=1)(delayed(task)(tracks[0], *extra) for _ in range(jobs))
    t0 = time.perf_counter()
    Parallel(n_jobs=jobs, batch_size=1)(delayed(task)(p, *extra) for p in tracks)
    return time.perf_counter() - t0


def scan_as_user(folder: Path, index: Path, model: MoodModel, jobs: int) -> tuple[float, float]:
    """Wall seconds of `mertag scan --no-write` in a new process, start to exit, and the CPU
    seconds it and its workers used (the rusage of that process, its reaped workers included)."""
    command = [sys.executable, "-m", "mertag", "scan", str(folder), "--index", str(index)]
    command += ["--model", str(model.path), "--jobs", str(jobs), "--no-write", "--force", "-q"]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"mertag scan failed ({child.returncode}): {errors}")
    return wall, usage.ru_utime + usage.ru_stime


def stop_workers() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def scan(folder: Path, index: Path, model: MoodModel, jobs: int) -> tuple[float, dict, int]:
    options = scan_options((folder,), index, model, jobs=jobs, force=True)
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
        t_warm, stages, analysed = scan(lib, Path(tmp) / "index.sqlite3", model, args.jobs)
        stop_workers()
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t_user, cpu_user = scan_as_user(lib, Path(tmp) / "user.sqlite3", model, args.jobs)

        floor = fastest_decoders(tracks)
        t_floor = 0.0
        for use_sndfile in (False, True):
            some = [p for p in tracks if (floor[p.suffix.lower()] is decode_sndfile) == use_sndfile]
            if some:
                t_floor += in_workers(decode_floor_with, some, args.jobs, use_sndfile)
        t_decode = in_workers(decode_whole, tracks, args.jobs)
        t_seed = in_workers(seed_pipeline, tracks, args.jobs)

    def rate(seconds: float) -> float:
        return 60 * n / seconds

    sndfile = sorted(ext for ext, task in floor.items() if task is decode_sndfile)
    print(f"mertag scan, start-up included: {t_user:8.2f} s {rate(t_user):8.1f} tracks/min")
    print(f"  CPU, all in (scan + workers): {cpu_user / n:8.3f} s/track")
    print(
        f"scan, workers warmed (tagging): {t_warm:8.2f} s {60 * analysed / t_warm:8.1f} tracks/min"
    )
    print(f"decode floor (fastest decoder): {t_floor:8.2f} s {rate(t_floor):8.1f} tracks/min")
    print(f"  libsndfile + soxr for {', '.join(sndfile) or 'none'}; PyAV for the rest")
    print(f"decode, PyAV (mertag's):        {t_decode:8.2f} s {rate(t_decode):8.1f} tracks/min")
    print(f"seed pipeline (14 calls):       {t_seed:8.2f} s {rate(t_seed):8.1f} tracks/min")
    print(f"ratio scan / decode floor:      {t_floor / t_user:8.2f}")
    print(f"ratio scan / PyAV decode:       {t_decode / t_user:8.2f}")
    print(f"ratio scan / seed pipeline:     {t_seed / t_user:8.2f}")
    print(f"peak RSS of a scan worker:      {peak_mb:8.0f} MB")
    print("CPU seconds per scan stage (warmed scan, summed over workers; model, tags and index")
    print("are wall seconds):")
    for stage in STAGES:
        total = stages.get(stage, 0.0)
        print(f"  {stage:<9} {total:8.2f} s  {total / max(analysed, 1):6.3f} s/track")


if __name__ == "__main__":
    main()
