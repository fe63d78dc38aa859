"""Calibration fitted out of fold: temperature scaling and the uncertain threshold.

The cross-validation gives every clip a probability from a model that never saw it. A
temperature is fitted on those (`fit_temperature`, minimum NLL), and the threshold below which a
prediction is marked uncertain is read off the calibrated curve (`uncertain_threshold`). The
scores reported for the calibration are cross-fitted (`calibration_report`): each fold's clips
are scaled with a temperature fitted on the other folds, so the one fitted parameter does not
flatter them. The runtime applies the result (`mertag.tagger.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mertag.tagger.calibration import temperature_scale
from mertag.trainer.metrics import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    score,
)

TARGET_ACCURACY = 0.85
"""Out-of-fold accuracy that the predictions kept as certain (confidence >= the threshold) must
reach: a written MOOD word is then right at least 85 % of the time on clips like the training
ones (pre-registered; the model card gives the coverage it costs)."""
ECE_BINS = 10


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(log p / T) (bounded search over log T)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        return negative_log_likelihood(
            temperature_scale(probabilities, float(np.exp(log_t))), labels
        )

    found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def uncertain_threshold(
    probabilities: np.ndarray, labels: np.ndarray, target: float = TARGET_ACCURACY
) -> float:
    """The smallest t on a 0.01 grid at which the clips with confidence >= t are right at
    least `target` of the time (1.0 when no t reaches it)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    for t in np.round(np.arange(0.0, 1.0, 0.01), 2):
        kept = confidence >= t
        if kept.any() and correct[kept].mean() >= target:
            return float(t)
    return 1.0


def _scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(probabilities, labels, ECE_BINS),
        "nll": negative_log_likelihood(probabilities, labels),
        "brier": brier_score(probabilities, labels),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
    }


def calibration_report(
    probabilities: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    target: float = TARGET_ACCURACY,
) -> dict:
    """The `calibration` metadata of a model: temperature and threshold fitted on all the
    out-of-fold probabilities, and raw / cross-fitted scores (JSON-able)."""
    temperature = fit_temperature(probabilities, labels)
    crossed = np.empty_like(probabilities)
    for train, test in folds:
        t = fit_temperature(probabilities[train], labels[train])
        crossed[test] = temperature_scale(probabilities[test], t)
    calibrated = temperature_scale(probabilities, temperature)
    below = uncertain_threshold(calibrated, labels, target)
    kept = calibrated.max(axis=1) >= below
    return {
        "method": "temperature",
        "temperature": temperature,
        "uncertain_below": below,
        "fitted_on": f"out-of-fold probabilities of {len(labels)} clips, {len(folds)} folds",
        "target_accuracy": target,
        "out_of_fold": {
            "raw": _scores(probabilities, labels),
            "calibrated_cross_fitted": _scores(crossed, labels),
            "calibrated_in_sample": _scores(calibrated, labels),
            "certain_share": float(kept.mean()),
            "certain_accuracy": float(np.mean(calibrated.argmax(axis=1)[kept] == labels[kept])),
            "certain_macro_f1": score(labels[kept], calibrated.argmax(axis=1)[kept]).macro_f1,
        },
    }


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> str:
    """A markdown table: per confidence bin, clips, mean confidence, accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    lines = ["| confidence | clips | mean confidence | accuracy |", "|---|---|---|---|"]
    for b in range(bins):
        mask = which == b
        if mask.any():
            lines.append(
                f"| {b / bins:.1f}-{(b + 1) / bins:.1f} | {int(mask.sum())} | "
                f"{confidence[mask].mean():.3f} | {correct[mask].mean():.3f} |"
            )
    return "\n".join(lines)
