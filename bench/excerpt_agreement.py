"""How often the excerpt policy's mood agrees with analysing the whole track.

    python bench/excerpt_agreement.py [--corpus DIR] [--clips N] [--model FILE]

For each real track of DIR (default ../shared/corpus) and N clips per quadrant of the 4Q set
(../shared/data/4q), it runs the shipped (or given) model on three analyses of the same file:
  - whole: every patch of the whole track, one sequence (`windows=[(0.0, None)]`);
  - policy: what `mertag scan` analyses (`mertag.tagger.features.excerpt_windows`);
  - snippets: the policy's long-track branch (SNIPPETS one-patch snippets) on any length, so
    that the 4Q clips, which the policy itself analyses whole, test it too;
  - previous: the policy before one-patch snippets: 30-s excerpts (one centred up to 90 s,
    three at 1/4, 1/2, 3/4 beyond; whole up to 45 s), probabilities averaged over them.
It prints each track's quadrant under each, then the agreement with whole and the mean total
variation distance between the probability vectors. The 4Q clips (<= 30.2 s) are analysed whole
by the policy, as in training, so 'policy' agrees there by construction; 'snippets' does not.
For the 4Q clips it also prints the accuracy against their labels (the shipped model was trained
on these clips, so the absolute level flatters it; the gap between columns is what counts).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mertag.tagger.audio import probe  # noqa: E402
from mertag.tagger.features import extract_track, snippet_windows  # noqa: E402
from mertag.tagger.library import walk  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.tagger.mood import QUADRANTS  # noqa: E402
from mertag.tagger.pipeline import track_features  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def previous_windows(duration: float) -> list[tuple[float, float | None]]:
    """The 30-s excerpt policy this one replaced."""
    if duration <= 45.0:
        return [(0.0, None)]
    centres = [0.5] if duration <= 90.0 else [0.25, 0.5, 0.75]
    return [(min(max(0.0, c * duration - 15.0), duration - 30.0), 30.0) for c in centres]


def analyses(path: Path, model: MoodModel) -> dict[str, np.ndarray]:
    duration = probe(path).duration or 0.0
    cols = model.columns
    whole = extract_track(path, windows=[(0.0, None)], columns=cols).sequences
    policy, chosen = track_features(path, model)  # as a scan does, snippet model included
    snippets = extract_track(path, windows=snippet_windows(duration), columns=cols).sequences
    previous = [
        extract_track(path, windows=[w], columns=cols).sequences[0]
        for w in previous_windows(duration)
    ]
    return {
        "whole": model.track_probabilities(whole),
        "policy": chosen.track_probabilities(policy.sequences),
        "snippets": model.track_probabilities(snippets),
        "previous": model.track_probabilities(previous),
    }


def accuracy(results: list[dict[str, np.ndarray]], labels: list, name: str) -> float:
    hits = [QUADRANTS[int(np.argmax(r[name]))] == y for r, y in zip(results, labels, strict=True)]
    return float(np.mean(hits))


def four_q_clips(per_quadrant: int) -> list[tuple[Path, str]]:
    labels = SHARED / "data" / "4q" / "labels.csv"
    if per_quadrant <= 0 or not labels.is_file():
        return []
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    picked = []
    for quadrant in QUADRANTS:
        rows_q = [r for r in rows if r["quadrant"] == quadrant]
        step = max(1, len(rows_q) // per_quadrant)
        picked += [(labels.parent / r["file"], quadrant) for r in rows_q[::step][:per_quadrant]]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--clips", type=int, default=5, help="4Q clips per quadrant")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    model = MoodModel(args.model)
    print(f"model {model.model_id}")
    groups = {
        "corpus": [(p, None) for p in walk([args.corpus]).tracks],
        "4Q clips": four_q_clips(args.clips),
    }
    for group, tracks in groups.items():
        if not tracks:
            continue
        results = []
        print(f"\n{group}: {len(tracks)} tracks")
        print(f"  {'track':<34} {'length':>7}  whole  policy snippets previous")
        for path, label in tracks:
            probs = analyses(path, model)
            results.append(probs)
            q = {k: QUADRANTS[int(np.argmax(v))] for k, v in probs.items()}
            shown = f"{path.name[:34]:<34} {probe(path).duration or 0:6.0f}s"
            tail = f"  (label {label})" if label else ""
            cols = f"{q['whole']:>5}  {q['policy']:>6} {q['snippets']:>8} {q['previous']:>8}"
            print(f"  {shown}  {cols}{tail}")
        labels = [label for _, label in tracks]
        for name in ("policy", "snippets", "previous"):
            agree = np.mean([np.argmax(r[name]) == np.argmax(r["whole"]) for r in results])
            tv = np.mean([np.abs(r[name] - r["whole"]).sum() / 2 for r in results])
            line = f"  {name:<8} agrees with whole: {agree:6.1%}; mean TV distance {tv:.3f}"
            if all(labels):
                line += f"; accuracy {accuracy(results, labels, name):6.1%}"
                line += f" (whole {accuracy(results, labels, 'whole'):6.1%})"
            print(line)


if __name__ == "__main__":
    main()
