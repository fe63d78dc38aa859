"""Classification scores in plain numpy, so `mertag evaluate` needs neither torch nor sklearn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mertag.tagger.mood import QUADRANTS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


@dataclass(frozen=True)
class Scores:
    """Accuracy, macro-F1 and per-class precision/recall/F1 of one set of predictions."""

    accuracy: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: np.ndarray

    def as_dict(self, labels: Sequence[str] = QUADRANTS) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {
                label: {"precision": p, "recall": r, "f1": f, "support": s}
                for label, p, r, f, s in zip(
                    labels, self.precision, self.recall, self.f1, self.support, strict=True
                )
            },
            "confusion": self.confusion.tolist(),
        }


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 4) -> Scores:
    """Scores of predicted class indices against true ones; macro-F1 averages all classes."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(np.float64)
    precision = _ratio(tp, m.sum(axis=0).astype(np.float64))
    recall = _ratio(tp, m.sum(axis=1).astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = m.sum()
    return Scores(
        accuracy=float(tp.sum() / total) if total else 0.0,
        macro_f1=float(f1.mean()),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        f1=tuple(float(x) for x in f1),
        support=tuple(int(x) for x in m.sum(axis=1)),
        confusion=m,
    )


def format_scores(scores: Scores, labels: Sequence[str] = QUADRANTS) -> str:
    """A plain-text report: headline numbers, per-class table, confusion matrix."""
    lines = [
        f"accuracy  {scores.accuracy:.3f}",
        f"macro-F1  {scores.macro_f1:.3f}",
        "",
        f"{'class':<6}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>6}",
    ]
    for label, p, r, f, s in zip(
        labels, scores.precision, scores.recall, scores.f1, scores.support, strict=True
    ):
        lines.append(f"{label:<6}{p:>10.3f}{r:>8.3f}{f:>7.3f}{s:>6d}")
    lines += [
        "",
        "confusion matrix (rows true, columns predicted)",
        f"{'':<6}" + "".join(f"{label:>6}" for label in labels),
    ]
    for label, row in zip(labels, scores.confusion, strict=True):
        lines.append(f"{label:<6}" + "".join(f"{int(x):>6d}" for x in row))
    return "\n".join(lines)


def expected_calibration_error(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = 10
) -> float:
    """ECE: over `bins` equal-width bins of confidence (the largest probability), the
    clip-weighted mean of |accuracy - mean confidence|."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / len(p))


def negative_log_likelihood(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """Mean -log p(true class), probabilities held above 1e-12."""
    p = np.asarray(probabilities, dtype=np.float64)
    picked = p[np.arange(len(p)), np.asarray(y_true, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def brier_score(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """Mean over clips of the squared distance to the one-hot truth, summed over classes."""
    p = np.asarray(probabilities, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(y_true, dtype=np.int64)]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
