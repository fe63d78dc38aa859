"""Golden test: each shipped model (models/mertag_4q.onnx, and mertag_4q_fast.onnx) gives pinned
probabilities on fixed inputs, says how it was made, and tags a real file end to end.

Regenerate the pinned numbers only together with a new shipped model (and its model card).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA, FEATURE_SETS
from mertag.tagger.model import MoodModel
from mertag.tagger.mood import QUADRANTS
from tests.conftest import CORPUS, CORPUS_FILES, need_shared

# name -> (model id, feature set, probabilities (Q1..Q4) for golden_inputs(), computed by
# onnxruntime when the model was shipped)
SHIPPED = {
    "default": (
        "mertag-lstm-x5-lin-77f4937e",
        "both",
        [
            [0.1465898, 0.1330224, 0.2604356, 0.4599521],
            [0.0964865, 0.3058408, 0.2624064, 0.3352664],
            [0.5237828, 0.2430753, 0.1037284, 0.1294135],
            [0.2272032, 0.5039265, 0.1398558, 0.1290146],
            [0.1889685, 0.3045026, 0.02583591, 0.480693],
        ],
    ),
    "fast": (
        "mertag-lstm-x5-lin-13bdf7d2",
        "librosa+msd",
        [
            [0.1780918, 0.1829294, 0.1913518, 0.4476269],
            [0.4069843, 0.2320003, 0.1094695, 0.2515458],
            [0.2957773, 0.3534034, 0.1544961, 0.1963231],
            [0.1485046, 0.09565231, 0.4135025, 0.3423406],
            [0.149293, 0.3186284, 0.1723663, 0.3597123],
        ],
    ),
}
# name -> (temperature, uncertain_below, companion) as fitted out of fold (MODEL_CARD.md)
CALIBRATION = {"default": (1.8689, 0.57, "fast"), "fast": (2.0577, 0.60, None)}


def golden_inputs(model: MoodModel) -> list[np.ndarray]:
    """Fixed sequences near the training distribution: the model's own normalisation statistics
    plus seeded noise in the columns it reads (zeros elsewhere, as the tagger leaves them), at a
    few lengths (one patch, a 30-s excerpt, a longer one)."""
    norm = json.loads(model.info.metadata["normalisation"])
    mean = np.asarray(norm["mean"], dtype=np.float64)
    std = np.asarray(norm["std"], dtype=np.float64)
    lo, hi = model.columns
    rng = np.random.default_rng(20260401)
    out = []
    for length, shift in [(1, 0.0), (10, 0.5), (10, -0.5), (10, 1.0), (25, -1.0)]:
        z = rng.normal(size=(length, hi - lo)) + shift * rng.normal(size=hi - lo)
        rows = np.zeros((length, FEATURE_DIM), dtype=np.float32)
        rows[:, lo:hi] = mean + std * z
        out.append(rows)
    return out


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def model(request: pytest.FixtureRequest) -> MoodModel:
    return MoodModel(request.param)


def shipped(model: MoodModel) -> tuple[str, str, list[list[float]]]:
    (name,) = [n for n in SHIPPED if MoodModel(n).path == model.path]
    return SHIPPED[name]


def test_metadata(model: MoodModel):
    model_id, features, _ = shipped(model)
    info = model.info
    assert model.model_id == model_id
    assert info.labels == QUADRANTS
    assert info.feature_schema == FEATURE_SCHEMA and info.feature_dim == FEATURE_DIM
    assert json.loads(info.metadata["normalisation"])["columns"] == features
    assert model.columns == FEATURE_SETS[features]
    summary = info.training_summary
    assert summary["arch"] == "lstm" and summary["ensemble"] == 5
    assert summary["n_clips"] == 720 and summary["features"] == features
    assert summary["augment"] == [
        "offset(seconds=1.5)",
        "noise(snr_db=10..30)",
        "pitch(semitones=±1..2)",
        "shift(seconds=0.5..2.5,circular)",
    ]
    cv = summary["cv"]
    assert cv["folds"] == 5 and "artist" in cv["grouping"]
    assert 0.7 < cv["macro_f1_mean"] < 1 and 0 < cv["macro_f1_std"] < 0.1
    (name,) = [n for n in SHIPPED if SHIPPED[n][0] == model_id]
    temperature, below, companion = CALIBRATION[name]
    assert abs(info.calibration.temperature - temperature) < 1e-4
    assert info.calibration.uncertain_below == below and info.companion == companion
    fitted = json.loads(info.metadata["calibration"])["out_of_fold"]
    assert fitted["calibrated_cross_fitted"]["ece"] <= 0.05 < fitted["raw"]["ece"]


def test_pinned_probabilities(model: MoodModel):
    got = np.stack([model.track_probabilities([x]) for x in golden_inputs(model)])
    np.testing.assert_allclose(got, np.array(shipped(model)[2]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_tags_a_real_file(model: MoodModel):
    from mertag.tagger.pipeline import analyse_track

    path = need_shared(CORPUS / CORPUS_FILES[0])
    prediction = analyse_track(path, model)
    probs = np.asarray(prediction.probabilities)
    assert probs.shape == (4,) and np.all(probs >= 0) and abs(probs.sum() - 1) < 1e-4
    assert prediction.quadrant == QUADRANTS[int(probs.argmax())]
    # The file is longer than 45 s, so it is heard as snippets, which both shipped models hand
    # to the fast one (the default names it as its `companion`; the model card says why).
    assert prediction.model_id == model.snippet_model.model_id == SHIPPED["fast"][0]
