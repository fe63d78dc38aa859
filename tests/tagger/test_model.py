"""The model wrapper: real onnxruntime sessions; files that are not mertag models are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mertag.models import MODELS_DIR
from mertag.tagger.features import FEATURE_DIM, FEATURE_SETS
from mertag.tagger.model import PACKAGED_MODELS, ModelError, MoodModel, model_path
from tests.tagger.onnx_models import linear_model


def test_a_valid_model_loads_and_predicts(tmp_path: Path) -> None:
    model = MoodModel(linear_model(tmp_path / "m.onnx"))
    assert model.model_id == "test-linear-0"
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, FEATURE_DIM)).astype(np.float32) for n in (10, 4, 10)]
    probs = model.probabilities(seqs)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Batched by length, yet each row equals its own single run.
    np.testing.assert_allclose(probs[1], model.probabilities([seqs[1]])[0], rtol=1e-6)
    np.testing.assert_allclose(model.track_probabilities(seqs), probs.mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"feature_schema": "mertag-features-0"}, "feature schema 'mertag-features-0'"),
        ({"model_id": None, "labels": None}, "not a mertag model .*model_id, labels"),
        ({"mertag_model_format": "9"}, "model format 9 is not supported"),
        ({"labels": "A,B,C,D"}, "labels"),
        ({"feature_dim": "12"}, "expects dim 12"),
        ({"normalisation": '{"columns": "mfcc-only"}'}, "feature set 'mfcc-only'"),
        ({"normalisation": "{"}, "malformed metadata"),
    ],
)
def test_wrong_metadata_is_refused(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        MoodModel(linear_model(tmp_path / "m.onnx", **overrides))


def test_non_models_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        MoodModel(junk)
    with pytest.raises(ModelError, match="not found"):
        MoodModel(tmp_path / "missing.onnx")
    # A real ONNX network that is not a mertag mood model (the musicnn front end).
    with pytest.raises(ModelError, match="not a mertag model"):
        MoodModel(MODELS_DIR / "musicnn_msd.onnx")


def test_shipped_models_by_name_and_the_columns_they_read(tmp_path: Path, monkeypatch) -> None:
    default, fast = MoodModel("default"), MoodModel("fast")
    assert default.path == MODELS_DIR / PACKAGED_MODELS["default"] == MoodModel().path
    assert fast.path == MODELS_DIR / PACKAGED_MODELS["fast"]
    assert default.columns == FEATURE_SETS["both"] == (0, FEATURE_DIM)
    assert fast.columns == FEATURE_SETS["librosa+msd"]
    assert default.model_id != fast.model_id
    # A file named like a shipped model wins over the name.
    monkeypatch.chdir(tmp_path)
    linear_model(tmp_path / "fast")
    assert model_path("fast") == Path("fast")
    assert MoodModel("fast").model_id == "test-linear-0"


def test_a_model_never_reads_columns_outside_its_feature_set() -> None:
    fast = MoodModel("fast")
    lo, hi = fast.columns
    rng = np.random.default_rng(1)
    seq = rng.standard_normal((8, FEATURE_DIM)).astype(np.float32)
    other = seq.copy()
    other[:, hi:] = rng.standard_normal((8, FEATURE_DIM - hi)) * 100
    np.testing.assert_array_equal(fast.probabilities([seq]), fast.probabilities([other]))
    other[:, lo] += 1.0  # and does read its own
    assert not np.array_equal(fast.probabilities([seq]), fast.probabilities([other]))
