"""Features: one sequence of per-patch vectors for each analysed excerpt of a track.

The seed paper's 14 librosa features are computed per frame from one shared STFT (and one tuning
estimate; the two chromas over constant-Q transforms need their own), then pooled (mean and
standard deviation) over the same 3-s patches that the pretrained musicnn network embeds. Each row
of a sequence is [librosa pooled stats | musicnn penultimate + tags]. Tagger and trainer both call
`features_from_audio` (trainer, on augmented clips) and `extract_track` (both, on files).

Excerpt policy for full-length tracks: the model was trained on 30-s clips, so a track is analysed
as 30-s excerpts read by seeking: one centred excerpt for tracks up to 90 s, three (centred at
1/4, 1/2 and 3/4 of the track) for longer ones; tracks up to 45 s are analysed whole. The tagger
averages the model's probabilities over the excerpts.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tagger.audio import SAMPLE_RATE, AudioError, decode, probe
from tagger.embeddings import EMBEDDING_DIM, PATCH_SAMPLES, MusicnnEmbedder

# Bump when anything below changes what a row holds: models record the schema they were fed.
FEATURE_SCHEMA = "mertag-features-1"
HOP = 512
N_FFT = 2048
N_MELS = 40
N_MFCC = 20
EXCERPT_SECONDS = 30.0
WHOLE_TRACK_MAX = 45.0
ONE_EXCERPT_MAX = 90.0

# Per-frame feature rows, in order: name -> number of rows.
FRAME_FEATURES: dict[str, int] = {
    "chroma_stft": 12,
    "chroma_cqt": 12,
    "chroma_vqt": 12,
    "melspectrogram": N_MELS,
    "mfcc": N_MFCC,
    "rms": 1,
    "spectral_centroid": 1,
    "spectral_bandwidth": 1,
    "spectral_contrast": 7,
    "spectral_flatness": 1,
    "spectral_rolloff": 1,
    "tonnetz": 6,
    "zero_crossing_rate": 1,
    "tempo": 1,
}
FRAME_DIM = sum(FRAME_FEATURES.values())
LIBROSA_DIM = 2 * FRAME_DIM  # mean and std per patch
FEATURE_DIM = LIBROSA_DIM + EMBEDDING_DIM
LIBROSA_SLICE = slice(0, LIBROSA_DIM)
MUSICNN_SLICE = slice(LIBROSA_DIM, FEATURE_DIM)
MIN_SECONDS = PATCH_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class TrackFeatures:
    """The analysed excerpts of one track: one (patches, FEATURE_DIM) array per excerpt."""

    sequences: list[np.ndarray]
    duration: float
    decode_seconds: float = 0.0
    features_seconds: float = 0.0
    schema: str = FEATURE_SCHEMA


def excerpt_windows(duration: float | None) -> list[tuple[float, float | None]]:
    """(offset, length) of each excerpt to analyse; length None means to the end."""
    if duration is None or duration <= WHOLE_TRACK_MAX:
        return [(0.0, None)]
    centres = [0.5] if duration <= ONE_EXCERPT_MAX else [0.25, 0.5, 0.75]
    half = EXCERPT_SECONDS / 2
    return [
        (min(max(0.0, c * duration - half), duration - EXCERPT_SECONDS), EXCERPT_SECONDS)
        for c in centres
    ]


def frame_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 14 seed features per frame, stacked to (FRAME_DIM, frames), from one shared STFT."""
    import librosa

    stft = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    power = stft**2
    with warnings.catch_warnings():
        # Silence has no pitched peaks: tuning is then 0, which is what we want.
        warnings.simplefilter("ignore", UserWarning)
        tuning = librosa.estimate_tuning(S=stft, sr=sr, n_fft=N_FFT)
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS)
    log_mel = librosa.power_to_db(mel)
    cqt = np.abs(
        librosa.cqt(y, sr=sr, hop_length=HOP, tuning=tuning, n_bins=84 * 3, bins_per_octave=36)
    )
    vqt = np.abs(
        librosa.vqt(
            y, sr=sr, hop_length=HOP, tuning=tuning, n_bins=84, bins_per_octave=12, gamma=None
        )
    )
    chroma_cqt = librosa.feature.chroma_cqt(C=cqt, sr=sr, hop_length=HOP, bins_per_octave=36)
    onset = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP)
    parts = [
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning),
        chroma_cqt,
        librosa.feature.chroma_vqt(V=vqt, sr=sr, hop_length=HOP, intervals="equal"),
        log_mel,
        librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC),
        librosa.feature.rms(S=stft, frame_length=N_FFT),
        librosa.feature.spectral_centroid(S=stft, sr=sr) / 1000.0,
        librosa.feature.spectral_bandwidth(S=stft, sr=sr) / 1000.0,
        librosa.feature.spectral_contrast(S=stft, sr=sr),
        np.log10(librosa.feature.spectral_flatness(S=stft) + 1e-10),
        librosa.feature.spectral_rolloff(S=stft, sr=sr) / 1000.0,
        librosa.feature.tonnetz(chroma=chroma_cqt, sr=sr),
        librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP),
        librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP, aggregate=None)[
            np.newaxis
        ]
        / 100.0,
    ]
    frames = min(p.shape[1] for p in parts)
    return np.vstack([p[:, :frames] for p in parts]).astype(np.float32)


def pool_patches(frames: np.ndarray, n_patches: int) -> np.ndarray:
    """Mean and std of the frame features over each 3-s patch: (n_patches, LIBROSA_DIM)."""
    out = np.empty((n_patches, LIBROSA_DIM), dtype=np.float32)
    for i in range(n_patches):
        lo = (i * PATCH_SAMPLES) // HOP
        hi = max(lo + 1, min(frames.shape[1], ((i + 1) * PATCH_SAMPLES) // HOP))
        block = frames[:, lo:hi]
        out[i, :FRAME_DIM] = block.mean(axis=1)
        out[i, FRAME_DIM:] = block.std(axis=1)
    return out


_EMBEDDER: MusicnnEmbedder | None = None


def embedder() -> MusicnnEmbedder:
    """The process's musicnn session, created on first use and kept for every later track."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = MusicnnEmbedder(threads=1)
    return _EMBEDDER


def features_from_audio(y: np.ndarray) -> np.ndarray:
    """The feature sequence (patches, FEATURE_DIM) of mono float32 audio at SAMPLE_RATE."""
    if y.size < PATCH_SAMPLES:
        raise AudioError(
            f"too short to analyse ({y.size / SAMPLE_RATE:.1f} s; needs {MIN_SECONDS:.1f} s)"
        )
    embeddings = embedder().embed(y)
    pooled = pool_patches(frame_features(y), embeddings.shape[0])
    seq = np.hstack([pooled, embeddings]).astype(np.float32)
    if not np.all(np.isfinite(seq)):
        raise AudioError("features hold NaN or infinite values (silent or broken audio?)")
    return seq


def extract_track(path: Path, windows: Any = None) -> TrackFeatures:
    """Decode a track's excerpts (by seeking) and compute each one's feature sequence."""
    t0 = time.perf_counter()
    info = probe(path)
    plan = excerpt_windows(info.duration) if windows is None else windows
    sequences = []
    decode_seconds = features_seconds = 0.0
    for offset, length in plan:
        y = decode(path, SAMPLE_RATE, offset, length)
        t1 = time.perf_counter()
        decode_seconds += t1 - t0
        sequences.append(features_from_audio(y))
        t0 = time.perf_counter()
        features_seconds += t0 - t1
    return TrackFeatures(
        sequences=sequences,
        duration=info.duration or 0.0,
        decode_seconds=decode_seconds,
        features_seconds=features_seconds,
    )
