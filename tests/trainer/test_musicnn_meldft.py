"""The mel-axis DFT timbral branch equals the convolutional one it replaces in the export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MUSICNN_DIR, need_shared

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from mertag.tagger.embeddings import frontend_path  # noqa: E402
from mertag.trainer.musicnn_meldft import TIMBRAL_KEY, MelDftTimbral  # noqa: E402
from mertag.trainer.musicnn_port import (  # noqa: E402
    Musicnn,
    _FreqPooledConv,
    export_musicnn_onnx,
    load_musicnn,
    with_mel_dft_timbral,
)


def random_branch(kernel: tuple[int, int], seed: int) -> _FreqPooledConv:
    """A timbral-like branch with random weights and batch-norm statistics, some scales < 0."""
    rng = torch.Generator().manual_seed(seed)
    branch = _FreqPooledConv(12, kernel, (kernel[0] // 2, kernel[0] - 1 - kernel[0] // 2))
    with torch.no_grad():
        branch.conv.weight.copy_(torch.randn(branch.conv.weight.shape, generator=rng))
        branch.conv.bias.copy_(torch.randn(12, generator=rng))
        branch.bn.weight.copy_(torch.randn(12, generator=rng))  # about half negative
        branch.bn.bias.copy_(torch.randn(12, generator=rng))
        branch.bn.running_mean.copy_(torch.randn(12, generator=rng))
        branch.bn.running_var.copy_(torch.rand(12, generator=rng) + 0.5)
    assert (branch.bn.weight < 0).any() and (branch.bn.weight > 0).any()
    return branch.eval()


# (time, mel) kernels over 24 bands: an even and an odd number of valid offsets, a one-band
# kernel, a kernel as wide as the patch (one offset), an even time kernel ('same' pads 1 / 2).
@pytest.mark.parametrize("kernel", [(3, 5), (7, 10), (5, 1), (3, 24), (4, 9)])
@pytest.mark.parametrize("chunks", [1, 5])
def test_matches_the_conv_branch(kernel: tuple[int, int], chunks: int) -> None:
    branch = random_branch(kernel, seed=kernel[1])
    dft = MelDftTimbral(branch.conv, branch.bn, branch.time_pad, n_mels=24, chunks=chunks).eval()
    x = torch.randn(3, 1, 40, 24, generator=torch.Generator().manual_seed(1)) * 3 + 2
    with torch.no_grad():
        want, got = branch(x), dft(x)
    assert got.shape == want.shape == (3, 12, 40)
    scale = float(want.abs().max())
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=2e-6 * scale)


def features_on_real_input(
    form: Callable[[Musicnn], Musicnn],
) -> tuple[Musicnn, Musicnn, dict, dict]:
    """The MSD port, its export `form`, and both one's intermediates on TF's reference input."""
    model = load_musicnn(need_shared(MUSICNN_DIR) / "MSD_musicnn_weights.npz")
    exported = form(model)
    x = torch.from_numpy(np.load(MUSICNN_DIR / "MSD_musicnn_tfref_input.npy"))
    with torch.no_grad():
        return model, exported, model.features(x), exported.features(x)


def test_matches_musicnn_timbral_branches_on_real_input() -> None:
    model, dft, want, got = features_on_real_input(with_mel_dft_timbral)
    # The branch values reach ~50; float32 rounding of the two ways differs by ~1e-6 of that.
    np.testing.assert_allclose(got["timbral"], want["timbral"], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(got["temporal"], want["temporal"])
    np.testing.assert_allclose(got["penultimate"], want["penultimate"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["tags"], want["tags"], rtol=0, atol=1e-6)
    assert all(isinstance(b, MelDftTimbral) for b in dft.timbral)
    assert not any(isinstance(b, MelDftTimbral) for b in model.timbral)  # the port is untouched


def test_shipped_msd_network_is_the_export_of_the_checkpoint(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "msd.onnx"
    export_musicnn_onnx(need_shared(MUSICNN_DIR) / "MSD_musicnn_weights.npz", out)
    shipped = frontend_path("musicnn_msd.onnx")
    for path in (out, shipped, frontend_path("musicnn_mtt.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta[TIMBRAL_KEY] == "mel-dft", path
    x = np.load(MUSICNN_DIR / "MSD_musicnn_tfref_input.npy")
    runs = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
            None, {"mel_patches": x}
        )
        for p in (out, shipped)
    ]
    for fresh, packaged in zip(*runs, strict=True):
        np.testing.assert_array_equal(fresh, packaged)
