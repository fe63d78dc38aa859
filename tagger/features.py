"""Features: one sequence of per-patch vectors for each analysed excerpt of a track.

The seed paper's 14 librosa features are computed per frame from one shared STFT (and one tuning
estimate; the two chromas over constant-Q transforms need their own), then pooled (mean and
standard deviation) over the same 3-s patches that the pretrained musicnn networks embed. Each
row of a sequence is [librosa pooled stats | per musicnn network: penultimate + tags]. Tagger
and trainer both call `features_from_audio` (trainer, on augmented clips) and `extract_track`
(both, on files).

Excerpt policy (`excerpt_windows`, a runtime choice that FEATURE_SCHEMA does not cover): clips
up to WHOLE_TRACK_MAX, as long as every training clip, are analysed whole, exactly as the model
was trained; a longer track is heard as SNIPPETS one-patch snippets spread evenly over it, each
read by seeking and joined into one short sequence, so a track costs at most SNIPPETS patches
whatever its length, and a 2-hour file is never decoded whole. bench/excerpt_agreement.py
measures how often that agrees with analysing the whole track.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mertag.tagger import constant_q, spectral
from mertag.tagger.audio import SAMPLE_RATE, AudioError, AudioFile
from mertag.tagger.embeddings import (
    EMBEDDING_DIM,
    FRONTENDS,
    NETWORK_DIM,
    PATCH_SAMPLES,
    MusicnnEmbedder,
    frontend_path,
    mel_patches,
    patch_count,
)
from mertag.tagger.loudness import normalise_level

# Bump when anything below changes what a row holds: models record the schema they were fed.
FEATURE_SCHEMA = "mertag-features-3"
"""1: MSD_musicnn only (482 columns). 2: MSD_musicnn and MTT_musicnn (732 columns). 3: as 2, on
audio brought to TARGET_LUFS first (`mertag.tagger.loudness`), so a global gain changes nothing."""
HOP = 512
N_FFT = 2048
N_MELS = 40
N_MFCC = 20
WHOLE_TRACK_MAX = 45.0
"""Seconds up to which a track is analysed whole, as the model's ~30-s training clips (at most
30.2 s in 4Q) were, with a margin for clips cut a little longer."""
SNIPPETS = 6
"""One-patch snippets heard from a longer track. bench/snippet_cv.py weighs this out of fold on
the 4Q clips: 6 of a clip's 10 patches match the whole clip's macro-F1, 4 lose 0.03-0.04."""
UNKNOWN_LENGTH_SECONDS = 30.0
"""What is analysed, from the start, of a file whose container does not say how long it is."""

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
FEATURE_SETS: dict[str, tuple[int, int]] = {
    "both": (0, FEATURE_DIM),
    "librosa": (0, LIBROSA_DIM),
    "musicnn": (LIBROSA_DIM, FEATURE_DIM),
    "librosa+msd": (0, LIBROSA_DIM + NETWORK_DIM),
}
"""Feature set name -> the [start, stop) columns of a row that a model trained on it reads. A
model records its set's name; the tagger computes only those columns and leaves the rest zero,
so "librosa+msd" (no MTT network) costs ~13 ms of CPU less per patch than "both"."""
ALL_COLUMNS = FEATURE_SETS["both"]
MIN_SECONDS = PATCH_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class TrackFeatures:
    """What was analysed of one track: its (patches, FEATURE_DIM) sequence, in a list (the model
    averages over the sequences it is given)."""

    sequences: list[np.ndarray]
    duration: float
    decode_seconds: float = 0.0
    features_seconds: float = 0.0
    """CPU seconds of this process spent decoding and computing the features (less disturbed
    than wall time by whatever else the machine runs)."""
    schema: str = FEATURE_SCHEMA
    snippets: bool = False
    """Heard as snippets by the excerpt policy (longer than WHOLE_TRACK_MAX), not whole."""


def excerpt_windows(duration: float | None) -> list[tuple[float, float | None]]:
    """(offset, length) of the pieces of a track to analyse, joined in order into one sequence;
    length None means to the end.

    Up to WHOLE_TRACK_MAX: the whole track, as the model was trained. Longer: SNIPPETS snippets
    of exactly one patch, centred at (i + 1/2) / SNIPPETS of the track. Unknown length: the first
    UNKNOWN_LENGTH_SECONDS, so that memory stays bounded whatever the file holds.
    """
    if duration is None:
        return [(0.0, UNKNOWN_LENGTH_SECONDS)]
    if duration <= WHOLE_TRACK_MAX:
        return [(0.0, None)]
    return snippet_windows(duration)


def snippet_windows(duration: float, count: int = SNIPPETS) -> list[tuple[float, float | None]]:
    """`count` one-patch windows centred at (i + 1/2) / count of a track of `duration` s."""
    return [
        (max(0.0, (i + 0.5) * duration / count - MIN_SECONDS / 2), MIN_SECONDS)
        for i in range(count)
    ]


def frame_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 14 seed features per frame, stacked to (FRAME_DIM, frames), from one shared STFT.

    The seed paper's librosa calls (librosa.stft, estimate_tuning, melspectrogram, power_to_db,
    cqt with 252 bins at 36 per octave, vqt with gamma None, chroma_cqt / chroma_stft /
    chroma_vqt, the spectral statistics, mfcc, rms, tonnetz, zero_crossing_rate, onset_strength
    and per-frame tempo), computed by `mertag.tagger.spectral` and `mertag.tagger.constant_q`,
    which reproduce librosa 0.11's values without importing it (tests/tagger/test_spectral.py).
    """
    stft = np.abs(spectral.stft(y, N_FFT, HOP))
    power = stft**2
    tuning = spectral.estimate_tuning(stft, sr, N_FFT)  # 0.0 for silence: nothing is pitched
    mel = spectral.melspectrogram(power, sr, N_MELS)
    log_mel = spectral.power_to_db(mel)
    octaves = constant_q.OctaveChain(y)  # both transforms read the same halvings of y
    cqt = np.abs(constant_q.vqt(y, sr, HOP, 84 * 3, 36, tuning, variable=False, octaves=octaves))
    vqt = np.abs(constant_q.vqt(y, sr, HOP, 84, 12, tuning, variable=True, octaves=octaves))
    chroma_cqt = constant_q.chroma(cqt, 36)
    # The bandwidth reuses the centroid, and both weigh float32 bin frequencies (librosa's own
    # would broadcast float64 ones; the values agree to 1e-6 relative).
    freq = spectral.fft_frequencies(sr, N_FFT).astype(np.float32)
    weights = spectral.spectral_weights(stft)
    centroid = spectral.spectral_centroid(stft, freq, weights)
    onset = spectral.onset_strength(log_mel, N_FFT, HOP)
    parts = [
        spectral.chroma_stft(power, sr, tuning),
        chroma_cqt,
        constant_q.chroma(vqt, 12),
        log_mel,
        spectral.mfcc(log_mel, N_MFCC),
        spectral.rms(stft, N_FFT),
        centroid / 1000.0,
        spectral.spectral_bandwidth(stft, freq, centroid, weights) / 1000.0,
        spectral.spectral_contrast(stft, sr),
        np.log10(spectral.spectral_flatness(stft) + 1e-10),
        spectral.spectral_rolloff(stft, sr) / 1000.0,
        spectral.tonnetz(chroma_cqt),
        spectral.zero_crossing_rate(y, N_FFT, HOP),
        spectral.tempo(onset, sr, HOP)[np.newaxis] / 100.0,
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


_EMBEDDERS: dict[str, MusicnnEmbedder] = {}


def embedder(frontend: str) -> MusicnnEmbedder:
    """The process's session on one musicnn network (a name in FRONTENDS), created on first use
    and kept for every later track, whichever models ask for it."""
    if frontend not in _EMBEDDERS:
        _EMBEDDERS[frontend] = MusicnnEmbedder(frontend_path(frontend), threads=1)
    return _EMBEDDERS[frontend]


def features_from_audio(y: np.ndarray, columns: tuple[int, int] = ALL_COLUMNS) -> np.ndarray:
    """The feature sequence (patches, FEATURE_DIM) of mono float32 audio at SAMPLE_RATE.

    The audio is first brought to TARGET_LUFS as a whole (`normalise_level`; SilentAudio when
    it is near-silent), so its level, which playback gain and mastering set, is not a feature.
    Only the blocks that `columns` ([start, stop), a value of FEATURE_SETS) touch are computed
    (the librosa statistics, each musicnn network); the other columns are zero.
    """
    if y.size < PATCH_SAMPLES:
        raise AudioError(
            f"too short to analyse ({y.size / SAMPLE_RATE:.1f} s; needs {MIN_SECONDS:.1f} s)"
        )
    y = normalise_level(y)
    lo, hi = columns
    seq = np.zeros((patch_count(y.size), FEATURE_DIM), dtype=np.float32)
    # musicnn before librosa: onnxruntime's arena then settles before librosa's temporaries come
    # and go, and a Dask worker peaks ~10 MB lower than the other way round (bench/dask_bench.py).
    nets = [
        i
        for i in range(len(FRONTENDS))
        if lo < LIBROSA_DIM + (i + 1) * NETWORK_DIM and LIBROSA_DIM + i * NETWORK_DIM < hi
    ]
    if nets:
        patches = mel_patches(y)
        for i in nets:
            start = LIBROSA_DIM + i * NETWORK_DIM
            seq[:, start : start + NETWORK_DIM] = embedder(FRONTENDS[i]).embed_patches(patches)
    if lo < LIBROSA_DIM:
        seq[:, :LIBROSA_DIM] = pool_patches(frame_features(y), len(seq))
    if not np.all(np.isfinite(seq)):
        raise AudioError("features hold NaN or infinite values (silent or broken audio?)")
    return seq


def decode_excerpt(path: Path, windows: Any = None) -> tuple[np.ndarray, float]:
    """The audio to analyse of a track, by the excerpt policy (or `windows`), and its duration.

    The file is opened once and each window read by seeking; the pieces are joined in order.
    A track the policy reads whole is read up to WHOLE_TRACK_MAX only, and heard as snippets
    when it goes on (its container understated its length). When there are several pieces, a
    piece shorter than one patch (a snippet past the real end of a file whose container
    overstates its length) is left out, so every patch of the sequence is one snippet.
    """
    with AudioFile(path) as audio:
        duration = audio.info.duration
        plan = excerpt_windows(duration) if windows is None else windows
        if windows is None and plan == [(0.0, None)]:
            # "Whole" is bounded by the policy, not by a header that may understate the length.
            y, longer = audio.read_whole(WHOLE_TRACK_MAX)
            if longer is None:
                return y, duration or y.size / SAMPLE_RATE
            duration, plan = longer, snippet_windows(longer)
        pieces = []
        for offset, length in plan:
            try:
                y = audio.read(offset, length, SAMPLE_RATE)
            except AudioError:
                if len(plan) == 1:
                    raise
                continue
            if len(plan) == 1 or y.size >= PATCH_SAMPLES:
                pieces.append(y)
    if not pieces:
        raise AudioError("no audio decoded where the file says its audio is")
    joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return joined, duration or joined.size / SAMPLE_RATE


def extract_track(
    path: Path,
    windows: Any = None,
    columns: tuple[int, int] = ALL_COLUMNS,
    snippet_columns: tuple[int, int] | None = None,
) -> TrackFeatures:
    """Decode a track's excerpt (by seeking) and compute its feature sequence: the `columns` a
    model reads (see `features_from_audio`), or `snippet_columns` when given and the policy
    hears the track as snippets.

    `windows` overrides the policy, e.g. [(0.0, None)] for the whole track (never "snippets").
    """
    t0 = time.process_time()
    y, duration = decode_excerpt(path, windows)
    snippets = windows is None and duration > WHOLE_TRACK_MAX
    t1 = time.process_time()
    wanted = snippet_columns if snippets and snippet_columns is not None else columns
    sequence = features_from_audio(y, wanted)
    return TrackFeatures(
        sequences=[sequence],
        duration=duration,
        decode_seconds=t1 - t0,
        features_seconds=time.process_time() - t1,
        snippets=snippets,
    )
