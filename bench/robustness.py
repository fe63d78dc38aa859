"""Does the mood survive what libraries do to audio? Out of fold, on the 4Q clips.

    python bench/robustness.py FOLD_MODELS [LABELS] [--clips N] [--seed S] [--only a,b]

FOLD_MODELS is the folder `mertag train ... --fold-models DIR` wrote: one model per
cross-validation fold (retrained without that fold's clips) and `folds.json` (which clips each
fold held out, the calibration, the out-of-fold probabilities). Each clip (all of them, or N
drawn evenly over the quadrants with --clips) is written again as a real file under each
perturbation and analysed as `mertag scan` analyses a file (`extract_track`, the whole clip),
by the model of the fold that held it out, calibrated with the shipped temperature:

- gain -20 / -12 / +6 dB (32-bit float WAV, so +6 dB does not clip: a playback gain);
- MP3 128k, AAC 128k, Opus 64k (encoded by FFmpeg through PyAV from the decoded clip);
- 22.05 kHz and 8 kHz (resampled by FFmpeg, written as float WAV);
- mono (the channels averaged) and 5.1 (L and R in front, 0.707 x their mean in the centre,
  half of each in the surrounds, silent LFE), as float WAV.

It prints, per perturbation, how often the quadrant agrees with the unperturbed clip's, the
largest and mean change of any probability, and macro-F1 on the clips; then the artist-grouped
and genre-family-grouped out-of-fold scores from folds.json (the genre shortcut).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mertag.tagger.calibration import temperature_scale  # noqa: E402
from mertag.tagger.features import extract_track  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.trainer.codec import write_audio  # noqa: E402
from mertag.trainer.dataset import load_dataset  # noqa: E402
from mertag.trainer.metrics import score  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
WHOLE = [(0.0, None)]  # the 4Q clips are analysed whole, as a scan analyses clips up to 45 s

# name -> (codec, bitrate, rate, gain in dB, layout)
PERTURBATIONS: dict[str, tuple[str, int | None, int | None, float, str]] = {
    "gain -20 dB": ("wav32", None, None, -20.0, "same"),
    "gain -12 dB": ("wav32", None, None, -12.0, "same"),
    "gain +6 dB": ("wav32", None, None, 6.0, "same"),
    "MP3 128k": ("mp3", 128_000, None, 0.0, "same"),
    "AAC 128k": ("aac", 128_000, None, 0.0, "same"),
    "Opus 64k": ("opus", 64_000, 48_000, 0.0, "same"),
    "22.05 kHz": ("wav32", None, 22_050, 0.0, "same"),
    "8 kHz": ("wav32", None, 8_000, 0.0, "same"),
    "mono": ("wav32", None, None, 0.0, "mono"),
    "5.1": ("wav32", None, None, 0.0, "5.1"),
}


def decode_native(path: Path) -> tuple[np.ndarray, int]:
    """A file's audio as (channels, samples) float32 at its own rate (stereo at most here)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = min(2, stream.codec_context.channels)
        layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        pieces = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        pieces += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(pieces, axis=1).astype(np.float32), rate


def remix(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "same":
        return x
    stereo = x if x.shape[0] == 2 else np.vstack([x, x])
    mid = stereo.mean(axis=0)
    if layout == "mono":
        return mid[np.newaxis]
    left, right = stereo
    silent = np.zeros_like(mid)
    # FFmpeg's 5.1 order: FL FR FC LFE BL BR
    return np.vstack([left, right, 0.707 * mid, silent, 0.5 * left, 0.5 * right])


def perturbed_file(x: np.ndarray, sr: int, name: str, folder: Path) -> Path:
    codec, bitrate, rate, gain, layout = PERTURBATIONS[name]
    y = remix(x, layout) * np.float32(10.0 ** (gain / 20.0))
    path = folder / (
        "clip" + {"wav32": ".wav", "mp3": ".mp3", "aac": ".m4a", "opus": ".opus"}[codec]
    )
    return write_audio(path, y, sr, codec, bitrate, rate)


def pick_clips(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """All clip indices, or n of them drawn evenly over the quadrants."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per = [rng.permutation(np.flatnonzero(labels == q)) for q in range(4)]
    picked = [int(per[i % 4][i // 4]) for i in range(n)]
    return np.sort(np.array(picked))


class FoldModels:
    """The fold models of a `--fold-models` folder and its folds.json: each clip is analysed by
    the model of the fold that held it out, calibrated with the shipped temperature."""

    def __init__(self, folder: Path) -> None:
        self.folds = json.loads((folder / "folds.json").read_text(encoding="utf-8"))
        self.temperature = float((self.folds.get("calibration") or {}).get("temperature", 1.0))
        self.labels = np.asarray(self.folds["labels"])
        self.fold_of = np.empty(len(self.labels), dtype=np.int64)
        for k, test in enumerate(self.folds["test_folds"]):
            self.fold_of[test] = k
        self.models = [
            MoodModel(folder / f"fold{k}.onnx") for k in range(len(self.folds["test_folds"]))
        ]

    def model_of(self, i: int) -> MoodModel:
        """The model of the fold that held clip `i` out."""
        return self.models[self.fold_of[i]]

    def probabilities(self, sequences: list[np.ndarray], i: int) -> np.ndarray:
        """Clip `i`'s calibrated probabilities from its feature sequences, out of fold."""
        raw = self.model_of(i).raw_probabilities(sequences).mean(axis=0)
        return temperature_scale(raw, self.temperature)

    def analyse(self, path: Path, i: int) -> np.ndarray:
        """Clip `i` read from `path` whole, as a scan analyses a clip, out of fold."""
        seq = extract_track(path, windows=WHOLE, columns=self.model_of(i).columns).sequences
        return self.probabilities(seq, i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fold_models", type=Path)
    parser.add_argument("labels", type=Path, nargs="?", default=SHARED / "data/4q/labels.csv")
    parser.add_argument("--clips", type=int, default=None, help="a subset of N clips")
    parser.add_argument("--seed", type=int, default=0, help="which subset")
    parser.add_argument("--only", default="", help="comma-separated perturbation names")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    fold_models = FoldModels(args.fold_models)
    folds, labels, temperature = fold_models.folds, fold_models.labels, fold_models.temperature
    analyse = fold_models.analyse
    names = list(PERTURBATIONS) if not args.only else args.only.split(",")
    clips_by_name = {c.name: c for c in load_dataset(args.labels).clips}
    chosen = pick_clips(labels, args.clips, args.seed)

    base = np.zeros((len(chosen), 4))
    got = {n: np.zeros((len(chosen), 4)) for n in names}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="mertag-robust-") as tmp:
        for j, i in enumerate(chosen):
            clip = clips_by_name[folds["clips"][i]]
            base[j] = analyse(clip.path, int(i))
            x, sr = decode_native(clip.path)
            for n in names:
                got[n][j] = analyse(perturbed_file(x, sr, n, Path(tmp)), int(i))
            if (j + 1) % 10 == 0:
                print(f"{j + 1}/{len(chosen)} clips, {time.time() - t0:.0f} s", file=sys.stderr)

    truth = labels[chosen]
    print(f"{len(chosen)} clips (seed {args.seed}), out of fold, temperature {temperature:.3f}")
    print(f"{'perturbation':<14}{'agree':>7}{'max |dp|':>10}{'mean |dp|':>11}{'macro-F1':>10}")
    s = score(truth, base.argmax(axis=1))
    print(f"{'(none)':<14}{'':>7}{'':>10}{'':>11}{s.macro_f1:>10.3f}")
    results = {"clips": len(chosen), "seed": args.seed, "none_macro_f1": s.macro_f1, "rows": {}}
    for n in names:
        agree = float(np.mean(got[n].argmax(axis=1) == base.argmax(axis=1)))
        delta = np.abs(got[n] - base)
        f1 = score(truth, got[n].argmax(axis=1)).macro_f1
        print(f"{n:<14}{agree:>7.3f}{delta.max():>10.3f}{delta.mean():>11.4f}{f1:>10.3f}")
        results["rows"][n] = {
            "agree": agree,
            "max_dp": float(delta.max()),
            "mean_dp": float(delta.mean()),
            "macro_f1": f1,
        }
    oof = np.asarray(folds["oof_probabilities"])
    artist = score(labels, oof.argmax(axis=1)).macro_f1
    line = f"\nall {len(labels)} clips out of fold, macro-F1: artist-grouped folds {artist:.3f}"
    if folds.get("genre_oof_probabilities") is not None:
        genre = score(labels, np.asarray(folds["genre_oof_probabilities"]).argmax(axis=1))
        line += f", genre-family-grouped folds {genre.macro_f1:.3f}"
        results["genre_macro_f1"] = genre.macro_f1
    results["artist_macro_f1"] = artist
    print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
