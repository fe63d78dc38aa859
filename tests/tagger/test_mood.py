"""Probabilities to quadrant, mood word, valence and arousal."""

from __future__ import annotations

import pytest

from mertag.tagger.mood import predict_mood


def test_corners_and_formula() -> None:
    p = predict_mood([0.7, 0.1, 0.1, 0.1], "m1")
    assert (p.quadrant, p.mood, p.model_id) == ("Q1", "Happy", "m1")
    assert p.confidence == pytest.approx(0.7)
    assert p.valence == pytest.approx((0.7 + 0.1) - (0.1 + 0.1))
    assert p.arousal == pytest.approx((0.7 + 0.1) - (0.1 + 0.1))
    sad = predict_mood([0.0, 0.0, 1.0, 0.0], "m1")
    assert (sad.quadrant, sad.mood, sad.valence, sad.arousal) == ("Q3", "Sad", -1.0, -1.0)
    calm = predict_mood([0.1, 0.0, 0.2, 0.7], "m1")
    assert calm.mood == "Relaxed" and calm.valence > 0 > calm.arousal


def test_custom_mood_words_and_bad_input() -> None:
    p = predict_mood([0.1, 0.6, 0.2, 0.1], "m", {"Q2": "Tense"})
    assert p.mood == "Tense"
    for bad in ([0.5, 0.5], [1.5, -0.5, 0.0, 0.0], [0.0] * 4, [float("nan"), 0.5, 0.5, 0.0]):
        with pytest.raises(ValueError):
            predict_mood(bad, "m")
