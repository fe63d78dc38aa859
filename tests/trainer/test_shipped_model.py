"""Golden test: the shipped model (models/mertag_4q.onnx) gives pinned probabilities on fixed
inputs, says how it was made, and tags a real file end to end.

Regenerate the pinned numbers only together with a new shipped model (and its model card).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tagger.features import FEATURE_DIM, FEATURE_SCHEMA
from tagger.model import MoodModel
from tagger.mood import QUADRANTS
from tests.conftest import CORPUS, CORPUS_FILES, need_shared

MODEL_ID = "mertag-lstm-x5-lin-8047e121"

# Probabilities (Q1..Q4) for golden_inputs(), computed by onnxruntime when the model was shipped.
EXPECTED = np.array(
    [
        [0.08855473, 0.1115144, 0.149234, 0.650697],
        [0.5565174, 0.2431335, 0.04370482, 0.1566443],
        [0.1078767, 0.4934102, 0.2206312, 0.1780819],
        [0.04530334, 0.02506183, 0.7189316, 0.2107032],
        [0.1374972, 0.4185913, 0.09580711, 0.3481044],
    ],
    dtype=np.float32,
)


def golden_inputs(model: MoodModel) -> list[np.ndarray]:
    """Fixed sequences near the training distribution: the model's own normalisation statistics
    plus seeded noise, at a few lengths (one patch, a 30-s excerpt, a longer one)."""
    norm = json.loads(model.info.metadata["normalisation"])
    mean = np.asarray(norm["mean"], dtype=np.float64)
    std = np.asarray(norm["std"], dtype=np.float64)
    rng = np.random.default_rng(20260401)
    out = []
    for length, shift in [(1, 0.0), (10, 0.5), (10, -0.5), (10, 1.0), (25, -1.0)]:
        z = rng.normal(size=(length, FEATURE_DIM)) + shift * rng.normal(size=FEATURE_DIM)
        out.append((mean + std * z).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def model() -> MoodModel:
    return MoodModel()


def test_metadata(model: MoodModel):
    info = model.info
    assert model.model_id == MODEL_ID
    assert info.labels == QUADRANTS
    assert info.feature_schema == FEATURE_SCHEMA and info.feature_dim == FEATURE_DIM
    assert json.loads(info.metadata["normalisation"])["columns"] == "both"
    summary = info.training_summary
    assert summary["arch"] == "lstm" and summary["ensemble"] == 5
    assert summary["n_clips"] == 720
    cv = summary["cv"]
    assert cv["folds"] == 5 and "artist" in cv["grouping"]
    assert 0.7 < cv["macro_f1_mean"] < 1 and 0 < cv["macro_f1_std"] < 0.1


def test_pinned_probabilities(model: MoodModel):
    got = np.stack([model.track_probabilities([x]) for x in golden_inputs(model)])
    np.testing.assert_allclose(got, EXPECTED, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_tags_a_real_file(model: MoodModel):
    from tagger.analyse import analyse_track

    path = need_shared(CORPUS / CORPUS_FILES[0])
    prediction = analyse_track(path, model)
    probs = np.asarray(prediction.probabilities)
    assert probs.shape == (4,) and np.all(probs >= 0) and abs(probs.sum() - 1) < 1e-4
    assert prediction.quadrant == QUADRANTS[int(probs.argmax())]
    assert prediction.model_id == MODEL_ID
