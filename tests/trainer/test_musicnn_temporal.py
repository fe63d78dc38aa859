"""The temporal branches with the max over mel first equal musicnn's own, to float32 rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MUSICNN_DIR, need_shared

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from mertag.tagger.embeddings import frontend_path  # noqa: E402
from mertag.trainer.musicnn_port import (  # noqa: E402
    EXPORT_FORMS,
    load_musicnn,
    with_max_first_temporal,
)
from mertag.trainer.musicnn_temporal import TEMPORAL_KEY, MaxFirstTemporal  # noqa: E402
from tests.trainer.test_musicnn_meldft import features_on_real_input, random_branch  # noqa: E402


# Time kernels: even and odd ('same' pads one more frame after than before), and one frame.
@pytest.mark.parametrize("frames", [8, 5, 1])
def test_matches_the_branch_with_negative_batch_norm_scales(frames: int) -> None:
    branch = random_branch((frames, 1), seed=frames)
    first = MaxFirstTemporal(branch.conv, branch.bn, branch.time_pad).eval()
    x = torch.randn(3, 1, 40, 24, generator=torch.Generator().manual_seed(2)) * 3 + 1
    with torch.no_grad():
        want, got = branch(x), first(x)
    assert got.shape == want.shape == (3, 12, 40)
    np.testing.assert_allclose(
        got.numpy(), want.numpy(), rtol=0, atol=1e-6 * float(want.abs().max())
    )


def test_refuses_a_conv_that_is_not_temporal() -> None:
    branch = random_branch((3, 5), seed=0)
    with pytest.raises(ValueError, match="not a temporal conv"):
        MaxFirstTemporal(branch.conv, branch.bn, branch.time_pad)


def test_matches_musicnn_temporal_branches_on_real_input() -> None:
    model, first, want, got = features_on_real_input(with_max_first_temporal)
    np.testing.assert_allclose(got["temporal"], want["temporal"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got["timbral"], want["timbral"])
    np.testing.assert_allclose(got["penultimate"], want["penultimate"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["tags"], want["tags"], rtol=0, atol=1e-6)
    assert all(isinstance(b, MaxFirstTemporal) for b in first.temporal)
    assert not any(isinstance(b, MaxFirstTemporal) for b in model.temporal)  # port untouched


@pytest.mark.parametrize("name", ["musicnn_msd.onnx", "musicnn_mtt.onnx"])
def test_shipped_networks_say_how_they_compute_their_branches(name: str) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(frontend_path(name))).metadata_props}
    assert meta[TEMPORAL_KEY] == "max-first"
    assert {k: meta[k] for k in EXPORT_FORMS} == EXPORT_FORMS


def test_exported_network_equals_the_port(tmp_path: Path) -> None:
    from mertag.trainer.musicnn_port import export_musicnn_onnx

    weights = need_shared(MUSICNN_DIR) / "MSD_musicnn_weights.npz"
    out = tmp_path / "msd.onnx"
    export_musicnn_onnx(weights, out)
    x = np.load(MUSICNN_DIR / "MSD_musicnn_tfref_input.npy")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    penultimate, tags = session.run(None, {"mel_patches": x})
    with torch.no_grad():
        want = load_musicnn(weights)(torch.from_numpy(x))
    np.testing.assert_allclose(penultimate, want[0].numpy(), rtol=0, atol=2e-5)
    np.testing.assert_allclose(tags, want[1].numpy(), rtol=0, atol=2e-6)
