"""Parity of the torch musicnn port with TensorFlow's own outputs, and of its ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MUSICNN_DIR, need_shared

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from mertag.trainer.musicnn_port import Musicnn, export_musicnn_onnx, load_musicnn  # noqa: E402

WEIGHTS = "MSD_musicnn_weights.npz"

# TF's float32 convolutions round differently from torch's (a float64 port sits no closer to the
# reference), so the gap grows with magnitude: the residual maps reach ~100. The mid-end batch
# norms scale their conv outputs by ~30 (median), so cnn2/cnn3 get a wider absolute margin.
TF_RTOL = 2e-5
TF_ATOL = {"cnn2": 1e-3, "cnn3": 1e-3}
DEFAULT_ATOL = 1e-4


@pytest.fixture(scope="module")
def model() -> Musicnn:
    return load_musicnn(need_shared(MUSICNN_DIR) / WEIGHTS)


@pytest.fixture(scope="module")
def ref_input() -> np.ndarray:
    return np.load(need_shared(MUSICNN_DIR) / "MSD_musicnn_tfref_input.npy")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "musicnn.onnx"
    export_musicnn_onnx(need_shared(MUSICNN_DIR) / WEIGHTS, out)
    return out


def test_every_tf_reference_tensor_matches(model: Musicnn, ref_input: np.ndarray) -> None:
    ref = np.load(MUSICNN_DIR / "MSD_musicnn_tfref.npz")
    with torch.no_grad():
        ours = model.features(torch.from_numpy(ref_input))
    assert set(ref.files) <= set(ours)
    for name in ref.files:
        np.testing.assert_allclose(
            ours[name].numpy(),
            ref[name],
            rtol=TF_RTOL,
            atol=TF_ATOL.get(name, DEFAULT_ATOL),
            err_msg=name,
        )
    # The exported pair stays tight in absolute terms.
    np.testing.assert_allclose(ours["tags"].numpy(), ref["tags"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours["penultimate"].numpy(), ref["penultimate"], rtol=0, atol=5e-5)


def test_forward_is_penultimate_and_tags(model: Musicnn, ref_input: np.ndarray) -> None:
    x = torch.from_numpy(ref_input)
    with torch.no_grad():
        penultimate, tags = model(x)
        feats = model.features(x)
    assert penultimate.shape == (3, 200) and tags.shape == (3, 50)
    torch.testing.assert_close(penultimate, feats["penultimate"])
    torch.testing.assert_close(tags, feats["tags"])


def test_onnx_export_matches_torch(model: Musicnn, ref_input: np.ndarray, onnx_path: Path) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["mertag_frontend"] == "musicnn-msd"
    assert meta["patch_frames"] == "187" and meta["sample_rate"] == "16000"

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["mel_patches"]
    assert [o.name for o in session.get_outputs()] == ["penultimate", "tags"]
    random_batch = np.random.default_rng(0).uniform(0, 6, (5, 187, 96)).astype(np.float32)
    for x in (ref_input, random_batch):
        got = session.run(["penultimate", "tags"], {"mel_patches": x})
        with torch.no_grad():
            want = model(torch.from_numpy(x))
        for g, w in zip(got, want, strict=True):
            assert g.shape == tuple(w.shape)
            assert np.abs(g - w.numpy()).max() <= 1e-5
