"""Export: the ONNX graph matches torch for any batch and length, and loads in the tagger."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mertag.tagger.features import FEATURE_DIM, LIBROSA_SLICE  # noqa: E402
from mertag.tagger.model import REQUIRED_METADATA, MoodModel  # noqa: E402
from mertag.trainer.choices import ARCHS, FEATURE_SETS  # noqa: E402
from mertag.trainer.export import export_onnx, model_id  # noqa: E402
from mertag.trainer.nets import MoodNet  # noqa: E402


def random_net(arch: str, features: str, seed: int = 0) -> MoodNet:
    rng = np.random.default_rng(seed)
    lo, hi = FEATURE_SETS[features]
    torch.manual_seed(seed)
    net = MoodNet(
        arch,
        features,
        rng.normal(size=hi - lo).astype(np.float32),
        rng.uniform(0.5, 2.0, size=hi - lo).astype(np.float32),
        hidden=16,
    )
    return net.eval()


@pytest.mark.parametrize("arch", list(ARCHS))
def test_onnx_matches_torch_at_any_length(arch: str, tmp_path: Path):
    net = random_net(arch, "both")
    path = tmp_path / "m.onnx"
    export_onnx(net, path, {"arch": arch})
    model = MoodModel(path)
    rng = np.random.default_rng(1)
    for batch, length in [(1, 1), (3, 2), (2, 10), (1, 25)]:
        x = rng.normal(size=(batch, length, FEATURE_DIM)).astype(np.float32)
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        got = model.probabilities(list(x))
        assert np.max(np.abs(got - expected)) <= 1e-5
        assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_metadata_is_exactly_what_the_tagger_requires(tmp_path: Path):
    net = random_net("lstm", "librosa")
    path = tmp_path / "m.onnx"
    summary = {"arch": "lstm", "epochs": 3}
    mid = export_onnx(net, path, summary)
    model = MoodModel(path)
    meta = model.info.metadata
    assert set(meta) == set(REQUIRED_METADATA)  # no calibration or companion given
    assert mid == model.model_id == model_id(net)
    assert mid.startswith("mertag-lstm-") and len(mid) == len("mertag-lstm-") + 8
    norm = json.loads(meta["normalisation"])
    assert norm["columns"] == "librosa"
    assert len(norm["mean"]) == len(norm["std"]) == LIBROSA_SLICE.stop - LIBROSA_SLICE.start
    assert model.info.training_summary == summary


def test_export_replaces_no_other_file_and_the_model_is_readable_by_others(tmp_path: Path):
    """The model goes through a temp file of a name no file has: a fixed 'm.onnx.tmp' replaced a
    file of the user's; and it gets a new file's mode, not a temp file's private 0600."""
    path, theirs = tmp_path / "m.onnx", tmp_path / "m.onnx.tmp"
    theirs.write_bytes(b"my notes, not a model")
    mask = os.umask(0o022)
    try:
        export_onnx(random_net("lstm", "librosa"), path, {})
    finally:
        os.umask(mask)
    assert theirs.read_bytes() == b"my notes, not a model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.tmp"]
    assert path.stat().st_mode & 0o777 == 0o644
    assert MoodModel(path).model_id.startswith("mertag-lstm-")


def test_a_librosa_model_ignores_the_musicnn_columns(tmp_path: Path):
    path = tmp_path / "m.onnx"
    export_onnx(random_net("birnn", "librosa"), path, {})
    model = MoodModel(path)
    x = np.random.default_rng(2).normal(size=(2, 4, FEATURE_DIM)).astype(np.float32)
    y = x.copy()
    y[:, :, LIBROSA_SLICE.stop :] = 1e3
    assert np.array_equal(model.probabilities(list(x)), model.probabilities(list(y)))


def test_model_id_follows_the_weights():
    a, b = random_net("rnn", "both", seed=0), random_net("rnn", "both", seed=0)
    assert model_id(a) == model_id(b)
    with torch.no_grad():
        b.head.bias += 1
    assert model_id(a) != model_id(b)


def test_calibration_and_companion_travel_in_the_file(tmp_path: Path):
    from mertag.tagger.calibration import temperature_scale

    net = random_net("lstm", "both")
    plain, calibrated = tmp_path / "plain.onnx", tmp_path / "calibrated.onnx"
    export_onnx(net, plain, {})
    entry = {"method": "temperature", "temperature": 2.0, "uncertain_below": 0.6}
    export_onnx(net, calibrated, {}, calibration=entry, companion="fast")
    a, b = MoodModel(plain), MoodModel(calibrated)
    assert a.info.companion is None and a.uncertain_below is None and a.snippet_model is a
    assert b.info.companion == "fast" and b.uncertain_below == 0.6
    assert b.info.calibration.temperature == 2.0
    x = list(np.random.default_rng(3).normal(size=(3, 4, FEATURE_DIM)).astype(np.float32))
    raw = a.probabilities(x)
    np.testing.assert_allclose(b.raw_probabilities(x), raw, atol=1e-6)
    np.testing.assert_allclose(b.probabilities(x), temperature_scale(raw, 2.0), atol=1e-6)
    # The track's probabilities: the mean of the raw ones, then scaled, as the trainer fitted.
    np.testing.assert_allclose(
        b.track_probabilities(x), temperature_scale(raw.mean(axis=0), 2.0), atol=1e-6
    )
    assert (b.probabilities(x).argmax(axis=1) == raw.argmax(axis=1)).all()
    p = b.predict(x[:1], uncertain_word="")
    assert p.uncertain == (p.confidence < 0.6) and (p.mood == "") == p.uncertain
    assert not b.predict(x[:1], uncertain_below=0.0).uncertain
    sure = b.predict(x[:1], uncertain_below=1.0, uncertain_word="Unsure")
    assert sure.uncertain and sure.mood == "Unsure" and sure.quadrant == p.quadrant


def test_a_bad_calibration_or_companion_is_refused(tmp_path: Path):
    from mertag.tagger.model import ModelError

    net = random_net("lstm", "librosa")
    for i, (calibration, companion) in enumerate(
        [({"temperature": -1.0}, None), ({"uncertain_below": 2}, None), (None, "nosuch")]
    ):
        path = tmp_path / f"m{i}.onnx"
        export_onnx(net, path, {}, calibration=calibration, companion=companion)
        with pytest.raises(ModelError):
            MoodModel(path)
