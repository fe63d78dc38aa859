"""Valence and arousal out of fold: the regression head against the calibrated expectations.

    python bench/va_head.py [FOLD_MODELS] [--corpus DIR --model A.onnx --model B.onnx ...]

FOLD_MODELS is the folder `mertag train ... --va-weight W --fold-models DIR` wrote; its
`folds.json` holds every clip's out-of-fold probabilities, the head's out-of-fold (valence,
arousal) and each clip's graded target (its mood words' mean position, the positions learnt
from the clip's training folds only; mertag.trainer.valence_arousal). Printed, over the clips
that have a target:

- Spearman and Pearson of predicted valence and arousal against the targets, for the head and
  for the same run's corner expectations of the calibrated probabilities (each fold's clips
  scaled by the temperature fitted on the other folds, as `calibration_report` cross-fits);
- the spread of each (shares of |v|, |a| above 0.9 and below 0.3, standard deviations), as the
  model card's table, and the target's own spread;
- the run's quadrant macro-F1 pooled over all clips.

With --corpus, each audio file there is analysed by each --model, and the tracks are listed by
that model's arousal (highest first): as `mertag scan` does (snippet tracks by the companion) for
a model without the head; by the model itself on every track for one with the head (its
companion has no head).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mertag.tagger.calibration import temperature_scale  # noqa: E402
from mertag.tagger.mood import CORNERS, QUADRANTS  # noqa: E402
from mertag.trainer.calibrate import fit_temperature  # noqa: E402
from mertag.trainer.metrics import score  # noqa: E402

_CORNER = np.array([CORNERS[q] for q in QUADRANTS])


def _array(rows: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def cross_fitted(probabilities: np.ndarray, labels: np.ndarray, test_folds: list) -> np.ndarray:
    """Each fold's probabilities scaled by the temperature fitted on the other folds' clips."""
    out = np.empty_like(probabilities)
    every = np.arange(len(labels))
    for test in test_folds:
        train = np.setdiff1d(every, test)
        out[test] = temperature_scale(
            probabilities[test], fit_temperature(probabilities[train], labels[train])
        )
    return out


def spread(va: np.ndarray) -> dict[str, float]:
    v, a = np.abs(va[:, 0]), np.abs(va[:, 1])
    return {
        "|v|>0.9": float(np.mean(v > 0.9)),
        "|a|>0.9": float(np.mean(a > 0.9)),
        "|v|<0.3": float(np.mean(v < 0.3)),
        "|a|<0.3": float(np.mean(a < 0.3)),
        "sd v": float(va[:, 0].std()),
        "sd a": float(va[:, 1].std()),
    }


def correlations(va: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    out = {}
    for j, name in enumerate(("valence", "arousal")):
        out[f"spearman {name}"] = float(spearmanr(va[:, j], targets[:, j]).statistic)
        out[f"pearson {name}"] = float(pearsonr(va[:, j], targets[:, j]).statistic)
    return out


def oof_report(folder: Path) -> dict:
    data = json.loads((folder / "folds.json").read_text())
    labels = np.array(data["labels"])
    probabilities = np.array(data["oof_probabilities"])
    head = _array(data["oof_valence_arousal"])
    targets = _array(data["oof_va_targets"])
    calibrated = cross_fitted(probabilities, labels, data["test_folds"])
    expectations = calibrated @ _CORNER
    known = ~np.isnan(targets[:, 0])
    report = {
        "clips": len(labels),
        "clips_with_target": int(known.sum()),
        "macro_f1_pooled": score(labels, probabilities.argmax(axis=1)).macro_f1,
        "head": {**correlations(head[known], targets[known]), **spread(head)},
        "calibrated_expectations": {
            **correlations(expectations[known], targets[known]),
            **spread(expectations),
        },
        "targets": spread(targets[known]),
    }
    if data.get("calibration"):  # the model card's table: one temperature for all clips
        in_sample = temperature_scale(probabilities, data["calibration"]["temperature"]) @ _CORNER
        report["calibrated_expectations_in_sample"] = {
            **correlations(in_sample[known], targets[known]),
            **spread(in_sample),
        }
    return report


def corpus_order(
    corpus: Path, models: list[Path]
) -> dict[str, list[tuple[str, float, float, str]]]:
    """Per model: (track, arousal, valence, quadrant) for each audio file, highest arousal first."""
    from mertag.tagger.features import extract_track
    from mertag.tagger.library import AUDIO_EXTENSIONS
    from mertag.tagger.model import MoodModel
    from mertag.tagger.pipeline import track_features

    tracks = sorted(p for p in corpus.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    out = {}
    for path in models:
        model = MoodModel(path)
        rows = []
        for track in tracks:
            if model.info.valence_arousal:  # its own head on every track, snippets too
                features = extract_track(
                    track, columns=model.columns, snippet_columns=model.columns
                )
                chosen = model
            else:  # as a scan: snippet tracks go to the companion
                features, chosen = track_features(track, model)
            p = chosen.predict(features.sequences)
            corner = np.asarray(p.probabilities) @ _CORNER  # the corner expectations
            rows.append(
                (
                    track.name,
                    p.arousal,
                    p.valence,
                    float(corner[1]),
                    f"{p.quadrant} by {chosen.model_id}",
                )
            )
        out[f"{path.name} ({model.model_id})"] = sorted(rows, key=lambda r: -r[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fold_models", type=Path, nargs="?")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--model", type=Path, action="append", default=[])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    report = oof_report(args.fold_models) if args.fold_models is not None else {}
    if args.corpus is not None:
        report["corpus"] = corpus_order(args.corpus, args.model)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
