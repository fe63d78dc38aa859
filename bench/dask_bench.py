"""The Dask backend on loopback: scan throughput with 1 and with 2 workers.

    python bench/dask_bench.py FOLDER [--workers 1,2] [--copies K]

For each worker count it starts a LocalCluster on 127.0.0.1 (one single-threaded worker process
each, with MALLOC_ARENA_MAX=1 as the README's `dask worker` command sets it), warms every worker
(imports, sessions) on one track, then runs `run_scan` with the dask backend over a copy of
FOLDER's tracks (K copies of each, so that every worker has work; tags are written to the
copies) and prints tracks per minute and the largest worker's peak resident memory. On one
2-core machine, 2 workers can at best double 1; what it shows is the overhead of the scheduler
and of the client writing tags and the index.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scan_setup import scan_options  # noqa: E402

from mertag.tagger.library import walk  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.tagger.scan import run_scan  # noqa: E402


def copy_tracks(tracks: list[Path], folder: Path, copies: int) -> None:
    folder.mkdir(parents=True)
    for k in range(copies):
        for track in tracks:
            dst = folder / f"{k}-{track.name}"
            shutil.copy2(track, dst)
            dst.chmod(0o644)


def warm_worker(track: str, model_path: str) -> None:
    """Run on every worker: import and load everything a track needs."""
    from mertag.tagger.backends import warm_process
    from mertag.tagger.features import extract_track
    from mertag.tagger.model import shared_model

    warm_process()
    extract_track(Path(track), columns=shared_model(Path(model_path)).columns)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scan(folder: Path, index: Path, model: MoodModel, scheduler: str) -> tuple[float, int]:
    options = scan_options((folder,), index, model, backend="dask", scheduler=scheduler)
    t0 = time.perf_counter()
    summary = run_scan(options)
    assert summary.ok, summary.failures
    return time.perf_counter() - t0, summary.analysed


def main() -> None:
    import dask
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    model = MoodModel(args.model)
    tracks = walk([args.folder]).tracks
    rates = {}
    # What `MALLOC_ARENA_MAX=1 dask worker ...` does: the nanny passes it on to each worker process.
    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1})
    for n in (int(w) for w in args.workers.split(",")):
        with (
            tempfile.TemporaryDirectory(prefix="mertag-dask-") as tmp,
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
        ):
            with Client(cluster) as client:
                client.run(warm_worker, str(tracks[0]), str(model.path))
            copy_tracks(tracks[:1], Path(tmp) / "warm", n)
            scan(Path(tmp) / "warm", Path(tmp) / "warm.sqlite3", model, cluster.scheduler_address)
            copy_tracks(tracks, Path(tmp) / "lib", args.copies)
            seconds, analysed = scan(
                Path(tmp) / "lib", Path(tmp) / "index.sqlite3", model, cluster.scheduler_address
            )
            with Client(cluster) as client:
                peak_mb = max(client.run(peak_rss_mb).values())
        rates[n] = 60 * analysed / seconds
        print(
            f"{n} worker(s): {analysed} tracks in {seconds:6.2f} s = {rates[n]:6.1f} tracks/min;"
            f" peak worker RSS {peak_mb:.0f} MB"
        )
    if 1 in rates:
        for n, rate in rates.items():
            if n != 1:
                print(f"speed-up of {n} workers over 1: {rate / rates[1]:.2f}")


if __name__ == "__main__":
    main()
