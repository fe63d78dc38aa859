"""Audio augmentations: the seed paper's additive noise, time shift and pitch shift, a patch
offset, and a degraded copy (EQ tilt, telephone band, lossy codec or clipping).

Each works on decoded mono audio at the tagger's SAMPLE_RATE, before `features_from_audio`. The
random draws come from the clip's content hash and the augmentation's spec, not from the training
seed: the same file always gets the same augmented copy, so copies can be cached and reused by
every later run. Augmented copies are only ever used for clips in a training fold.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mertag.tagger.audio import SAMPLE_RATE


def rng_for(digest: str, spec: str) -> np.random.Generator:
    """A generator seeded by a clip's content hash and an augmentation's spec."""
    seed = hashlib.sha256(f"{digest}\0{spec}".encode()).digest()[:8]
    return np.random.default_rng(int.from_bytes(seed, "little"))


@dataclass(frozen=True)
class Noise:
    """White Gaussian noise at a signal-to-noise ratio drawn uniformly from [low, high] dB."""

    snr_low: float = 10.0
    snr_high: float = 30.0

    @property
    def spec(self) -> str:
        return f"noise(snr_db={self.snr_low:g}..{self.snr_high:g})"

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        snr = rng.uniform(self.snr_low, self.snr_high)
        power = float(np.mean(y.astype(np.float64) ** 2))
        if power == 0.0:
            return y.copy()
        scale = np.sqrt(power / 10.0 ** (snr / 10.0))
        return (y + scale * rng.standard_normal(y.size)).astype(np.float32)


@dataclass(frozen=True)
class Shift:
    """Circular time shift by a random amount in [low, high] seconds, either direction.

    Shifts that are not a whole number of 3-s patches move the patch boundaries, so each patch
    sees different audio; circular, so no silence is added.
    """

    low: float = 0.5
    high: float = 2.5

    @property
    def spec(self) -> str:
        return f"shift(seconds={self.low:g}..{self.high:g},circular)"

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seconds = rng.uniform(self.low, self.high) * rng.choice([-1.0, 1.0])
        return np.roll(y, int(round(seconds * SAMPLE_RATE))).astype(np.float32)


@dataclass(frozen=True)
class Pitch:
    """Pitch shift by a whole number of semitones, 1..`most` up or down (librosa)."""

    most: int = 2

    @property
    def spec(self) -> str:
        return f"pitch(semitones=±1..{self.most})"

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import librosa

        steps = int(rng.integers(1, self.most + 1)) * int(rng.choice([-1, 1]))
        return librosa.effects.pitch_shift(y, sr=SAMPLE_RATE, n_steps=steps).astype(np.float32)


@dataclass(frozen=True)
class Offset:
    """The clip without its first `seconds`: every 3-s patch then starts half a patch later.

    The model hears a track as a sequence of patches whose boundaries fall wherever the file
    starts; this copy shows it the same music cut at other boundaries, with one patch fewer and
    nothing synthetic added. Draws nothing from `rng`. On the 4Q folds it added 0.000 / +0.006
    macro-F1 on its own and made the MTT front end's gain hold on a fresh fold seed (model card).
    """

    seconds: float = 1.5

    @property
    def spec(self) -> str:
        return f"offset(seconds={self.seconds:g})"

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return y[int(round(self.seconds * SAMPLE_RATE)) :].astype(np.float32, copy=True)


@dataclass(frozen=True)
class Degrade:
    """One of four things a real library does to audio, drawn per clip:

    - tilt: a spectral tilt of ±1..2 dB per octave around 1 kHz (±6-8 dB at the band's ends),
      as mastering EQ, old records and small speakers do;
    - band: the band above 4 kHz removed (resampled through 8 kHz), as an 8-kHz file is;
    - codec: MP3 at 48..128 kbit/s, written and decoded back through `mertag.tagger.audio`;
    - clip: +6..12 dB of gain on the clip as decoded, then hard clipping at full scale, as a
      gain applied to an already loud master in fixed point does.

    A plain gain copy is not made: the features are computed on audio brought to one loudness
    (`mertag.tagger.loudness`), so it would be the clean copy again.
    """

    tilt_db_per_octave: tuple[float, float] = (1.0, 2.0)
    band_hz: int = 8000
    bitrates: tuple[int, int] = (48, 128)
    clip_db: tuple[float, float] = (6.0, 12.0)

    @property
    def spec(self) -> str:
        lo, hi = self.tilt_db_per_octave
        return (
            f"degrade(tilt=±{lo:g}..{hi:g}dB/oct,band={self.band_hz}Hz,"
            f"mp3={self.bitrates[0]}..{self.bitrates[1]}k,clip=+{self.clip_db[0]:g}..{self.clip_db[1]:g}dB)"
        )

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kind = ("tilt", "band", "codec", "clip")[int(rng.integers(4))]
        if kind == "tilt":
            return tilt(y, float(rng.uniform(*self.tilt_db_per_octave)) * rng.choice([-1.0, 1.0]))
        if kind == "band":
            import librosa

            low = librosa.resample(y, orig_sr=SAMPLE_RATE, target_sr=self.band_hz)
            out = librosa.resample(low, orig_sr=self.band_hz, target_sr=SAMPLE_RATE)
            return _fit(out, y.size)
        if kind == "codec":
            kbps = int(rng.integers(self.bitrates[0], self.bitrates[1] + 1))
            return _fit(codec_roundtrip(y, "mp3", kbps * 1000), y.size)
        gain = 10.0 ** (rng.uniform(*self.clip_db) / 20.0)
        return np.clip(y * gain, -1.0, 1.0).astype(np.float32)


def tilt(y: np.ndarray, db_per_octave: float) -> np.ndarray:
    """`y` with a gain of `db_per_octave` × log2(f / 1 kHz) dB, f held to 50 Hz..Nyquist."""
    spectrum = np.fft.rfft(y.astype(np.float64))
    freqs = np.fft.rfftfreq(y.size, 1.0 / SAMPLE_RATE)
    octaves = np.log2(np.clip(freqs, 50.0, None) / 1000.0)
    out = np.fft.irfft(spectrum * 10.0 ** (db_per_octave * octaves / 20.0), n=y.size)
    return out.astype(np.float32)


def codec_roundtrip(y: np.ndarray, codec: str, bitrate: int) -> np.ndarray:
    """Mono `y` at SAMPLE_RATE encoded as `codec` and decoded back as the tagger decodes."""
    from mertag.tagger.audio import decode
    from mertag.trainer.codec import CODECS, write_audio

    with tempfile.TemporaryDirectory(prefix="mertag-codec-") as tmp:
        path = Path(tmp) / f"clip{CODECS[codec][1]}"
        write_audio(path, y, SAMPLE_RATE, codec, bitrate)
        return decode(path)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """`y` cut or zero-padded to `n` samples (codecs and resamplers add or drop a few)."""
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return out


Augmentation = Noise | Shift | Pitch | Offset | Degrade
BY_NAME: dict[str, Augmentation] = {
    "noise": Noise(),
    "shift": Shift(),
    "pitch": Pitch(),
    "offset": Offset(),
    "degrade": Degrade(),
}
"""Every augmentation by the name `mertag train --augmentations` takes."""
AUGMENTATIONS: tuple[Augmentation, ...] = tuple(
    BY_NAME[name] for name in ("offset", "noise", "pitch", "shift")
)
"""The copies made of each training clip when augmentation is on (one per entry), unless
`mertag train --augmentations` names others: the shipped models' recipe. Weighed out of fold over
four fold seeds (MODEL_CARD.md, Augmentation): these four beat the offset copy alone by 0.010
macro-F1; adding the degrade copy cost 0.007, so it is there to be chosen, not in the recipe."""


def augmentations(names: str | None) -> tuple[Augmentation, ...]:
    """The augmentations a comma-separated list of BY_NAME names picks (None: AUGMENTATIONS);
    ValueError for an unknown name."""
    if names is None:
        return AUGMENTATIONS
    picked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in picked if n not in BY_NAME]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(BY_NAME)}"
        )
    return tuple(BY_NAME[n] for n in picked)
