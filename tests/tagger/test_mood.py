"""Probabilities to quadrant, mood word, valence and arousal."""

from __future__ import annotations

import pytest

from mertag.tagger.mood import energy_level, predict_mood


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


def test_below_the_threshold_a_prediction_is_uncertain_but_keeps_its_numbers():
    sure = predict_mood([0.7, 0.1, 0.1, 0.1], "m", uncertain_below=0.6)
    assert not sure.uncertain and sure.mood == "Happy"
    flagged = predict_mood([0.4, 0.3, 0.2, 0.1], "m", uncertain_below=0.6)
    assert flagged.uncertain and flagged.mood == "Happy"  # no uncertain word: only the flag
    doubt = predict_mood([0.4, 0.3, 0.2, 0.1], "m", uncertain_below=0.6, uncertain_word="")
    assert doubt.uncertain and doubt.mood == "" and doubt.quadrant == "Q1"
    assert doubt.probabilities == pytest.approx((0.4, 0.3, 0.2, 0.1))
    assert doubt.confidence == pytest.approx(0.4)
    worded = predict_mood([0.4, 0.3, 0.2, 0.1], "m", uncertain_below=0.6, uncertain_word="Mixed")
    assert worded.mood == "Mixed"
    assert not predict_mood([0.4, 0.3, 0.2, 0.1], "m").uncertain


def test_energy_level_spreads_arousal_over_one_to_ten() -> None:
    assert [energy_level(a) for a in (-1.0, -0.81, -0.79, 0.0, 0.19, 0.21, 0.99, 1.0)] == [
        1,
        1,
        2,
        6,
        6,
        7,
        10,
        10,
    ]
    levels = {energy_level(a / 100) for a in range(-100, 101)}
    assert levels == set(range(1, 11))
    with pytest.raises(ValueError, match="arousal"):
        energy_level(1.5)
