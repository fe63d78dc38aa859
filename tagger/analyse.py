"""One track from file to Prediction: excerpts, features, model. Scan and evaluate share it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mertag.tagger.features import TrackFeatures, extract_track
from mertag.tagger.model import MoodModel
from mertag.tagger.mood import Prediction


def track_features(path: Path, model: MoodModel) -> tuple[TrackFeatures, MoodModel]:
    """A track's features and the model that classifies them: `model`, or its snippet model
    (`MoodModel.snippet_model`) when the excerpt policy hears the track as snippets."""
    for_snippets = model.snippet_model
    features = extract_track(path, columns=model.columns, snippet_columns=for_snippets.columns)
    return features, for_snippets if features.snippets else model


def analyse_track(
    path: Path, model: MoodModel, moods: Mapping[str, str] | None = None
) -> Prediction:
    """The mood of the track at `path`; raises AudioError for audio that cannot be analysed."""
    features, chosen = track_features(path, model)
    return chosen.predict(features.sequences, moods)
