"""The feature sequence: shapes, the excerpt policy, and clear errors for unusable audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagger.audio import SAMPLE_RATE, AudioError
from tagger.embeddings import PATCH_SAMPLES
from tagger.features import (
    EXCERPT_SECONDS,
    FEATURE_DIM,
    FRAME_DIM,
    LIBROSA_SLICE,
    MUSICNN_SLICE,
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


def test_frame_features_stack_the_fourteen_features() -> None:
    frames = frame_features(chord(6.0))
    assert frames.shape[0] == FRAME_DIM
    assert frames.shape[1] == pytest.approx(6 * SAMPLE_RATE / 512, abs=2)
    # A steady A-minor-ish chord: chroma_stft peaks on A (index 9), C# (1) or E (4).
    assert int(np.argmax(frames[:12].mean(axis=1))) in (1, 4, 9)


def test_too_short_audio_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="too short"):
        features_from_audio(chord(1.0))


def test_silence_is_analysable() -> None:
    seq = features_from_audio(np.zeros(4 * SAMPLE_RATE, dtype=np.float32))
    assert seq.shape == (1, FEATURE_DIM) and np.all(np.isfinite(seq))


def test_excerpt_policy() -> None:
    assert excerpt_windows(None) == [(0.0, None)]
    assert excerpt_windows(30.0) == [(0.0, None)]
    (one,) = excerpt_windows(80.0)
    assert one == (25.0, EXCERPT_SECONDS)
    three = excerpt_windows(600.0)
    assert [o for o, _ in three] == [135.0, 285.0, 435.0]
    assert all(o + n <= 600.0 for o, n in three)  # type: ignore[operator]


def test_extract_track_on_a_real_long_track(corpus: Path) -> None:
    tf = extract_track(corpus / "bay.mp3")
    assert len(tf.sequences) == 3
    assert all(s.shape == (10, FEATURE_DIM) for s in tf.sequences)
    assert tf.duration == pytest.approx(132.4, abs=0.1)
    # Different parts of the track give different features.
    assert not np.allclose(tf.sequences[0], tf.sequences[2])
