"""The low-rank timbral filters: exact at full rank, the truncated SVD below it, and exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MUSICNN_DIR, need_shared

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from mertag.trainer.musicnn_lowrank import (  # noqa: E402
    RANK_KEY,
    SeparableConv,
    export_lowrank_onnx,
    lowrank_musicnn,
)
from mertag.trainer.musicnn_port import load_musicnn  # noqa: E402

WEIGHTS = "MSD_musicnn_weights.npz"


def _conv(k_time: int = 7, k_mel: int = 38) -> torch.nn.Conv2d:
    torch.manual_seed(0)
    return torch.nn.Conv2d(1, 5, (k_time, k_mel))


def test_full_rank_is_the_convolution() -> None:
    conv = _conv()
    x = torch.randn(2, 1, 30, 96)
    with torch.no_grad():
        np.testing.assert_allclose(SeparableConv(conv, 7)(x), conv(x), atol=1e-5)


def test_rank_r_is_the_truncated_svd_of_each_filter() -> None:
    conv = _conv()
    x = torch.randn(1, 1, 20, 96)
    w = conv.weight.detach().double()[:, 0]
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    truncated = torch.nn.Conv2d(1, 5, (7, 38))
    with torch.no_grad():
        truncated.weight.copy_(((u[:, :, :2] * s[:, None, :2]) @ vh[:, :2]).float()[:, None])
        truncated.bias.copy_(conv.bias)
        np.testing.assert_allclose(SeparableConv(conv, 2)(x), truncated(x), atol=1e-5)
    with pytest.raises(ValueError, match="rank 8"):
        SeparableConv(conv, 8)


def test_lowrank_network_keeps_every_other_layer() -> None:
    exact = load_musicnn(need_shared(MUSICNN_DIR) / WEIGHTS)
    approx = lowrank_musicnn(load_musicnn(MUSICNN_DIR / WEIGHTS), 7)
    x = torch.from_numpy(np.load(MUSICNN_DIR / "MSD_musicnn_tfref_input.npy"))
    with torch.no_grad():
        for got, want in zip(approx(x), exact(x), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-4)
    same = [k for k in exact.state_dict() if "timbral" not in k or ".bn." in k]
    for key in same:
        torch.testing.assert_close(approx.state_dict()[key], exact.state_dict()[key])


def test_export_records_the_rank(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "lowrank.onnx"
    export_lowrank_onnx(need_shared(MUSICNN_DIR) / WEIGHTS, out, "musicnn-msd", 2)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta[RANK_KEY] == "2" and meta["mertag_frontend"] == "musicnn-msd"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.load(MUSICNN_DIR / "MSD_musicnn_tfref_input.npy")
    penultimate, tags = session.run(["penultimate", "tags"], {"mel_patches": x})
    with torch.no_grad():
        want = lowrank_musicnn(load_musicnn(MUSICNN_DIR / WEIGHTS), 2)(torch.from_numpy(x))
    np.testing.assert_allclose(penultimate, want[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(tags, want[1].numpy(), atol=1e-5)


def test_shipped_networks_are_the_exact_port() -> None:
    """Issue 14's rule L7-1 kept the exact networks (docs/PERFORMANCE.md): none is low-rank."""
    import onnx

    from mertag.tagger.embeddings import frontend_paths

    for path in frontend_paths():
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert RANK_KEY not in meta, path.name
