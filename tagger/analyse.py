"""One track from file to Prediction: excerpts, features, model. Scan and evaluate share it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tagger.features import extract_track
from tagger.model import MoodModel
from tagger.mood import Prediction, predict_mood


def analyse_track(
    path: Path, model: MoodModel, moods: Mapping[str, str] | None = None
) -> Prediction:
    """The mood of the track at `path`; raises AudioError for audio that cannot be analysed."""
    features = extract_track(path, columns=model.columns)
    return predict_mood(model.track_probabilities(features.sequences), model.model_id, moods)
