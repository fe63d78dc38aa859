"""What the excerpt policy's snippets cost, out of fold: few patches against the whole clip.

    python bench/snippet_cv.py [LABELS] [--fold-seed S] [--features SET] [--counts 2,3,4,5,6,8]
        [--runs 3x2,2x3]

A track longer than the training clips is heard as SNIPPETS one-patch snippets
(`mertag.tagger.features.snippet_windows`). The shipped model cannot be asked how well that works on
the clips it was trained on, so this retrains the shipped configuration per fold (artist-grouped
5-fold CV, as `mertag train`), and predicts every held-out clip twice: from all its patches, as
`mertag scan` analyses a clip of that length, and from only the patches that the snippet windows
of a track of the clip's length would pick (for each count in --counts). It prints macro-F1 and
accuracy for each, how often the snippet prediction agrees with the whole-clip one, and the
whole-clip scores per class with their confusion matrix. Needs the
`train` extra (torch) and the features cached by `mertag train` (else it extracts them first).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mertag.tagger.features import FEATURE_SETS, MIN_SECONDS, SNIPPETS, snippet_windows  # noqa: E402
from mertag.trainer.augment import AUGMENTATIONS  # noqa: E402
from mertag.trainer.cache import default_cache_dir  # noqa: E402
from mertag.trainer.compare import fold_seed  # noqa: E402
from mertag.trainer.dataset import load_dataset  # noqa: E402
from mertag.trainer.ensemble import fit_model  # noqa: E402
from mertag.trainer.extract import extract_clips  # noqa: E402
from mertag.trainer.fit import FitConfig, head_targets, predict_net  # noqa: E402
from mertag.trainer.folds import make_folds  # noqa: E402
from mertag.trainer.metrics import format_scores, score  # noqa: E402
from mertag.trainer.table import build_table  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def run_patches(n_patches: int, count: int, length: int) -> list[int]:
    """The patches of `count` runs of `length` consecutive patches centred at (i + 1/2) / count
    of an n-patch clip: snippets of several patches each, for the same patch budget."""
    picked: set[int] = set()
    for i in range(count):
        first = round((i + 0.5) * n_patches / count - length / 2)
        first = min(max(first, 0), max(n_patches - length, 0))
        picked.update(range(first, min(first + length, n_patches)))
    return sorted(picked)


def snippet_patches(n_patches: int, count: int) -> list[int]:
    """The patches of an n-patch clip nearest the windows `count` snippets would read."""
    windows = snippet_windows(n_patches * MIN_SECONDS, count)  # MIN_SECONDS: one patch
    picked = {min(n_patches - 1, round(offset / MIN_SECONDS)) for offset, _ in windows}
    return sorted(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path, nargs="?", default=SHARED / "data/4q/labels.csv")
    parser.add_argument("--fold-seed", type=int, default=0)
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default="both")
    parser.add_argument("--counts", default="2,3,4,5,6,8")
    parser.add_argument(
        "--runs", default="", help="also COUNTxLENGTH runs of consecutive patches, e.g. 3x2,2x3"
    )
    parser.add_argument("--jobs", type=int, default=2, help="for feature extraction only")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    runs = [tuple(int(x) for x in r.split("x")) for r in args.runs.split(",") if r]

    dataset = load_dataset(args.labels)
    extraction = extract_clips(dataset.clips, default_cache_dir(), AUGMENTATIONS, args.jobs, False)
    table = build_table(extraction)
    config = FitConfig(seed=args.fold_seed, features=args.features)
    whole = np.full(table.n_clips, -1)
    picked = {c: np.full(table.n_clips, -1) for c in counts}
    in_runs = {r: np.full(table.n_clips, -1) for r in runs}
    splits = make_folds(table.labels, table.groups, 5, args.fold_seed)
    for k, (train, test) in enumerate(splits):
        rows = table.rows(train, augmented=True)
        net = fit_model(
            table.sequences(rows),
            table.labels[table.clip[rows]],
            replace(config, seed=fold_seed(args.fold_seed, k)),
            **head_targets(table, train, rows, config),  # as `mertag train`
        )
        held_out = table.rows(test, augmented=False)  # one clean sequence per held-out clip
        clips = table.clip[held_out]
        sequences = table.sequences(held_out)
        whole[clips] = predict_net(net, sequences).argmax(axis=1)
        for c in counts:
            cut = [s[snippet_patches(len(s), c)] for s in sequences]
            picked[c][clips] = predict_net(net, cut).argmax(axis=1)
        for r in runs:
            cut = [s[run_patches(len(s), *r)] for s in sequences]
            in_runs[r][clips] = predict_net(net, cut).argmax(axis=1)
        print(f"fold {k + 1}/{len(splits)} done", file=sys.stderr, flush=True)

    print(
        f"{table.n_clips} clips, fold seed {args.fold_seed}, shipped configuration per fold"
        f" on {args.features!r} features"
    )
    print(f"{'analysed':<22} {'macro-F1':>8} {'accuracy':>8} {'agrees with whole':>18}")
    s = score(table.labels, whole)
    print(f"{'whole clip':<22} {s.macro_f1:8.3f} {s.accuracy:8.3f} {'':>18}")
    for c in counts:
        s = score(table.labels, picked[c])
        mark = "  <- SNIPPETS" if c == SNIPPETS else ""
        agree = float(np.mean(picked[c] == whole))
        print(f"{f'{c} snippets':<22} {s.macro_f1:8.3f} {s.accuracy:8.3f} {agree:18.3f}{mark}")
    for (count, length), predicted in in_runs.items():
        s = score(table.labels, predicted)
        agree = float(np.mean(predicted == whole))
        label = f"{count} runs of {length}"
        print(f"{label:<22} {s.macro_f1:8.3f} {s.accuracy:8.3f} {agree:18.3f}")
    print("\nwhole clip, out of fold:")
    print(format_scores(score(table.labels, whole)))


if __name__ == "__main__":
    main()
