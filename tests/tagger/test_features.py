"""The feature sequence: shapes, the excerpt policy, and clear errors for unusable audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.audio import SAMPLE_RATE, AudioError
from mertag.tagger.embeddings import PATCH_SAMPLES
from mertag.tagger.features import (
    FEATURE_DIM,
    FEATURE_SETS,
    FRAME_DIM,
    LIBROSA_SLICE,
    MIN_SECONDS,
    MUSICNN_SLICE,
    SNIPPETS,
    UNKNOWN_LENGTH_SECONDS,
    excerpt_windows,
    extract_track,
    features_from_audio,
    frame_features,
)


def chord(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    return (0.2 * y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_one_row_per_three_second_patch() -> None:
    seq = features_from_audio(chord(30.0))
    assert seq.shape == (30 * SAMPLE_RATE // PATCH_SAMPLES, FEATURE_DIM)
    assert seq.dtype == np.float32 and np.all(np.isfinite(seq))
    assert LIBROSA_SLICE.stop == MUSICNN_SLICE.start and MUSICNN_SLICE.stop == FEATURE_DIM
    # musicnn's 50 tag probabilities sit at the end of each row.
    tags = seq[:, -50:]
    assert np.all((tags >= 0) & (tags <= 1))


def test_only_the_columns_a_model_reads_are_computed() -> None:
    y = chord(9.0, seed=2)
    full = features_from_audio(y)
    for name, (lo, hi) in FEATURE_SETS.items():
        part = features_from_audio(y, (lo, hi))
        assert part.shape == full.shape, name
        np.testing.assert_array_equal(part[:, lo:hi], full[:, lo:hi], err_msg=name)
        assert not part[:, :lo].any() and not part[:, hi:].any(), name
    # The MTT network is a block of its own, and without it musicnn gives only MSD's 250.
    lo, hi = FEATURE_SETS["librosa+msd"]
    assert (lo, hi) == (0, MUSICNN_SLICE.start + 250)


def test_frame_features_stack_the_fourteen_features() -> None:
    frames = frame_features(chord(6.0))
    assert frames.shape[0] == FRAME_DIM
    assert frames.shape[1] == pytest.approx(6 * SAMPLE_RATE / 512, abs=2)
    # A steady A-minor-ish chord: chroma_stft peaks on A (index 9), C# (1) or E (4).
    assert int(np.argmax(frames[:12].mean(axis=1))) in (1, 4, 9)


def test_centroid_and_bandwidth_rows_match_librosa_defaults() -> None:
    import librosa

    y = chord(6.0, seed=3)
    frames = frame_features(y)
    stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    row = 12 * 3 + 40 + 20 + 1  # after the three chromas, the mel bands, the MFCCs and rms
    for offset, feature in enumerate(
        (librosa.feature.spectral_centroid, librosa.feature.spectral_bandwidth)
    ):
        expected = feature(S=stft, sr=SAMPLE_RATE)[0] / 1000.0
        got = frames[row + offset]
        np.testing.assert_allclose(got, expected[: got.size], rtol=1e-5)


def test_too_short_audio_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="too short"):
        features_from_audio(chord(1.0))


def test_silence_has_no_mood_to_analyse() -> None:
    from mertag.tagger.loudness import SilentAudio

    with pytest.raises(SilentAudio, match="silent"):
        features_from_audio(np.zeros(4 * SAMPLE_RATE, dtype=np.float32))


def test_excerpt_policy() -> None:
    # Clips of the training clips' length (30 s) and a margin are analysed whole, as trained.
    assert excerpt_windows(12.0) == [(0.0, None)]
    assert excerpt_windows(30.2) == [(0.0, None)]
    assert excerpt_windows(44.0) == [(0.0, None)]
    # Unknown length: a bounded piece from the start, never the whole file.
    assert excerpt_windows(None) == [(0.0, UNKNOWN_LENGTH_SECONDS)]
    for duration in (46.0, 600.0, 7200.0):
        snippets = excerpt_windows(duration)
        assert len(snippets) == SNIPPETS
        assert all(n == MIN_SECONDS for _, n in snippets)
        offsets = [o for o, _ in snippets]
        assert offsets == sorted(offsets) and offsets[0] >= 0.0
        assert offsets[-1] + MIN_SECONDS <= duration
    # Spread evenly: centred at (i + 1/2) / SNIPPETS of the track.
    centres = [o + MIN_SECONDS / 2 for o, _ in excerpt_windows(1200.0)]
    assert centres == pytest.approx([(i + 0.5) * 1200.0 / SNIPPETS for i in range(SNIPPETS)])


def test_extract_track_on_a_real_long_track(corpus: Path) -> None:
    tf = extract_track(corpus / "bay.mp3")
    (seq,) = tf.sequences
    assert seq.shape == (SNIPPETS, FEATURE_DIM)
    assert tf.duration == pytest.approx(132.4, abs=0.1)
    # Different parts of the track give different features.
    assert not np.allclose(seq[0], seq[-1])
    whole = extract_track(corpus / "bay.mp3", windows=[(0.0, None)])
    assert whole.sequences[0].shape == (int(132.4 * SAMPLE_RATE) // PATCH_SAMPLES, FEATURE_DIM)


def test_extract_track_on_a_short_track_is_the_whole_track(corpus: Path) -> None:
    tf = extract_track(corpus / "lava.wav")
    whole = extract_track(corpus / "lava.wav", windows=[(0.0, None)])
    np.testing.assert_array_equal(tf.sequences[0], whole.sequences[0])
