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
        "mertag-lstm-x5-lin-dc279ded",
        "both",
        [
            [0.143815, 0.1463802, 0.2849396, 0.4248652],
            [0.1763907, 0.2843609, 0.2320546, 0.3071938],
            [0.5971865, 0.2820824, 0.07921785, 0.04151327],
            [0.2570466, 0.4692128, 0.1154178, 0.1583227],
            [0.2100072, 0.3110184, 0.01627656, 0.4626978],
        ],
    ),
    "fast": (
        "mertag-lstm-x5-lin-ed31819d",
        "librosa+msd",
        [
            [0.1658271, 0.1644887, 0.2002776, 0.4694067],
            [0.5177986, 0.2319641, 0.07233008, 0.1779073],
            [0.2364709, 0.3724496, 0.2018929, 0.1891866],
            [0.2236117, 0.1133844, 0.3740138, 0.2889902],
            [0.09946127, 0.3890727, 0.1271443, 0.3843217],
        ],
    ),
}
# name -> (temperature, uncertain_below, companion) as fitted out of fold (MODEL_CARD.md)
CALIBRATION = {"default": (2.1692, 0.56, "fast"), "fast": (2.0417, 0.59, None)}


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
    assert summary["hyperparameters"]["mood_words_weight"] == 1.0  # the M recipe (model card)
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
