"""The shipped musicnn front end against TensorFlow's outputs, and the log-mel patching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.embeddings import (
    EMBEDDING_DIM,
    FRONTENDS,
    MUSICNN_HOP,
    MUSICNN_N_FFT,
    MUSICNN_N_MELS,
    NETWORK_DIM,
    PATCH_FRAMES,
    PATCH_SAMPLES,
    MusicnnEmbedder,
    frontend_path,
    frontend_paths,
    mel_patches,
)
from tests.conftest import MUSICNN_DIR, need_shared

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module", params=FRONTENDS)
def embedder(request: pytest.FixtureRequest) -> MusicnnEmbedder:
    return MusicnnEmbedder(frontend_path(request.param))


def _sine(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_shipped_onnx_matches_tf_reference(embedder: MusicnnEmbedder) -> None:
    """Each network against TensorFlow's own graph on the same patches.

    MSD's reference comes with the weights in ../shared; MTT's (tests/data) was computed by
    TensorFlow 2 running the musicnn 0.1.0 wheel's MTT_musicnn checkpoint on those patches.
    """
    x = np.load(need_shared(MUSICNN_DIR) / "MSD_musicnn_tfref_input.npy")
    got = embedder.embed_patches(x)
    assert got.shape == (3, NETWORK_DIM) and got.dtype == np.float32
    assert FRONTENDS == ("musicnn_msd.onnx", "musicnn_mtt.onnx")
    refs = {
        "musicnn_msd.onnx": MUSICNN_DIR / "MSD_musicnn_tfref.npz",
        "musicnn_mtt.onnx": DATA_DIR / "MTT_musicnn_tfref.npz",
    }
    ref = np.load(refs[embedder.path.name])
    np.testing.assert_allclose(got[:, :200], ref["penultimate"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[:, 200:], ref["tags"], rtol=0, atol=1e-4)


def test_packaged_frontends_are_present_and_labelled() -> None:
    import onnx

    names = []
    for path in frontend_paths():
        props = onnx.load(str(path)).metadata_props
        names.append({p.key: p.value for p in props}["mertag_frontend"])
    assert names == ["musicnn-msd", "musicnn-mtt"]


@pytest.mark.parametrize(("seconds", "n_patches"), [(0.5, 0), (3.0, 1), (30.0, 10)])
def test_mel_patch_shapes(seconds: float, n_patches: int) -> None:
    patches = mel_patches(_sine(seconds))
    assert patches.shape == (n_patches, PATCH_FRAMES, MUSICNN_N_MELS)
    assert patches.dtype == np.float32


def test_patch_samples_is_one_patch_of_frames() -> None:
    assert PATCH_SAMPLES == PATCH_FRAMES * MUSICNN_HOP
    assert mel_patches(np.zeros(PATCH_SAMPLES, np.float32)).shape[0] == 1
    assert mel_patches(np.zeros(2 * PATCH_SAMPLES, np.float32)).shape[0] == 2


def test_compression_is_log10_of_scaled_mel() -> None:
    import librosa

    y = _sine(7.0, freq=1000.0)
    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=MUSICNN_N_FFT, hop_length=MUSICNN_HOP, n_mels=MUSICNN_N_MELS
    ).T
    want = np.log10(10000 * mel.astype(np.float64) + 1)[: 2 * PATCH_FRAMES]
    got = mel_patches(y)
    assert got.shape == (2, PATCH_FRAMES, MUSICNN_N_MELS)
    np.testing.assert_allclose(got.reshape(-1, MUSICNN_N_MELS), want, rtol=1e-5, atol=1e-5)
    # Patches follow one another without overlap.
    np.testing.assert_array_equal(got[1, 0], got.reshape(-1, MUSICNN_N_MELS)[PATCH_FRAMES])


def test_short_audio_gives_no_rows(embedder: MusicnnEmbedder) -> None:
    assert embedder.embed(_sine(0.5)).shape == (0, NETWORK_DIM)
    assert embedder.embed(np.zeros(0, np.float32)).shape == (0, NETWORK_DIM)


def test_embed_is_embed_patches_of_mel_patches(embedder: MusicnnEmbedder) -> None:
    y = _sine(6.5, freq=220.0)
    emb = embedder.embed(y)
    assert emb.shape == (2, NETWORK_DIM)
    np.testing.assert_array_equal(emb, embedder.embed_patches(mel_patches(y)))
    tags = emb[:, 200:]  # the network's 50 tag probabilities end its columns
    assert tags.shape[1] == 50 and np.all((tags >= 0) & (tags <= 1))
    assert EMBEDDING_DIM == NETWORK_DIM * len(FRONTENDS)
