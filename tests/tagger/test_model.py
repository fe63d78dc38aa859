"""The model wrapper: real onnxruntime sessions; files that are not mertag models are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mertag.models import MODELS_DIR
from mertag.tagger.features import FEATURE_DIM, FEATURE_SETS, LIBROSA_SLICE
from mertag.tagger.model import (
    PACKAGED_MODELS,
    ModelError,
    ModelOutputError,
    MoodModel,
    model_path,
    output_problem,
)
from tests.tagger.onnx_models import FAULTS, broken_model, linear_model


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


def test_output_problem_names_what_is_wrong() -> None:
    good = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    assert output_problem(good, 2) is None
    assert output_problem(good, 3) == "an output of shape (2, 4), not (3, 4)"
    assert output_problem(good[:, :3], 2) == "an output of shape (2, 3), not (2, 4)"
    assert output_problem(good[None], 2) == "an output of shape (1, 2, 4), not (2, 4)"
    assert output_problem(good.astype(np.int64), 2) == "int64 output, not probabilities"
    nan = good.copy()
    nan[1, 2] = np.nan
    assert output_problem(nan, 2) == "NaN or infinite probabilities"
    shifted = good + np.array([1.0, -1.0, 0.0, 0.0], dtype=np.float32)  # rows still sum to 1
    assert output_problem(shifted, 2) == "a negative probability (-1)"
    assert output_problem(good * 2, 2) == "probabilities summing to 2, not 1"
    assert output_problem(good + 1e-5, 2) is None  # float rounding is no fault


@pytest.mark.parametrize("fault", FAULTS)
def test_a_model_with_broken_outputs_is_refused_when_loaded(tmp_path: Path, fault: str) -> None:
    path = broken_model(tmp_path / "m.onnx", fault)
    with pytest.raises(ModelError, match="on a probe input; not a usable mood model") as info:
        MoodModel(path)
    assert str(info.value).startswith(f"{path}: gives ") and "\n" not in str(info.value)


@pytest.mark.parametrize("fault", ["nan", "negative", "not-a-distribution"])
def test_every_output_is_checked(tmp_path: Path, fault: str) -> None:
    """A model that passes the probe but goes wrong on loud input: that call raises
    ModelOutputError (one line), and the same session still serves other input."""
    model = MoodModel(broken_model(tmp_path / "m.onnx", fault, when="tracks"))
    quiet = np.zeros((3, FEATURE_DIM), dtype=np.float32)
    loud = quiet.copy()
    loud[:, LIBROSA_SLICE] = -40.0  # every log-mel band at -40 dB, as real music has
    with pytest.raises(ModelOutputError, match="model m.onnx gave ") as info:
        model.probabilities([quiet, loud])
    assert "\n" not in str(info.value)
    np.testing.assert_allclose(model.probabilities([quiet]).sum(axis=1), 1.0, rtol=1e-5)


def test_accepted_ids_are_read_without_a_session() -> None:
    """A scan's accepted ids (the model's and its snippet model's) come from the files' metadata:
    the same ids as the sessions say, and no session is started for them."""
    from mertag.tagger import model as model_module
    from mertag.tagger.model import accepted_model_ids

    for name in PACKAGED_MODELS:
        mood = MoodModel(name)
        kept = dict(model_module._SHARED)
        model_module._SHARED.clear()
        try:
            ids = accepted_model_ids(mood)
            assert accepted_model_ids(mood.model_id) == ids
            assert not model_module._SHARED, "a session was started to read an id"
        finally:
            model_module._SHARED.update(kept)
        assert ids == {mood.model_id, mood.snippet_model.model_id}
    assert accepted_model_ids("not-a-shipped-id") == {"not-a-shipped-id"}
