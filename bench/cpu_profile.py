"""Where a track's CPU goes: each part of the scan's analysis, in CPU ms per track.

    python bench/cpu_profile.py [FOLDER] [--rounds N] [--model FILE] [--new-tunings]

Runs every track of FOLDER (default ../shared/corpus) through the scan's own code in this
process, as a worker does (one BLAS thread, glibc's thresholds), after one warm-up round, and
times each part by wrapping the functions the pipeline calls: the decode, level normalisation,
musicnn's mel patches and each network, every function of the frame features, the pooling, the
mood model and the tag write (on fresh temp copies each round). Prints CPU ms per track,
averaged over the tracks as the excerpt policy analyses them, and each part's share: the
numbers behind the feature-ablation candidates in docs/PERFORMANCE.md. Timings nest (a spectral
call runs inside "frame features"); the shares of the top-level parts add up to the track.

The filter banks of the chromas depend on a track's tuning estimate and are kept per process, so
repeated rounds of the same tracks find them built; `--new-tunings` empties those caches before
each track, as a worker meets them in a library whose tracks' tunings it has not seen yet.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
CPU: dict[str, float] = {}
TOP: tuple[str, ...] = ("decode", "level", "mel patches", "musicnn MSD", "musicnn MTT")
TOP += ("frame features", "pooling", "model", "tags")
SEED_CALLS = (
    "spectral.stft",
    "spectral.estimate_tuning",
    "constant_q.vqt",
    "spectral.power_to_db",
    "spectral.melspectrogram",
    "spectral.chroma_stft",
    "constant_q.chroma",
    "spectral.mfcc",
    "spectral.rms",
    "spectral.spectral_weights",
    "spectral.spectral_centroid",
    "spectral.spectral_bandwidth",
    "spectral.spectral_contrast",
    "spectral.spectral_flatness",
    "spectral.spectral_rolloff",
    "spectral.tonnetz",
    "spectral.zero_crossing_rate",
    "spectral.tempo",
    "spectral.onset_strength",
)
"""The seed features' functions (`mertag.tagger.spectral`, `mertag.tagger.constant_q`); vqt is
both constant-Q transforms (CQT and VQT), chroma both constant-Q chromas."""


def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            CPU[name] = CPU.get(name, 0.0) + time.process_time() - t0

    return wrapper


def instrument() -> None:
    """Wrap what the pipeline calls (module attributes, looked up at call time)."""
    from mertag.tagger import constant_q, embeddings, features, model, spectral, tags

    features.decode_excerpt = timed("decode", features.decode_excerpt)
    features.normalise_level = timed("level", features.normalise_level)
    features.mel_patches = timed("mel patches", features.mel_patches)
    features.frame_features = timed("frame features", features.frame_features)
    features.pool_patches = timed("pooling", features.pool_patches)
    embed = embeddings.MusicnnEmbedder.embed_patches

    def embed_patches(self: embeddings.MusicnnEmbedder, patches: Any) -> Any:
        return timed(f"musicnn {self.path.stem.split('_')[-1].upper()}", embed)(self, patches)

    embeddings.MusicnnEmbedder.embed_patches = embed_patches  # type: ignore[method-assign]
    model.MoodModel.predict = timed("model", model.MoodModel.predict)  # type: ignore[method-assign]
    tags.write_tags = timed("tags", tags.write_tags)
    modules = {"spectral": spectral, "constant_q": constant_q}
    for call in SEED_CALLS:
        owner, _, name = call.partition(".")
        module = modules[owner]
        if hasattr(module, name):  # older checkouts lack some (spectral_weights)
            setattr(module, name, timed(call, getattr(module, name)))


def forget_tunings() -> None:
    """Empty the per-process caches of filter banks that depend on the tuning estimate."""
    from mertag.tagger import constant_q, spectral

    for cache in ("_octave_filters", "_octave_kernel"):
        if hasattr(constant_q, cache):
            getattr(constant_q, cache).cache_clear()
    spectral.chroma_filters.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument(
        "--new-tunings", action="store_true", help="build the chromas' filters for each track"
    )
    args = parser.parse_args()

    from mertag.tagger.backends import warm_process
    from mertag.tagger.library import walk
    from mertag.tagger.model import model_path
    from mertag.tagger.pipeline import TrackWork, process_track

    warm_process()
    instrument()
    work = TrackWork(model_path=model_path(args.model))
    with tempfile.TemporaryDirectory(prefix="mertag-profile-") as tmp:
        for round_ in range(args.rounds + 1):
            lib = Path(tmp) / f"round{round_}"  # fresh copies: every round writes its tags
            shutil.copytree(args.folder, lib, ignore=shutil.ignore_patterns(".*"))
            for p in lib.rglob("*"):
                if p.is_file():
                    p.chmod(0o644)
            tracks = walk([lib]).tracks
            if round_ == 1:
                CPU.clear()  # the first round warmed sessions, caches and kernels
            for path in tracks:
                if args.new_tunings:
                    forget_tunings()
                st = path.stat()
                outcome = process_track(path, st.st_size, st.st_mtime_ns, work)
                if outcome.failed:
                    raise SystemExit(f"{path.name}: {outcome.error or outcome.tag_error}")
            shutil.rmtree(lib)
    n = args.rounds * len(tracks)
    total = sum(CPU.get(name, 0.0) for name in TOP)
    import mertag.tagger

    fresh = ", each track's tuning new" if args.new_tunings else ""
    print(f"{len(tracks)} tracks x {args.rounds} rounds{fresh}; CPU ms per track, share of it")
    print(f"  (mertag.tagger from {Path(mertag.tagger.__file__).parent})")
    print(f"  {'all of the track':<34} {1000 * total / n:7.1f}")
    for name in TOP:
        cpu = CPU.get(name, 0.0)
        print(f"  {name:<34} {1000 * cpu / n:7.1f}  {100 * cpu / total:5.1f} %")
    print("seed-feature calls inside 'frame features':")
    calls = sorted((k for k in CPU if k in SEED_CALLS), key=lambda k: -CPU[k])
    for name in calls:
        print(f"  {name:<34} {1000 * CPU[name] / n:7.1f}  {100 * CPU[name] / total:5.1f} %")


if __name__ == "__main__":
    main()
