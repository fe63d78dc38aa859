"""Low-rank timbral filters (mertag.trainer.musicnn_lowrank) against the exact musicnn networks.

    python bench/lowrank_check.py rank OUT_DIR [--mtt-weights MTT.npz] [--every 18]
    python bench/lowrank_check.py oof MSD.onnx MTT.onnx OUT.npz [--part K/N] [--folds DIR]
    python bench/lowrank_check.py f1 OUT.npz [OUT.npz ...] [--folds DIR]
    python bench/lowrank_check.py corpus MSD.onnx MTT.onnx [FOLDER]
    python bench/lowrank_check.py cpu MSD.onnx MTT.onnx [--patches N] [--rounds R]

`rank` exports each network at ranks 1..4 into OUT_DIR and, on the log-mel patches of every
18th clip of the 4Q labels (40 clips; MSD's weights from ../shared, MTT's from the `.npz` the
model card's Reproduce section writes, read whole and level-normalised as a scan reads them),
prints per rank the worst column's RMS difference from the shipped (exact) network in units of
that column's standard deviation (the 250 columns embed_patches returns); the chosen rank is
the smallest whose worst column is within 2 %. `oof` analyses the clean 4Q clips as
bench/robustness.py does (whole, by the fold model that held each clip out, for the fold models
of both shipped models, DIR/folds_default and DIR/folds_fast as `mertag train --fold-models`
wrote them) once with the exact networks and once with the given ones, and saves the
probabilities; `f1` pools the saved parts into macro-F1 over all clips, beside the stored
out-of-fold one (folds.json, calibrated alike). `corpus` compares both shipped models'
probabilities on copies of the corpus tracks (`analyse_track`, the scan's policy). `cpu` times
each network per patch, exact and approximated alternating in one process (CPU time, one
thread, the tagger's options). The approximated networks replace the exact ones through the
process's embedder table (`mertag.tagger.features._EMBEDDERS`), so everything else runs the
scan's own code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from robustness import WHOLE, FoldModels  # noqa: E402

from mertag.tagger import features  # noqa: E402
from mertag.tagger.calibration import temperature_scale  # noqa: E402
from mertag.tagger.embeddings import (  # noqa: E402
    FRONTENDS,
    NETWORK_DIM,
    MusicnnEmbedder,
    frontend_path,
    mel_patches,
)
from mertag.tagger.loudness import normalise_level  # noqa: E402
from mertag.trainer.dataset import load_dataset  # noqa: E402
from mertag.trainer.metrics import score  # noqa: E402

SHARED = Path(os.environ.get("MERTAG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
LABELS = SHARED / "data/4q/labels.csv"
FOLDS = {
    "default": Path("folds_default"),
    "fast": Path("folds_fast"),
}
WEIGHTS = {
    "musicnn-msd": SHARED / "models/musicnn/MSD_musicnn_weights.npz",
    "musicnn-mtt": Path("MTT.npz"),
}
RANKS = (1, 2, 3, 4)
TOLERANCE = 0.02
"""The pre-registered bound: each column's RMS difference <= 2 % of its standard deviation."""


def use_networks(paths: list[Path] | None) -> None:
    """Make the scan's code use these ONNX files for the networks (None: the shipped ones)."""
    features._EMBEDDERS.clear()
    for name, path in zip(FRONTENDS, paths or [frontend_path(n) for n in FRONTENDS], strict=True):
        features._EMBEDDERS[name] = MusicnnEmbedder(path, threads=1)


def column_errors(exact: np.ndarray, approx: np.ndarray) -> np.ndarray:
    """Each column's RMS difference over the rows, in units of the exact column's std."""
    rms = np.sqrt(np.mean((approx.astype(np.float64) - exact) ** 2, axis=0))
    std = exact.astype(np.float64).std(axis=0)
    return np.where(rms == 0, 0.0, rms / np.where(std == 0, np.inf, std))


def rank_patches(every: int) -> np.ndarray:
    clips = load_dataset(LABELS).clips[::every]
    patches = []
    for clip in clips:
        y, _ = features.decode_excerpt(clip.path, WHOLE)
        patches.append(mel_patches(normalise_level(y)))
    print(
        f"{len(clips)} clips (every {every}th of {LABELS.name}), {sum(map(len, patches))} patches"
    )
    return np.concatenate(patches)


def cmd_rank(args: argparse.Namespace) -> None:
    from mertag.trainer.musicnn_lowrank import export_lowrank_onnx

    patches = rank_patches(args.every)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, frontend in zip(FRONTENDS, ("musicnn-msd", "musicnn-mtt"), strict=True):
        exact = MusicnnEmbedder(frontend_path(name)).embed_patches(patches)
        chosen = None
        for rank in RANKS:
            out = args.out_dir / f"{Path(name).stem}_r{rank}.onnx"
            if not out.exists():
                export_lowrank_onnx(WEIGHTS[frontend], out, frontend, rank)
            err = column_errors(exact, MusicnnEmbedder(out).embed_patches(patches))
            worst = int(err.argmax())
            part = "penultimate" if worst < 200 else "tag"
            print(
                f"{frontend} rank {rank}: worst column {worst} ({part}) {100 * err.max():.2f} % "
                f"of its std; penultimate max {100 * err[:200].max():.2f} %, tags max "
                f"{100 * err[200:].max():.2f} %, median {100 * np.median(err):.2f} %",
                flush=True,
            )
            if chosen is None and err.max() <= TOLERANCE:
                chosen = rank
        print(f"{frontend}: chosen rank {chosen} (smallest of {RANKS} within {TOLERANCE:.0%})")


def cmd_oof(args: argparse.Namespace) -> None:
    fold_models = {name: FoldModels(folder) for name, folder in FOLDS.items()}
    clips = fold_models["default"].folds["clips"]
    assert fold_models["fast"].folds["clips"] == clips
    by_name = {c.name: c for c in load_dataset(LABELS).clips}
    k, n = (int(v) for v in args.part.split("/"))
    mine = np.arange(len(clips))[k::n]
    exact = {m: np.zeros((len(mine), 4)) for m in FOLDS}
    approx = {m: np.zeros((len(mine), 4)) for m in FOLDS}
    lo = features.LIBROSA_DIM
    t0 = time.time()
    for j, i in enumerate(mine):
        path = by_name[clips[i]].path
        use_networks(None)
        seq = features.extract_track(path, windows=WHOLE).sequences[0]
        use_networks([args.msd, args.mtt])
        nets = features.extract_track(path, windows=WHOLE, columns=(lo, features.FEATURE_DIM))
        seq_approx = seq.copy()
        seq_approx[:, lo:] = nets.sequences[0][:, lo:]
        for m, fm in fold_models.items():
            exact[m][j] = fm.probabilities([seq], int(i))
            approx[m][j] = fm.probabilities([seq_approx], int(i))
        if (j + 1) % 20 == 0:
            print(f"{j + 1}/{len(mine)} clips, {time.time() - t0:.0f} s", flush=True)
    arrays: dict[str, Any] = {"index": mine}
    arrays.update({f"exact_{m}": v for m, v in exact.items()})
    arrays.update({f"approx_{m}": v for m, v in approx.items()})
    np.savez(args.out, **arrays)
    print(f"wrote {args.out}")


def cmd_f1(args: argparse.Namespace) -> None:
    parts = [np.load(p) for p in args.parts]
    index = np.concatenate([p["index"] for p in parts])
    for m, folder in FOLDS.items():
        fm = FoldModels(folder)
        labels = fm.labels[index]
        # folds.json keeps the raw probabilities; `oof` saved them calibrated (argmax alike).
        raw = np.asarray(fm.folds["oof_probabilities"])[index]
        stored = np.stack([temperature_scale(r, fm.temperature) for r in raw])
        ex = np.concatenate([p[f"exact_{m}"] for p in parts])
        ap = np.concatenate([p[f"approx_{m}"] for p in parts])
        f_stored = score(labels, stored.argmax(axis=1)).macro_f1
        f_exact = score(labels, ex.argmax(axis=1)).macro_f1
        f_approx = score(labels, ap.argmax(axis=1)).macro_f1
        agree = np.mean(ex.argmax(axis=1) == ap.argmax(axis=1))
        print(
            f"{m}: {len(index)} clips; macro-F1 stored OOF {f_stored:.4f}, exact networks "
            f"{f_exact:.4f}, approximated {f_approx:.4f} (diff {f_approx - f_exact:+.4f}); "
            f"quadrant agreement {agree:.4f}; max |dp| {np.abs(ap - ex).max():.4f}, "
            f"exact vs stored max |dp| {np.abs(ex - stored).max():.4f}"
        )


def cmd_corpus(args: argparse.Namespace) -> None:
    from mertag.tagger.model import MoodModel, model_path
    from mertag.tagger.pipeline import analyse_track

    models = {"default": MoodModel(model_path(None))}
    models["fast"] = MoodModel(model_path(None).with_name("mertag_4q_fast.onnx"))
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="mertag-lowrank-") as tmp:
        tracks = []
        for f in sorted(args.folder.iterdir()):
            if f.is_file() and f.suffix != ".md":
                tracks.append(Path(shutil.copy2(f, Path(tmp) / f.name)))
        for path in tracks:
            for m, model in models.items():
                got = []
                for nets in (None, [args.msd, args.mtt]):
                    use_networks(nets)
                    got.append(np.asarray(analyse_track(path, model).probabilities))
                d = float(np.abs(got[1] - got[0]).max())
                worst = max(worst, d)
                print(
                    f"{path.name:<34} {m:<8} exact {np.round(got[0], 3)} approx "
                    f"{np.round(got[1], 3)} max |dp| {d:.4f}",
                    flush=True,
                )
    print(f"largest |dp| over tracks and models: {worst:.4f}")


def cmd_cpu(args: argparse.Namespace) -> None:
    patches = mel_patches(
        normalise_level(
            features.decode_excerpt(sorted(LABELS.parent.glob("Q1/*.mp3"))[0], WHOLE)[0]
        )
    )[:1]
    sessions = {}
    for name, approx in zip(FRONTENDS, (args.msd, args.mtt), strict=True):
        sessions[f"{name} exact"] = MusicnnEmbedder(frontend_path(name))
        sessions[f"{name} approx"] = MusicnnEmbedder(approx)
    cpu: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(5):
            s.embed_patches(patches)
    for _ in range(args.rounds):
        for k, s in sessions.items():  # alternate so both see the same load
            t0 = time.process_time()
            for _ in range(args.patches):
                s.embed_patches(patches)
            cpu[k].append(1000 * (time.process_time() - t0) / args.patches)
    print(f"CPU ms per patch, median of {args.rounds} rounds of {args.patches} patches (min)")
    for name in FRONTENDS:
        e, a = np.median(cpu[f"{name} exact"]), np.median(cpu[f"{name} approx"])
        print(
            f"  {name:<18} exact {e:6.2f} ({min(cpu[f'{name} exact']):.2f})  approx {a:6.2f} "
            f"({min(cpu[f'{name} approx']):.2f})  change {100 * (a - e) / e:+.1f} %"
        )
    assert NETWORK_DIM == 250


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rank")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--every", type=int, default=18)
    p.add_argument("--mtt-weights", type=Path, default=WEIGHTS["musicnn-mtt"])
    for name in ("oof", "corpus", "cpu"):
        p = sub.add_parser(name)
        if name == "oof":
            p.add_argument(
                "--folds", type=Path, default=Path("."), help="holds folds_default/_fast"
            )
        p.add_argument("msd", type=Path)
        p.add_argument("mtt", type=Path)
        if name == "oof":
            p.add_argument("out", type=Path)
            p.add_argument("--part", default="0/1")
        if name == "corpus":
            p.add_argument("folder", type=Path, nargs="?", default=SHARED / "corpus")
        if name == "cpu":
            p.add_argument("--patches", type=int, default=30)
            p.add_argument("--rounds", type=int, default=7)
    p = sub.add_parser("f1")
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("--folds", type=Path, default=Path("."), help="holds folds_default/_fast")
    args = parser.parse_args()
    if args.command == "rank":
        WEIGHTS["musicnn-mtt"] = args.mtt_weights
    if args.command in ("oof", "f1"):
        for m in FOLDS:
            FOLDS[m] = args.folds / FOLDS[m].name
    {"rank": cmd_rank, "oof": cmd_oof, "f1": cmd_f1, "corpus": cmd_corpus, "cpu": cmd_cpu}[
        args.command
    ](args)


if __name__ == "__main__":
    main()
