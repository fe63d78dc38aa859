"""Numpy-only scores, checked by hand and against scikit-learn where it is installed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mertag.trainer.metrics import confusion_matrix, format_scores, score


def test_scores_by_hand():
    truth = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 1, 1, 1, 2, 0, 3, 3])
    s = score(truth, pred)
    assert s.accuracy == pytest.approx(6 / 8)
    assert s.precision == pytest.approx((0.5, 2 / 3, 1.0, 1.0))
    assert s.recall == pytest.approx((0.5, 1.0, 0.5, 1.0))
    f1 = [0.5, 0.8, 2 / 3, 1.0]
    assert s.macro_f1 == pytest.approx(np.mean(f1))
    assert s.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 2]]


def test_a_class_never_predicted_counts_as_zero_f1():
    s = score(np.array([0, 1, 2, 3]), np.array([0, 0, 2, 3]))
    assert s.precision[1] == 0.0 and s.f1[1] == 0.0
    assert s.macro_f1 == pytest.approx((2 / 3 + 0 + 1 + 1) / 4)


def test_agrees_with_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    s = score(truth, pred)
    assert s.accuracy == pytest.approx(metrics.accuracy_score(truth, pred))
    assert s.macro_f1 == pytest.approx(metrics.f1_score(truth, pred, average="macro"))
    assert np.array_equal(confusion_matrix(truth, pred), metrics.confusion_matrix(truth, pred))


def test_report_has_headline_numbers_and_matrix():
    text = format_scores(score(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 2])))
    assert "accuracy  0.750" in text and "macro-F1" in text and "confusion matrix" in text


def test_evaluate_path_imports_neither_torch_nor_sklearn():
    code = (
        "import sys, mertag.trainer.cli, mertag.trainer.evaluate, mertag.trainer.metrics,"
        " mertag.trainer.dataset;"
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
