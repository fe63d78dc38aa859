"""Mood-word targets: parsed from the labels CSV, with a vocabulary from the training clips only."""

from __future__ import annotations

import numpy as np

from mertag.trainer.mood_words import parse_words, vocabulary, word_targets


def test_words_are_split_and_trimmed() -> None:
    assert parse_words(" Gloomy;Weary ;; Calm/Peaceful ") == ("Gloomy", "Weary", "Calm/Peaceful")
    assert parse_words("") == ()


def test_the_vocabulary_is_the_common_words_most_common_first() -> None:
    clips = [("Sad", "Gloomy"), ("Sad",), ("Sad", "Gloomy", "Sad"), ("Calm",)]
    assert vocabulary(clips, min_clips=2) == ("Sad", "Gloomy")
    assert vocabulary(clips, min_clips=4) == ()


def test_a_fold_never_learns_words_only_its_test_clips_carry() -> None:
    clips = [("Sad",), ("Sad", "Calm"), ("Calm",), ("Calm",), ("Joyous",), ("Joyous",)]
    train = np.array([0, 1, 2, 3])
    targets = word_targets(clips, train, min_clips=2)
    assert targets.shape == (6, 2)  # Calm, Sad; Joyous is carried by test clips only
    assert targets.tolist() == [[0, 1], [1, 1], [1, 0], [1, 0], [0, 0], [0, 0]]
