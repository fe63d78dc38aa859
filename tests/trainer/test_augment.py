"""Augmentations: the right amount of change, same copy for the same clip."""

from __future__ import annotations

import numpy as np
import pytest

from mertag.tagger.audio import SAMPLE_RATE
from mertag.trainer.augment import (
    AUGMENTATIONS,
    BY_NAME,
    Degrade,
    Noise,
    Offset,
    Pitch,
    Shift,
    augmentations,
    codec_roundtrip,
    rng_for,
    tilt,
)


def tone(seconds: float = 2.0, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_noise_lands_in_the_snr_range():
    y = tone()
    out = Noise(15.0, 15.0).apply(y, rng_for("d", "s"))
    snr = 10 * np.log10(np.mean(y**2) / np.mean((out - y) ** 2))
    assert snr == pytest.approx(15.0, abs=0.3)
    assert out.dtype == np.float32 and out.shape == y.shape


def test_noise_leaves_silence_alone():
    assert not np.any(Noise().apply(np.zeros(100, np.float32), rng_for("d", "s")))


def test_shift_is_a_circular_roll_within_bounds():
    y = np.arange(SAMPLE_RATE * 4, dtype=np.float32)
    out = Shift(1.0, 1.0).apply(y, rng_for("d", "s"))
    k = (y.size - int(out[0])) % y.size  # np.roll(y, k)[0] == y[-k]
    assert np.array_equal(out, np.roll(y, k))
    assert k in (SAMPLE_RATE, y.size - SAMPLE_RATE)


def test_offset_drops_the_start_and_moves_patch_boundaries_by_half_a_patch():
    y = np.arange(SAMPLE_RATE * 4, dtype=np.float32)
    out = Offset(1.5).apply(y, rng_for("d", "s"))
    assert out.dtype == np.float32 and out.size == y.size - 24000
    assert out[0] == 24000 and out[-1] == y[-1]
    out[0] = -1.0
    assert y[24000] == 24000  # a copy, not a view into the caller's audio


def test_pitch_shift_moves_the_peak_by_whole_semitones():
    y = tone(f=440.0)
    out = Pitch(2).apply(y, rng_for("d", "s"))
    assert out.shape == y.shape
    spectrum = np.abs(np.fft.rfft(out))
    peak = np.argmax(spectrum) * SAMPLE_RATE / y.size
    semitones = 12 * np.log2(peak / 440.0)
    assert round(semitones) in (-2, -1, 1, 2)
    assert abs(semitones - round(semitones)) < 0.2


def test_same_clip_same_copy_and_specs_are_distinct():
    y = tone()
    for aug in (Noise(), Shift(), Offset()):  # pitch is slower and just as deterministic
        a = aug.apply(y, rng_for("digest", aug.spec))
        b = aug.apply(y, rng_for("digest", aug.spec))
        assert np.array_equal(a, b)
    assert len({a.spec for a in BY_NAME.values()}) == len(BY_NAME)
    assert AUGMENTATIONS == augmentations(None) == (Offset(), Noise(), Pitch(), Shift())
    assert augmentations("noise, degrade") == (Noise(), Degrade())
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmentations("reverb")
    assert Noise(10, 30).spec != Noise(5, 30).spec


def band_power(y: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(y.size, 1.0 / SAMPLE_RATE)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


def test_tilt_raises_the_treble_and_lowers_the_bass_by_the_slope():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(4 * SAMPLE_RATE).astype(np.float32)
    bright = tilt(y, 2.0)
    # 4 kHz is two octaves above 1 kHz: +4 dB; 250 Hz two below: -4 dB.
    gain_hi = 10 * np.log10(band_power(bright, 3900, 4100) / band_power(y, 3900, 4100))
    gain_lo = 10 * np.log10(band_power(bright, 240, 260) / band_power(y, 240, 260))
    assert abs(gain_hi - 4.0) < 0.2 and abs(gain_lo + 4.0) < 0.2


def test_codec_roundtrip_is_lossy_but_close():
    y = tone(3.0)
    out = codec_roundtrip(y, "mp3", 64_000)
    assert abs(out.size - y.size) < SAMPLE_RATE // 10
    assert 0.8 < np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(y**2)) < 1.2


def test_degrade_keeps_the_length_and_draws_every_kind():
    rng = np.random.default_rng(1)
    y = (0.3 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    outs = [Degrade().apply(y, rng_for(f"clip{i}", Degrade().spec)) for i in range(12)]
    assert all(o.size == y.size and o.dtype == np.float32 for o in outs)
    clipped = [o for o in outs if np.abs(o).max() == 1.0]
    dull = [o for o in outs if band_power(o, 4200, 8000) < 1e-3 * band_power(y, 4200, 8000)]
    assert clipped and dull  # 12 draws of four kinds: both seen (fixed seeds)
