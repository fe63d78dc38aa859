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
        "mertag-lstm-x5-lin-86a32bf1",
        "both",
        [
            [0.104977, 0.1019516, 0.2017696, 0.5913018],
            [0.1170957, 0.344607, 0.3631384, 0.1751588],
            [0.5108506, 0.2808087, 0.08016147, 0.1281792],
            [0.1374166, 0.6955777, 0.08236734, 0.08463826],
            [0.0107552, 0.2756659, 0.003907659, 0.7096712],
        ],
    ),
    "fast": (
        "mertag-lstm-x5-lin-69a6b706",
        "librosa+msd",
        [
            [0.1152306, 0.1036088, 0.1175729, 0.6635877],
            [0.585573, 0.2114291, 0.03157699, 0.1714209],
            [0.095812, 0.5751039, 0.1161444, 0.2129396],
            [0.05898473, 0.02186365, 0.6350023, 0.2841493],
            [0.09465056, 0.3945765, 0.08363162, 0.4271414],
        ],
    ),
}


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
    assert len(summary["augment"]) == 4 and summary["augment"][-1] == "offset(seconds=1.5)"
    cv = summary["cv"]
    assert cv["folds"] == 5 and "artist" in cv["grouping"]
    assert 0.7 < cv["macro_f1_mean"] < 1 and 0 < cv["macro_f1_std"] < 0.1


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
    # to the fast one (models.SNIPPET_MODELS; the model card says why).
    assert prediction.model_id == model.snippet_model.model_id == SHIPPED["fast"][0]
