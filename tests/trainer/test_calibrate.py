"""Calibration out of fold: temperature recovered, threshold read off the curve, scores."""

from __future__ import annotations

import numpy as np

from mertag.tagger.calibration import temperature_scale
from mertag.trainer.calibrate import (
    calibration_report,
    fit_temperature,
    reliability_table,
    uncertain_threshold,
)
from mertag.trainer.metrics import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)


def calibrated_sample(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated by construction (labels drawn from them)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(4, 0.7), size=n)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return p, labels


def test_an_overconfident_model_gets_its_temperature_back():
    p, labels = calibrated_sample()
    sharp = temperature_scale(p, 0.5)  # what an overconfident model would say
    t = fit_temperature(sharp, labels)
    assert 1.7 < t < 2.3
    assert expected_calibration_error(temperature_scale(sharp, t), labels) < 0.03
    assert expected_calibration_error(sharp, labels) > 0.1


def test_scores_of_perfect_and_uniform_predictions():
    labels = np.array([0, 1, 2, 3])
    perfect = np.eye(4)
    uniform = np.full((4, 4), 0.25)
    assert expected_calibration_error(perfect, labels) == 0.0
    assert negative_log_likelihood(perfect, labels) < 1e-9 and brier_score(perfect, labels) == 0
    assert abs(negative_log_likelihood(uniform, labels) - np.log(4)) < 1e-9
    assert abs(brier_score(uniform, labels) - 0.75) < 1e-9


def test_the_threshold_keeps_predictions_that_are_right_often_enough():
    p, labels = calibrated_sample()
    t = uncertain_threshold(p, labels, target=0.85)
    kept = p.max(axis=1) >= t
    assert (p.argmax(axis=1)[kept] == labels[kept]).mean() >= 0.85
    looser = kept | (p.max(axis=1) >= t - 0.01)
    assert (p.argmax(axis=1)[looser] == labels[looser]).mean() < 0.85 or t == 0
    assert uncertain_threshold(p, labels, target=1.01) == 1.0


def test_report_is_cross_fitted_and_json_able():
    import json

    p, labels = calibrated_sample(1000)
    sharp = temperature_scale(p, 0.5)
    idx = np.arange(len(labels))
    folds = [(idx[idx % 5 != k], idx[idx % 5 == k]) for k in range(5)]
    report = calibration_report(sharp, labels, folds)
    json.dumps(report)
    oof = report["out_of_fold"]
    assert oof["calibrated_cross_fitted"]["ece"] < oof["raw"]["ece"]
    assert oof["calibrated_cross_fitted"]["nll"] < oof["raw"]["nll"]
    assert 0 < oof["certain_share"] <= 1 and report["temperature"] > 1
    assert reliability_table(sharp, labels).count("\n") >= 3
