"""Level normalisation: a global gain changes no feature and no mood; silence gets no mood."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.audio import SAMPLE_RATE, AudioError
from mertag.tagger.features import decode_excerpt, features_from_audio
from mertag.tagger.loudness import (
    SILENCE_LUFS,
    TARGET_LUFS,
    SilentAudio,
    integrated_loudness,
    normalise_level,
)
from mertag.tagger.model import shared_model
from tests.conftest import CORPUS, DATA_4Q, need_shared


def tone(seconds: float = 4.0, level: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = level * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    return (y + 0.01 * level * rng.standard_normal(t.size)).astype(np.float32)


def test_every_level_comes_out_at_the_target():
    y = tone()
    for gain_db in (-30.0, -20.0, -12.0, 0.0, 6.0):
        out = normalise_level(y * np.float32(10 ** (gain_db / 20)))
        assert abs(integrated_loudness(out) - TARGET_LUFS) < 0.01
    np.testing.assert_allclose(normalise_level(y * 0.1), normalise_level(y), rtol=1e-4, atol=1e-7)


def test_silence_and_near_silence_have_no_mood():
    with pytest.raises(SilentAudio, match="silent"):
        normalise_level(np.zeros(5 * SAMPLE_RATE, dtype=np.float32))
    hiss = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE).astype(np.float32) * 1e-4
    assert integrated_loudness(hiss) < SILENCE_LUFS
    with pytest.raises(SilentAudio):
        features_from_audio(hiss)
    assert issubclass(SilentAudio, AudioError)  # a scan records it per file, never crashes
    quiet = tone(level=10 ** (-45 / 20))  # a very quiet master, about -50 LUFS: still music
    assert SILENCE_LUFS < integrated_loudness(quiet) < -40
    normalise_level(quiet)


def real_clips() -> list[Path]:
    picks = [DATA_4Q / "Q3" / "MT0000044741.mp3", CORPUS / "lava.wav"]
    return [need_shared(p) for p in picks]


@pytest.mark.parametrize("name", ["default", "fast"])
def test_gain_changes_no_mood_on_real_music(name: str):
    model = shared_model(name)
    for path in real_clips():
        y, _ = decode_excerpt(path, [(0.0, 12.0)])
        base = model.track_probabilities([features_from_audio(y, model.columns)])
        for gain_db in (-20.0, -12.0, 6.0):
            seq = features_from_audio(y * np.float32(10 ** (gain_db / 20)), model.columns)
            got = model.track_probabilities([seq])
            assert got.argmax() == base.argmax(), (path.name, gain_db)
            assert np.max(np.abs(got - base)) <= 0.02, (path.name, gain_db)


def test_any_layout_downmixes_to_the_same_normalised_audio(tmp_path: Path):
    import soundfile as sf

    from mertag.tagger.audio import decode

    rng = np.random.default_rng(3)
    left, right = tone(3.0, 0.2, seed=1), tone(3.0, 0.1, seed=2)[::-1].copy()
    left += 0.02 * rng.standard_normal(left.size).astype(np.float32)
    layouts = {
        "stereo": np.stack([left, right], axis=1),
        # 5.1 in WAV order FL FR FC LFE BL BR, the stereo in front; and 8 unnamed channels.
        "surround": np.stack([left, right] + [np.zeros_like(left)] * 4, axis=1),
        "eight": np.stack([left, right] + [np.zeros_like(left)] * 6, axis=1),
    }
    out = {}
    for name, x in layouts.items():
        sf.write(tmp_path / f"{name}.wav", x, SAMPLE_RATE, subtype="FLOAT")
        out[name] = normalise_level(decode(tmp_path / f"{name}.wav"))
    for name in ("surround", "eight"):
        np.testing.assert_allclose(out[name], out["stereo"], atol=1e-5)
